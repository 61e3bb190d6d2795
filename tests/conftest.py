"""Shared test setup: a private run database, a wide terminal, and the --runslow switch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Help and tables must not wrap differently on different terminals.
os.environ.setdefault("COLUMNS", "200")
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _private_default_db(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's ~/.local/share/scaling/runs.sqlite from a test."""
    monkeypatch.setenv("SCALING_DB", str(tmp_path_factory.getbasetemp() / "default-runs.sqlite"))


@pytest.fixture(scope="session")
def published_db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database built once per session from the shipped published grid (read-only use in tests)."""
    from runs_db import open_db

    path = tmp_path_factory.mktemp("published") / "runs.sqlite"
    open_db(path)
    return path
