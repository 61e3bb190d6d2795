"""Every notebook in notebooks/ executes (jupytext percent -> nbclient, Agg backend, temporary directory).

Each notebook has a cell tagged ``parameters``; the test appends overrides to it (the session's run
database, a figure directory, and per-notebook values that make it fast), papermill-style but without
papermill. A notebook's last cells assert the numbers it shows, so a wrong number fails here too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9]*.py"))
# Fast settings per notebook (fewer bootstrap resamples, smaller maps); names as in its parameters cell.
FAST: dict[str, dict[str, Any]] = {
    "02_fits": {"FORMS": ["poly1", "poly2", "logit1", "logit2"]},
    "03_projection": {"N_BOOT": 100, "MAP_POINTS": 50},
    "05_compute_frontier": {"N_BOOT": 100, "N_BUDGETS": 5},
}
TIMEOUT_S = 300


def inject_parameters(nb: Any, values: dict[str, Any]) -> None:
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    lines = [f"{name} = {value!r}" for name, value in values.items()]
    # The kernel must be this interpreter (the venv's), not whatever `python` a kernelspec names.
    lines.append(f"import sys as _sys; assert _sys.prefix == {sys.prefix!r}, _sys.prefix")
    cells[0].source += "\n\n# injected by tests/test_notebooks.py\n" + "\n".join(lines) + "\n"


def test_notebooks_exist_and_are_percent_format() -> None:
    assert len(NOTEBOOKS) >= 3
    for path in NOTEBOOKS:
        text = path.read_text()
        assert "format_name: percent" in text and '# %% tags=["parameters"]' in text, path.name
        assert "outputs" not in text  # nothing executed is committed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path: Path, tmp_path: Path, published_db_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("SCALING_DB", str(published_db_path))
    nb = jupytext.read(path)
    figs = tmp_path / "figures"
    figs.mkdir()
    inject_parameters(nb, {"DB": str(published_db_path), "FIG_DIR": str(figs), **FAST.get(path.stem, {})})
    client = nbclient.NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert any(figs.iterdir()), "the notebook wrote no figure"
