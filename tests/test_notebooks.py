"""Every notebook in notebooks/ executes (jupytext percent -> nbclient, Agg backend, temporary directory),
shows its figures inline and its tables formatted.

Each notebook has one cell tagged ``parameters``; the test puts its overrides (the session's run database, a
figure directory, and per-notebook values that make it fast) in a new cell tagged ``injected-parameters``
right after it, as papermill does (``papermill nb.ipynb out.ipynb -p N_BOOT 100``). A notebook's last cells
assert the numbers it shows, so a wrong number fails here too. New notebooks are picked up by their name
(``notebooks/[0-9]*.py``) and run with their own defaults unless ``FAST`` names faster ones.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9]*.py"))
# Fast settings per notebook (fewer bootstrap resamples, smaller maps); names as in its parameters cell.
FAST: dict[str, dict[str, Any]] = {
    "02_fits": {"FORMS": ["poly1", "poly2", "logit1", "logit2"]},
    "03_projection": {"N_BOOT": 100, "MAP_POINTS": 50},
    "05_compute_frontier": {"N_BOOT": 100, "N_BUDGETS": 5},
}
TIMEOUT_S = 300
# A cell that draws: a new figure, a figure builder of scaling.plots (not save_figure) or a result's .plot().
FIGURE_CALL = re.compile(r"\bnew_figure\(|\b(?!save_)\w+_figure\(|\.plot\(")
RAW_FLOAT = re.compile(r"\d\.\d{6}e[+-]\d\d")  # pandas' default 2.920918e+09: a table nobody formatted


def inject_parameters(nb: Any, values: dict[str, Any]) -> None:
    """Papermill's way: a new cell tagged ``injected-parameters`` after the one tagged ``parameters``."""
    index = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(index) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    lines = ["# Parameters injected by tests/test_notebooks.py", *(f"{k} = {v!r}" for k, v in values.items())]
    # The kernel must be this interpreter (the venv's), not whatever `python` a kernelspec names.
    lines.append(f"import sys as _sys; assert _sys.prefix == {sys.prefix!r}, _sys.prefix")
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index[0] + 1, cell)


def test_notebooks_exist_and_are_percent_format() -> None:
    assert len(NOTEBOOKS) >= 3
    for path in NOTEBOOKS:
        text = path.read_text()
        assert "format_name: percent" in text and '# %% tags=["parameters"]' in text, path.name
        assert "outputs" not in text  # nothing executed is committed
        nb = jupytext.read(path)
        (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        # Papermill overrides the parameters cell's names: it must only assign them.
        assert all(isinstance(node, ast.Assign | ast.AnnAssign) for node in ast.parse(cell.source).body), path.name
        assert any(FIGURE_CALL.search(c.source) for c in nb.cells if c.cell_type == "code"), path.name


def figure_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if c.cell_type == "code" and FIGURE_CALL.search(c.source)]


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
    # Each cell that draws shows its figure inline: an image, not '<Figure size 640x440 with 1 Axes>'.
    for cell in figure_cells(nb):
        kinds = [k for o in cell.get("outputs", []) for k in o.get("data", {})]
        assert "image/png" in kinds, f"no inline figure from cell:\n{cell.source}"
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            html = o.get("data", {}).get("text/html", "")
            assert not RAW_FLOAT.search(html), f"unformatted numbers in the table of cell:\n{cell.source}"
