"""The behaviour record of the CLI: every command's --json on the shipped grid, and what every figure draws.

Recorded by ``python tests/golden_cases.py record [CASE...]``; ``tests/test_golden.py`` re-runs each case and
compares it with the record under the tolerance rule below. Re-record only for a change an issue asks for,
and say so in the commit.

What is recorded
----------------
- The command's ``--json``, normalised: paths become placeholders, and clocks, timings and path-dependent
  solver diagnostics are dropped (``VOLATILE``, ``DIAGNOSTIC``): which start or screen won a refit, or
  whether a fallback was needed, depends on the floating-point path of a machine, not on the answer.
- For a figure, what it draws (``describe_figure``): per axes the title, labels, scales, limits, legend and
  text strings, a sample of every line's points, every collection's point offsets and extent. Figures are
  never compared by their bytes: those follow the renderer, its FreeType and the fonts of a machine.

The tolerance rule
------------------
Objects have the same keys (in any order: JSON does not order them). Strings, booleans, None and integers
(counts, verdicts, ranks) are compared exactly. A float ``got`` equals
the recorded ``want`` when ``|got - want| <= max(rtol * |want|, atol)``, with (rtol, atol) set by how the
number was computed:

- ``CLOSED`` (rtol 1e-6, atol 1e-12): closed forms and direct linear algebra: the OLS of the poly/logit
  forms, the analytic FLOPs, roots found by brentq to xtol 1e-12, percentiles of such numbers. BLAS kernels
  differ by a few ulp times the condition number of a design (up to ~1e6 for the quadratic forms in logs),
  and an extrapolation to 2-7 decades beyond the data multiplies a change in the coefficients by up to
  ~1e2: about 1e-8 at worst. A 1e-9 change of the inputs (``tests/test_golden.py`` perturbs them) moves
  these numbers by the same factors, ~1e-7; 1e-6 leaves a margin of 10 above both.
- ``SOLVER`` (rtol 1e-4, atol 1e-9): outputs of the iterative fits (VarPro's L-BFGS-B at ftol 1e-15 and
  gtol 1e-10, m4's trust-region least squares at ftol/xtol 1e-12, bnsl's L-BFGS-B at ftol 1e-13). A fit
  stops where the loss changes by ftol, so a parameter is known to about sqrt(ftol) ~ 1e-7 of its scale
  along a well-determined direction, and to sqrt(ftol / lambda_min) along a poorly determined one, where
  lambda_min is the smallest eigenvalue of the scaled Hessian (the grid's power laws have parameters with
  standard errors of 4x their estimate: lambda_min ~ 1e-5 relative). Hence 1e-4.
- ``ARGMIN`` (rtol 1e-3, atol 1e-9): coordinates of the SLSQP allocations (``optimal``, ``frontier``,
  ``budget``; ftol 1e-13 on the log cost over the unit box of the log bounds). An argmin is known to
  sqrt(ftol) ~ 3e-7 of the box, i.e. ln(10) x (decades the box spans, up to 8) x 3e-7 ~ 6e-6 relative, and
  where the objective is flat along the iso-target surface (the frontier's long valleys) by a further
  sqrt(curvature ratio) ~ 1e2. Hence 1e-3. The objective's value at the argmin (the cost) is known to ftol
  and would pass at ``SOLVER``; it shares its key with the coordinates, so it is compared at ``ARGMIN``.

A case is ``SOLVER`` when any of its forms is fitted iteratively (``ITERATIVE_FORMS``), otherwise
``CLOSED``; any number below a key that starts with ``optim``, or is ``frontier``, ``budget`` or
``cheapest``, is ``ARGMIN`` (``tolerance``). The perturbation test checks that the record sits inside these
tolerances with room: the same verdicts (strings, counts) and numbers within tolerance after a 1e-9
relative change of every input value.
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
LM_CSV = GOLDEN_DIR / "lm_loss.csv"
VOLATILE = {"seconds", "imported_at", "created_at", "host"}  # timings and clocks of the recording
DIAGNOSTIC = {"refit_paths", "fallback_starts"}  # which solver path won: machine-dependent, not the answer

Tolerance = tuple[float, float]  # (rtol, atol)
CLOSED: Tolerance = (1e-5, 1e-12)
SOLVER: Tolerance = (1e-4, 1e-9)
ARGMIN: Tolerance = (1e-3, 1e-9)
ITERATIVE_FORMS = {"powerlaw", "powerlaw_chance", "saturating", "m4", "bnsl"}
ARGMIN_KEYS = {"frontier", "budget", "cheapest"}

# name -> CLI arguments (after --db); "{out}" is a figure file, "{lm}" the loss table.
CASES: dict[str, list[str]] = {
    "forms": ["forms"],
    "targets": ["targets"],
    "runs-list-h14": ["runs", "list", "--with-metric", "top1", "--arch", "vit_h14", "--image-px", "476"],
    "fit-poly1": ["fit", "--metric", "top1"],
    "fit-poly2-top5": ["fit", "--form", "poly2", "--metric", "top5"],
    "fit-logit1-last": ["fit", "--metric", "top1", "--form", "logit1", "--selection", "last-epoch"],
    "fit-logit2": ["fit", "--metric", "top1", "--form", "logit2"],
    "fit-powerlaw": ["fit", "--metric", "top1", "--form", "powerlaw"],
    "fit-powerlaw-chance-top5": ["fit", "--form", "powerlaw_chance", "--metric", "top5"],
    "fit-logit1-boot": ["fit", "--metric", "top1", "--form", "logit1", "--bootstrap", "40", "--seed", "1", "--level",
                        "0.9"],
    "fit-powerlaw-boot-group": ["fit", "--metric", "top1", "--form", "powerlaw", "--bootstrap", "20", "--group",
                                "data_fraction,subset_seed"],
    "fit-csv-loss": ["fit", "--data", "{lm}", "--y", "loss", "--axes", "params,tokens", "--kind", "loss",
                     "--form", "powerlaw"],
    "fit-csv-loss-poly1": ["fit", "--data", "{lm}", "--y", "loss", "--axes", "params,tokens", "--kind", "loss"],
    "project": ["project"],
    "project-logit1": ["project", "--form", "logit1"],
    "project-powerlaw": ["project", "--form", "powerlaw"],
    "project-chance-top5": ["project", "--form", "powerlaw_chance"],
    "project-solve-params": ["project", "--mode", "solve", "--axis", "n_params"],
    "project-scale-exponents": ["project", "--mode", "scale", "--exponents", "image_px=0.5", "--target", "80%",
                                "--metric", "top1"],
    "project-at-passes": ["project", "--mode", "at", "--at", "n_params=1e9,data_hours=5000,image_px=476",
                          "--passes", "3"],
    "project-mae-top1": ["project", "--target", "mae-vit-h-full-imagenet", "--form", "logit1"],
    "project-boot": ["project", "--form", "logit1", "--bootstrap", "30", "--seed", "1"],
    "project-powerlaw-boot": ["project", "--form", "powerlaw", "--bootstrap", "20", "--seed", "2"],
    "project-optimal": ["project", "--form", "logit1", "--optimal", "--bounds", "image_px=224:952"],
    "project-optimal-powerlaw": ["project", "--form", "powerlaw", "--optimal", "--frontier-rows", "3"],
    "project-optimal-boot": ["project", "--form", "poly1", "--optimal", "--bootstrap", "10", "--frontier-rows",
                             "3"],
    "project-figure": ["project", "--figure", "{out}"],
    "project-csv-loss": ["project", "--data", "{lm}", "--y", "loss", "--axes", "params,tokens", "--kind", "loss",
                         "--form", "powerlaw", "--mode", "solve", "--axis", "tokens", "--target", "2.5"],
    "backtest": ["backtest", "--forms", "poly1,logit1,powerlaw", "--metric", "top5"],
    "backtest-linear-rolling-none": ["backtest", "--metric", "top1", "--forms", "poly1,poly2,logit1,logit2",
                                     "--rolling", "none"],
    "compare": ["compare", "--forms", "poly1,logit1,powerlaw", "--metric", "top5", "--target", "human-top5",
                "--bootstrap", "10"],
    "plot-data": ["plot", "data", "--metric", "top1", "--out", "{out}"],
    "plot-data-powerlaw": ["plot", "data", "--metric", "top1", "--form", "powerlaw", "--band", "none", "--out",
                           "{out}"],
    "plot-resolution": ["plot", "resolution", "--metric", "top5", "--band", "prediction", "--out", "{out}"],
    "plot-iso": ["plot", "iso", "--metric", "top5", "--out", "{out}"],
    "plot-iso-at": ["plot", "iso", "--mode", "at", "--out", "{out}"],
    "plot-iso-boot": ["plot", "iso", "--metric", "top5", "--interval", "bootstrap", "--bootstrap", "20",
                      "--out", "{out}"],
    "plot-backtest": ["plot", "backtest", "--metric", "top1", "--forms", "poly1,logit1", "--out", "{out}"],
    "plot-bootstrap": ["plot", "bootstrap", "--bootstrap", "20", "--out", "{out}"],
    "plot-frontier": ["plot", "frontier", "--rows", "3", "--out", "{out}"],
    "plot-loss": ["plot", "loss", "--out", "{out}"],
    # every command's default metric is the default target's (top-5 for human-top5)
    "fit-default-metric": ["fit"],
    "backtest-default-metric": ["backtest", "--forms", "poly1,logit1"],
    # Chinchilla's question alone: no target on a loss table (issue 17)
    "project-csv-budget-alone": ["project", "--data", "{lm}", "--y", "loss", "--axes", "params,tokens", "--kind",
                                 "loss", "--form", "powerlaw", "--budget", "1e21", "--cost", "6nd"],
}
# Cases whose every number comes out of an allocation optimiser (the frontier figure draws only argmins).
CASE_TOLERANCE: dict[str, Tolerance] = {"plot-frontier": ARGMIN}


def case_tolerance(name: str) -> Tolerance:
    """The tolerance of a case's numbers outside the allocation keys (see the module's rule)."""
    if name in CASE_TOLERANCE:
        return CASE_TOLERANCE[name]
    words = {w for a in CASES[name] for w in a.split(",")}
    return SOLVER if words & ITERATIVE_FORMS else CLOSED


def tolerance(name: str, path: tuple[str, ...]) -> Tolerance:
    """(rtol, atol) of the number at ``path`` (its keys from the root) in case ``name``."""
    if any(k.startswith("optim") or k in ARGMIN_KEYS for k in path):
        return max(ARGMIN, case_tolerance(name))
    return case_tolerance(name)


def write_lm_csv(path: Path) -> None:
    """A language-model loss table with known parameters (Chinchilla's fitted law, deterministic noise)."""
    rng = np.random.default_rng(7)
    rows = []
    for n in [1e7, 3e7, 1e8, 3e8, 1e9]:
        for d in [1e9, 3e9, 1e10, 3e10]:
            loss = 1.69 + 406.4 * n**-0.34 + 410.7 * d**-0.28
            rows.append(f"{n:g},{d:g},{loss * math.exp(rng.normal(0, 0.01)):.6f}")
    path.write_text("params,tokens,loss\n" + "\n".join(rows) + "\n")


def normalise(obj: Any, replacements: dict[str, str]) -> Any:
    if isinstance(obj, dict):
        return {k: normalise(v, replacements) for k, v in obj.items() if k not in VOLATILE | DIAGNOSTIC}
    if isinstance(obj, list):
        return [normalise(v, replacements) for v in obj]
    if isinstance(obj, str):
        for old, new in replacements.items():
            obj = obj.replace(old, new)
        return obj
    return obj


# ---- what a figure draws --------------------------------------------------------------------------------

LINE_SAMPLE = 40  # points kept of a longer line (evenly spaced indices, ends included)


def _floats(values: Any) -> list[float | None]:
    arr = np.ma.filled(np.ma.asarray(values, dtype=float), np.nan).ravel()
    return [None if not math.isfinite(v) else float(v) for v in arr]


def _sample(n: int) -> np.ndarray:
    return np.arange(n) if n <= LINE_SAMPLE else np.unique(np.linspace(0, n - 1, LINE_SAMPLE).round().astype(int))


def _extent(vertices: np.ndarray) -> list[float | None]:
    finite = vertices[np.isfinite(vertices).all(axis=1)] if len(vertices) else vertices
    if not len(finite):
        return []
    return _floats([*finite.min(axis=0), *finite.max(axis=0)])


def _collection(coll: Any) -> dict[str, Any]:
    offsets = np.asarray(coll.get_offsets(), dtype=float).reshape(-1, 2)
    paths = coll.get_paths()
    vertices = np.concatenate([p.vertices for p in paths]) if paths else np.empty((0, 2))
    keep = _sample(len(offsets))
    return {"type": type(coll).__name__, "label": coll.get_label(), "n_paths": len(paths),
            "extent": _extent(vertices), "n_offsets": len(offsets), "offsets": _floats(offsets[keep])}


def _axes(ax: Any) -> dict[str, Any]:
    legend = ax.get_legend()
    lines = []
    for line in ax.get_lines():
        x, y = np.ma.asarray(line.get_xdata(), dtype=float), np.ma.asarray(line.get_ydata(), dtype=float)
        keep = _sample(len(x))
        lines.append({"label": line.get_label(), "n": len(x), "x": _floats(x[keep]), "y": _floats(y[keep])})
    return {
        "title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
        "xscale": ax.get_xscale(), "yscale": ax.get_yscale(),
        "xlim": _floats(ax.get_xlim()), "ylim": _floats(ax.get_ylim()),
        "legend": [t.get_text() for t in legend.get_texts()] if legend is not None else [],
        "texts": [t.get_text() for t in ax.texts if t.get_visible()],
        "lines": lines,
        "collections": [_collection(c) for c in ax.collections if c.get_visible()],
        "patches": len(ax.patches),
    }


def describe_figure(fig: Any) -> dict[str, Any]:
    """What ``fig`` draws, in data coordinates (see the module docstring)."""
    suptitle = getattr(fig, "_suptitle", None)
    return {"suptitle": suptitle.get_text() if suptitle is not None else "",
            "texts": [t.get_text() for t in fig.texts if t.get_visible()],
            "legends": [[t.get_text() for t in leg.get_texts()] for leg in fig.legends],
            "axes": [_axes(ax) for ax in fig.axes if ax.get_visible()]}


@contextmanager
def capturing_figures() -> Iterator[list[dict[str, Any]]]:
    """Record ``describe_figure`` of every figure saved inside the block (through Figure.savefig)."""
    from matplotlib.figure import Figure

    seen: list[dict[str, Any]] = []
    original: Callable[..., Any] = Figure.savefig

    def savefig(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(describe_figure(self))
        return original(self, *args, **kwargs)

    Figure.savefig = savefig  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        Figure.savefig = original  # type: ignore[method-assign]


def check_png(path: Path) -> None:
    """The figure file is a PNG that decodes and is not blank."""
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100, f"{path}: not a figure ({pixels.shape})"
    assert float(pixels[..., :3].std()) > 0.01, f"{path}: the figure is blank"


# ---- running and comparing ------------------------------------------------------------------------------

def run_case(name: str, db: Path, tmp: Path, lm_csv: Path = LM_CSV) -> dict[str, Any]:
    """Invoke one case: its normalised JSON and, for figures, what each saved figure draws."""
    from typer.testing import CliRunner

    from scaling.cli import app

    out = tmp / f"{name}.png"
    args = [a.replace("{out}", str(out)).replace("{lm}", str(lm_csv)) for a in CASES[name]]
    with capturing_figures() as drawn:
        result = CliRunner().invoke(app, ["--db", str(db), *args, "--json"])
    if result.exit_code != 0:
        raise AssertionError(f"{name}: exit {result.exit_code}\n{result.output}")
    doc = normalise(json.loads(result.stdout), {str(out): "<out>", str(db): "<db>", str(lm_csv): "<lm.csv>"})
    record: dict[str, Any] = {"args": CASES[name], "json": doc}
    if "{out}" in CASES[name]:
        check_png(out)
        record["figures"] = drawn
    return record


def deviations(got: Any, want: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str, float]]:
    """Every difference between ``got`` and the record: (path, what, size); size is the relative error of
    a float (``inf`` for a difference in structure, a string or a count)."""
    if isinstance(want, dict):  # JSON objects: the same keys, in any order
        if not isinstance(got, dict) or set(got) != set(want):
            yield path, f"keys {list(got) if isinstance(got, dict) else type(got).__name__} != {list(want)}", math.inf
            return
        for k in want:
            yield from deviations(got[k], want[k], (*path, k))
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            yield path, f"{got!r} != {want!r}", math.inf
            return
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            yield from deviations(g, w, (*path, str(i)))
    elif isinstance(want, float) and not isinstance(want, bool):
        if not isinstance(got, int | float) or isinstance(got, bool):
            yield path, f"{got!r} != {want!r}", math.inf
        elif got != want:
            yield path, f"{got!r} != recorded {want!r}", abs(got - want) / max(abs(want), 1e-300)
    elif not (got == want and type(got) is type(want)):
        yield path, f"{got!r} != recorded {want!r}", math.inf


def within(got: float, want: float, tol: Tolerance) -> bool:
    rtol, atol = tol
    return abs(got - want) <= max(rtol * abs(want), atol)


def assert_matches(name: str, got: dict[str, Any], want: dict[str, Any]) -> None:
    """``got`` equals the record of case ``name`` under the tolerance rule."""
    bad = []
    for path, what, size in deviations(got, want):
        tol = tolerance(name, path)
        if math.isinf(size) or not within(_at(got, path), _at(want, path), tol):
            bad.append(f"$.{'.'.join(path)}: {what} (tolerance rtol={tol[0]:g})")
    assert not bad, f"{name}: {len(bad)} difference(s) from the record:\n" + "\n".join(bad[:20])


def _at(doc: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        doc = doc[int(k)] if isinstance(doc, list) else doc[k]
    return doc


# ---- perturbed inputs -----------------------------------------------------------------------------------

PERTURBATION = 1e-9

# REAL columns of the run database: measurements (each value moved on its own) and design coordinates
# (every occurrence of a value moved alike, so that runs at one grid level stay at one level).
_MEASURED = [("evals", "value"), ("history", "value")]
_DESIGN = [("runs", "data_hours"), ("runs", "data_fraction"), ("runs", "pretrain_flops"), ("runs", "mask_ratio")]


def _factor(value: float, sign: float, rel: float, at_most_one: bool) -> float:
    return value * (1.0 - rel) if at_most_one and value >= 1.0 else value * (1.0 + sign * rel)


def perturb_db(path: Path, rel: float = PERTURBATION, seed: int = 0) -> None:
    """Multiply every input value of the database at ``path`` by 1 +- ``rel`` (signs drawn at random;
    downwards where a value sits at its upper bound of 1). Equal design coordinates stay equal."""
    rng = np.random.default_rng(seed)
    with sqlite3.connect(path) as conn:
        for table, col in _MEASURED + _DESIGN:
            bounded = col in {"value", "data_fraction"}
            rows = conn.execute(f"SELECT rowid, {col} FROM {table} WHERE {col} IS NOT NULL ORDER BY rowid").fetchall()
            if (table, col) in _MEASURED:
                signs = rng.choice([-1.0, 1.0], size=len(rows))
                new = [(_factor(v, s, rel, bounded), rid) for (rid, v), s in zip(rows, signs, strict=True)]
            else:
                levels = sorted({v for _, v in rows})
                sign_of = dict(zip(levels, rng.choice([-1.0, 1.0], size=len(levels)), strict=True))
                new = [(_factor(v, sign_of[v], rel, bounded), rid) for rid, v in rows]
            conn.executemany(f"UPDATE {table} SET {col} = ? WHERE rowid = ?", new)


def perturb_csv(src: Path, dst: Path, rel: float = PERTURBATION, seed: int = 0) -> None:
    """A copy of the loss table with every number multiplied by 1 +- ``rel``."""
    rng = np.random.default_rng(seed)
    head, *rows = src.read_text().splitlines()
    out = [head]
    for row in rows:
        values = [float(v) * (1.0 + rel * float(rng.choice([-1.0, 1.0]))) for v in row.split(",")]
        out.append(",".join(repr(v) for v in values))
    dst.write_text("\n".join(out) + "\n")


def record(names: list[str], *, figures_only: bool = False) -> None:
    """Write the record of ``names``; ``figures_only`` keeps each recorded JSON and re-records only what its
    figures draw (for a change to the drawing alone)."""
    import tempfile

    import matplotlib

    from runs_db import open_db

    GOLDEN_DIR.mkdir(exist_ok=True)
    if not LM_CSV.exists():
        write_lm_csv(LM_CSV)
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "runs.sqlite"
        open_db(db)
        for name in names:
            path = GOLDEN_DIR / f"{name}.json"
            rec = run_case(name, db, Path(d))
            if figures_only:
                old = json.loads(path.read_text())
                assert_matches(name, rec["json"], old["json"])
                rec["json"] = old["json"]
            rec["matplotlib"] = matplotlib.__version__
            path.write_text(json.dumps(rec, indent=1, sort_keys=False) + "\n")
            print("recorded", name, file=sys.stderr)


USAGE = "usage: python tests/golden_cases.py record [--figures-only] [CASE...]"

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "record":
        sys.exit(USAGE)
    figures = "--figures-only" in sys.argv[2:]
    chosen = [a for a in sys.argv[2:] if a != "--figures-only"]
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        sys.exit(f"unknown case(s) {', '.join(unknown)}; {USAGE}")
    record(chosen or list(CASES), figures_only=figures)
