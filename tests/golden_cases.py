"""The behaviour record of the CLI: every command's --json on the shipped grid, and every figure's bytes.

Recorded once before the library-first refactor (issue 9) by ``python tests/golden_cases.py record``;
``tests/test_golden.py`` re-runs each case and asserts the same JSON (floats to 1e-7 relative, so that a
BLAS of another machine does not fail it) and, with the recorded matplotlib, the same figure bytes.
Volatile fields are normalised: paths become placeholders and timings ("seconds") are dropped.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
LM_CSV = GOLDEN_DIR / "lm_loss.csv"
VOLATILE = {"seconds", "imported_at", "created_at", "host"}  # timings and clocks of the recording

# name -> CLI arguments (after --db); a case with "--out {out}" also records the figure's sha256.
CASES: dict[str, list[str]] = {
    "forms": ["forms"],
    "targets": ["targets"],
    "runs-list-h14": ["runs", "list", "--arch", "vit_h14", "--image-px", "476"],
    "fit-poly1": ["fit"],
    "fit-poly2-top5": ["fit", "--form", "poly2", "--metric", "top5"],
    "fit-logit1-last": ["fit", "--form", "logit1", "--selection", "last-epoch"],
    "fit-logit2": ["fit", "--form", "logit2"],
    "fit-powerlaw": ["fit", "--form", "powerlaw"],
    "fit-powerlaw-chance-top5": ["fit", "--form", "powerlaw_chance", "--metric", "top5"],
    "fit-logit1-boot": ["fit", "--form", "logit1", "--bootstrap", "40", "--seed", "1", "--level", "0.9"],
    "fit-powerlaw-boot-group": ["fit", "--form", "powerlaw", "--bootstrap", "20", "--group",
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
    "backtest-linear-rolling-none": ["backtest", "--forms", "poly1,poly2,logit1,logit2", "--rolling", "none"],
    "compare": ["compare", "--forms", "poly1,logit1,powerlaw", "--metric", "top5", "--target", "human-top5",
                "--bootstrap", "10"],
    "plot-data": ["plot", "data", "--out", "{out}"],
    "plot-data-powerlaw": ["plot", "data", "--form", "powerlaw", "--band", "none", "--out", "{out}"],
    "plot-resolution": ["plot", "resolution", "--metric", "top5", "--band", "prediction", "--out", "{out}"],
    "plot-iso": ["plot", "iso", "--metric", "top5", "--out", "{out}"],
    "plot-iso-at": ["plot", "iso", "--mode", "at", "--out", "{out}"],
    "plot-iso-boot": ["plot", "iso", "--metric", "top5", "--interval", "bootstrap", "--bootstrap", "20",
                      "--out", "{out}"],
    "plot-backtest": ["plot", "backtest", "--forms", "poly1,logit1", "--out", "{out}"],
    "plot-bootstrap": ["plot", "bootstrap", "--bootstrap", "20", "--out", "{out}"],
    "plot-frontier": ["plot", "frontier", "--rows", "3", "--out", "{out}"],
    "plot-loss": ["plot", "loss", "--out", "{out}"],
}


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
        return {k: normalise(v, replacements) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [normalise(v, replacements) for v in obj]
    if isinstance(obj, str):
        for old, new in replacements.items():
            obj = obj.replace(old, new)
        return obj
    return obj


def run_case(name: str, db: Path, tmp: Path) -> dict[str, Any]:
    """Invoke one case; its normalised JSON and, for figures, the sha256 of the file written."""
    from typer.testing import CliRunner

    from scaling.cli import app

    out = tmp / f"{name}.png"
    args = [a.replace("{out}", str(out)).replace("{lm}", str(LM_CSV)) for a in CASES[name]]
    result = CliRunner().invoke(app, ["--db", str(db), *args, "--json"])
    if result.exit_code != 0:
        raise AssertionError(f"{name}: exit {result.exit_code}\n{result.output}")
    doc = normalise(json.loads(result.stdout), {str(out): "<out>", str(db): "<db>", str(LM_CSV): "<lm.csv>"})
    record: dict[str, Any] = {"args": CASES[name], "json": doc}
    if "{out}" in CASES[name]:
        record["png_sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    return record


def assert_close(got: Any, want: Any, where: str = "$") -> None:
    """Same structure and strings; floats equal to 1e-7 relative (or 1e-10 absolute)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{where}: expected an object, got {type(got).__name__}"
        assert list(got) == list(want), f"{where}: keys {list(got)} != recorded {list(want)}"
        for k in want:
            assert_close(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: list length {got!r} != {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, int | float) and not isinstance(got, bool), f"{where}: {got!r} != {want!r}"
        assert math.isclose(got, want, rel_tol=1e-7, abs_tol=1e-10), f"{where}: {got!r} != recorded {want!r}"
    else:
        assert got == want and type(got) is type(want), f"{where}: {got!r} != recorded {want!r}"


def record(names: list[str]) -> None:
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
            rec = run_case(name, db, Path(d))
            rec["matplotlib"] = matplotlib.__version__
            (GOLDEN_DIR / f"{name}.json").write_text(json.dumps(rec, indent=1, sort_keys=False) + "\n")
            print("recorded", name, file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "record":
        sys.exit("usage: python tests/golden_cases.py record [CASE...]")
    record(sys.argv[2:] or list(CASES))
