"""Helpers shared by the CLI command modules: error mapping, the --db option, JSON output."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from scaling.cli.render import print_json, reflow_help, stderr_console
from scaling.core.work import allow_large_work, large_work_allowed
from scaling.errors import ScalingError

F = TypeVar("F", bound=Callable[..., Any])


def domain_errors(func: F) -> F:
    """Turn domain errors (bad input, unfittable data) into one line on stderr and exit code 1; run the command
    with the work limits lifted when it was given ``--allow-large`` (``scaling.core.work``); and lay out
    the command's docstring for --help (:func:`scaling.cli.render.reflow_help`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from runs_db import RunsDBError  # lazy: keeps `scaling --help` fast

        try:
            if "allow_large_work" in kwargs:  # a command called by another (plot all) keeps the caller's
                with allow_large_work(bool(kwargs["allow_large_work"]) or large_work_allowed()):
                    return func(*args, **kwargs)
            return func(*args, **kwargs)
        except (ScalingError, RunsDBError) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            stderr_console().print(f"error: {message}", markup=False, soft_wrap=True)  # control characters escaped
            raise typer.Exit(1) from None

    wrapper.__doc__ = reflow_help(func.__doc__)  # --help reads the docstring
    return wrapper  # type: ignore[return-value]


def db_path(ctx: typer.Context) -> Path | None:
    """The --db given to the root command (or $SCALING_DB through its envvar), else None."""
    obj = ctx.find_root().obj or {}
    return obj.get("db")


def open_database(ctx: typer.Context) -> Any:
    from runs_db import open_db  # lazy: keeps `scaling --help` fast

    return open_db(db_path(ctx))


def emit_json(schema: str, payload: dict[str, Any]) -> None:
    print_json({"schema": schema, **payload})


def split_csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_assignments(text: str, what: str) -> dict[str, float]:
    """'n_params=2.5e9,data_hours=20000' -> {'n_params': 2.5e9, 'data_hours': 20000.0}."""
    out: dict[str, float] = {}
    for part in split_csv(text):
        name, sep, value = part.partition("=")
        if not sep:
            raise ScalingError(f"{what}: expected NAME=VALUE, got {part!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ScalingError(f"{what}: value of {name.strip()!r} is not a number: {value!r}") from None
    return out
