"""The README's "Python API" section runs as written: its code blocks are executed in order, in one namespace.

The blocks assert the numbers they show (logit1's top-5 at the paper's scenario, the backtest's
recommendation), so a wrong number fails here, not only an exception.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from scaling.forms import list_forms, unregister_form

ROOT = Path(__file__).resolve().parents[1]


def api_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_has_code() -> None:
    blocks = api_blocks()
    assert len(blocks) >= 2 and "scaling.project(" in blocks[0]


def test_readme_python_api_runs(published_db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALING_DB", str(published_db_path))
    monkeypatch.chdir(tmp_path)
    # the README's "lm.csv": a loss table of Chinchilla's law (tests/golden_cases.py writes the same one)
    shutil.copy(ROOT / "tests" / "golden" / "lm_loss.csv", tmp_path / "lm.csv")
    namespace: dict[str, object] = {"__name__": "readme"}
    before = {f.name for f in list_forms()}
    try:
        for i, block in enumerate(api_blocks()):
            exec(compile(block, f"README.md Python API block {i + 1}", "exec"), namespace)
    finally:  # the README registers a form of its own: later tests (the golden 'forms' list) see the registry
        for name in {f.name for f in list_forms()} - before:
            unregister_form(name)
    import matplotlib.pyplot as plt

    plt.close("all")
