"""Results show themselves in Jupyter (issue 21): a readable table (``text/html``) and, where the result has
one, its figure (``image/png``); ``.plot()`` draws on a pyplot-managed figure, so a plain cell holding
``fit.plot()`` shows the figure inline as pandas' ``df.plot()`` does; ``summary()`` displays as text.

IPython's own display formatter is asked directly (no kernel) for every result type, and one notebook is
executed in a real kernel with Jupyter's inline backend. That kernel imports this checkout (``PYTHONPATH``), not
whichever copy of the package the virtual environment has installed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from IPython.core.formatters import DisplayFormatter
from IPython.lib.pretty import pretty
from matplotlib.axes import Axes

import scaling

ROOT = Path(__file__).resolve().parents[1]
RAW_FLOAT = re.compile(r"\d\.\d{6}e[+-]\d\d")  # pandas' default 2.920918e+09: a table nobody formatted


@pytest.fixture(scope="module")
def runs(published_db_path: Path) -> pd.DataFrame:
    return scaling.load_runs(published_db_path)


@pytest.fixture(scope="module")
def results(runs: pd.DataFrame) -> dict[str, Any]:
    fit = scaling.fit(runs, form="logit1", metric="top5", n_boot=20, seed=1)
    rep = scaling.project(fit, "human-top5", [scaling.Scale(), scaling.At()])
    return {
        "fit": fit, "bootstrap": fit.bootstrap, "report": rep,
        "backtest": scaling.backtest(runs, ["poly1", "logit1"], metric="top5"),
        "compare": scaling.compare(runs, ["poly1", "logit1"], metric="top5", n_boot=0),
        "plan": scaling.plan(rep.answer("at point")),
        "prediction": fit.get_prediction(runs.head(3)),
    }


def test_summary_displays_as_text(results: dict[str, Any]) -> None:
    for name, result in results.items():
        text = result.summary()
        assert isinstance(text, str), name
        shown = DisplayFormatter().format(text)[0]["text/plain"]
        assert shown == str(text) == pretty(text) and not shown.startswith("'"), name
        assert repr(text) == repr(str(text))  # the plain repr stays a string's, for lists, logs and test diffs


def test_every_result_shows_a_readable_table_and_its_figure(results: dict[str, Any]) -> None:
    before = plt.get_fignums()
    for name, result in results.items():
        data, _ = DisplayFormatter().format(result)
        html = data["text/html"]
        assert "<table" in html and type(result).__name__ in html, name
        assert not RAW_FLOAT.search(html), f"{name}: unformatted numbers"
        has_figure = callable(getattr(result, "plot", None))
        assert ("image/png" in data) == has_figure == ("data:image/png;base64," in html), name
        if has_figure:
            assert data["image/png"].startswith(b"\x89PNG")
    assert plt.get_fignums() == before  # displaying draws off pyplot: nothing left to show twice


def test_plot_draws_on_a_pyplot_figure(results: dict[str, Any]) -> None:
    try:
        for name in ("fit", "bootstrap", "report", "backtest", "compare"):
            ax = results[name].plot()
            assert isinstance(ax, Axes) and plt.fignum_exists(ax.figure.number), name
            assert ax.figure is plt.gcf()
    finally:
        plt.close("all")


def test_a_result_without_a_figure_says_why(runs: pd.DataFrame) -> None:
    """A one-axis table's report has no iso map (it needs two axes): the table shows, and the reason. A loss
    table over two axes shows its map."""
    lm = pd.read_csv(ROOT / "tests" / "golden" / "lm_loss.csv")
    one = lm[lm["tokens"] == 3e10]
    fit = scaling.fit(one, y="loss", axes=["params"], kind="loss", form="powerlaw")
    rep = scaling.project(fit, 2.5, [scaling.Solve("params")])
    data, _ = DisplayFormatter().format(rep)
    assert "<table" in data["text/html"] and "no figure: the iso map is over two axes" in data["text/html"]
    assert "image/png" not in data
    two = scaling.project(scaling.fit(lm, y="loss", axes=["params", "tokens"], kind="loss", form="powerlaw"), 2.2)
    data, _ = DisplayFormatter().format(two)
    assert "no figure" not in data["text/html"] and data["image/png"].startswith(b"\x89PNG")


CELLS = [
    "import scaling\nimport pandas as pd\nruns = scaling.load_runs({db!r})\n"
    "fit = scaling.fit(runs, form='logit1', metric='top5')",
    "fit.plot()",
    "fit",
    "fit.summary()",
    "fit.get_prediction(runs.head(3)).summary_frame(alpha=0.05)",
    "scaling.project(fit, 'human-top5', [scaling.Scale(), scaling.At()])",
    "import matplotlib, sys\nassert 'inline' in matplotlib.get_backend(), matplotlib.get_backend()\n"
    f"assert scaling.__file__.startswith({str(ROOT)!r}), scaling.__file__\n"
    f"assert sys.prefix == {sys.prefix!r}, sys.prefix  # the kernel is this environment's",
]


def test_a_notebook_shows_figures_tables_and_text(published_db_path: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own default: Jupyter's inline backend
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.format(db=str(published_db_path))) for c in CELLS]
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [cell.get("outputs", []) for cell in nb.cells]
    assert not [o for out in outputs for o in out if o.get("output_type") == "error"]

    def kinds(i: int) -> list[str]:
        return [k for o in outputs[i] for k in o.get("data", {})]

    # fit.plot() in a plain cell: the figure inline (pyplot's), beside the Axes' repr
    assert kinds(1).count("image/png") == 1 and "text/plain" in kinds(1)
    # fit: its table and its figure, once
    assert kinds(2).count("image/png") == 1 and "text/html" in kinds(2)
    table = next(o["data"]["text/html"] for o in outputs[2] if "text/html" in o.get("data", {}))
    assert "<table" in table and "log10(n_params)" in table and not RAW_FLOAT.search(table)
    # fit.summary(): text, not an escaped string
    text = next(o["data"]["text/plain"] for o in outputs[3] if "text/plain" in o.get("data", {}))
    assert text.startswith("Fit of form 'logit1'") and "\\n" not in text and "\n" in text
    assert "text/html" in kinds(4) and "mean_ci_lower" in outputs[4][0]["data"]["text/html"]
    assert kinds(5).count("image/png") == 1 and "text/html" in kinds(5)
