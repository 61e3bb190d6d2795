"""The fuzz groups of issue 23, run by ``tests/test_fuzz_inputs.py`` under its per-case time and memory limits:
cost expressions, grid specs and candidate files, config folders, every validated option on every command that
takes it, unbounded work, damaged databases, export targets and text with control characters.

Each case builds its inputs under a fresh folder and returns the arguments after ``--db`` (or its own
``--db``); ``BOUNDED`` maps its name to (builder, expected exit code). A case whose arguments mention
``MARKER`` must not create that file (an expression that would run code).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

Builder = Callable[[Path], list[str]]
BOUNDED: dict[str, tuple[Builder, int]] = {}
MARKER = "MARKER"


def _add(name: str, build: Builder, code: int = 1) -> None:
    assert name not in BOUNDED, name
    BOUNDED[name] = (build, code)


def _file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# A loss table of two axes with known structure (Chinchilla-like), fitted with poly1 (fast).
LM = "params,tokens,loss\n" + "".join(
    f"{n:g},{d:g},{1.7 + 400 / n ** 0.34 + 410 / d ** 0.28:.6f}\n"
    for n in (1e7, 3e7, 1e8, 3e8, 1e9) for d in (1e9, 3e9, 1e10, 3e10, 1e11))


def _lm(d: Path) -> list[str]:
    return ["--data", str(_file(d / "lm.csv", LM)), "--y", "loss", "--axes", "params,tokens", "--kind", "loss",
            "--form", "poly1"]


# -- cost expressions: bounded, guarded, finite and positive over the bounds; never code -----------------------
COSTS = {
    "overflow-power": "params*10**10**10", "zero-division": "params*(1/0)", "minus-100000": "-" * 100_000 + "params",
    "sum-5000": "+".join(["params*tokens"] * 5000), "zero": "params-params", "negative": "-6*params*tokens",
    "power-of-axes": "params**tokens", "float-overflow": "1e308*params*tokens*1e308", "inf-literal": "params*1e400",
    "huge-int-literal": "1" * 400 + "*params", "nested-parens": "(" * 300 + "params" + ")" * 300,
    "deep-unary": "-" * 900 + "params", "zero-times": "0*params*tokens",
    "nan-by-subtraction": "params*1e400-params*1e400", "negative-somewhere": "params*tokens-1e25",
    "code": f"__import__('os').system('touch {MARKER}')", "attribute": "params.real", "subscript": "params[0]",
    "lambda": "lambda: params", "if-else": "params if tokens else 1",
    "modulo": "params%tokens", "shift": "params<<2", "invert": "~params", "and": "params and tokens",
    "fstring": "f'{params}'", "complex": "1j*params", "bool": "True*params", "bytes": "b'x'*params", "empty": "",
    "blank": "   ", "statement": "params; tokens", "unknown-name": "6*params*nope", "constant": "6e20",
    "matmul": "params@tokens", "compare": "params<tokens",
}
for key, expr in COSTS.items():
    _add(f"cost-optimal-{key}", lambda d, e=expr: ["project", *_lm(d), "--target", "2.5", "--optimal", "--cost", e])
    _add(f"cost-budget-{key}", lambda d, e=expr: ["project", *_lm(d), "--budget", "1e21", "--cost", e])
    _add(f"cost-suggest-{key}", lambda d, e=expr: ["suggest", *_lm(d), "--target", "2.5", "--bootstrap", "20",
                                                    "--outcomes", "1", "--cost", e])

# -- grid specs and candidate files (suggest on the fuzz database: fields, values, sizes) ---------------------
SPECS = {
    "unknown-field": "arch=vit_b14;image_px=224;data_hours=50;colour=red",
    "field-twice": "arch=vit_b14;image_px=224;data_hours=50;data_hours=500",
    "seed-fraction": "arch=vit_b14;image_px=224;data_hours=50;subset_seed=1.5",
    "seed-negative": "arch=vit_b14;image_px=224;data_hours=50;subset_seed=-1",
    "seed-1e30": "arch=vit_b14;image_px=224;data_hours=50;subset_seed=1e30",
    "seed-2**63": f"arch=vit_b14;image_px=224;data_hours=50;subset_seed={2 ** 63}",
    "seed-text": "arch=vit_b14;image_px=224;data_hours=50;subset_seed=x",
    "hours-1e12": "arch=vit_b14;image_px=224;data_hours=1e12",
    "hours-zero": "arch=vit_b14;image_px=224;data_hours=0",
    "hours-negative": "arch=vit_b14;image_px=224;data_hours=-5",
    "hours-nan": "arch=vit_b14;image_px=224;data_hours=nan",
    "hours-inf": "arch=vit_b14;image_px=224;data_hours=inf",
    "hours-text": "arch=vit_b14;image_px=224;data_hours=many",
    "px-off-patch": "arch=vit_b14;image_px=225;data_hours=50",
    "px-zero": "arch=vit_b14;image_px=0;data_hours=50",
    "px-huge": "arch=vit_b14;image_px=1400000;data_hours=50",
    "px-nan": "arch=vit_b14;image_px=nan;data_hours=50",
    "arch-unknown": "arch=vit_zz9;image_px=224;data_hours=50",
    "flops-zero": "arch=vit_b14;image_px=224;data_hours=50;pretrain_flops=0",
    "flops-inf": "arch=vit_b14;image_px=224;data_hours=50;pretrain_flops=inf",
    "flops-negative": "arch=vit_b14;image_px=224;data_hours=50;pretrain_flops=-1e20",
    "n_params-nan": "arch=vit_b14;image_px=224;data_hours=50;n_params=nan",
    "no-arch": "image_px=224;data_hours=50",
    "only-separators": ";;;",
    "no-values": "arch=;image_px=224;data_hours=50",
    "no-name": "=vit_b14;image_px=224;data_hours=50",
    "too-many-candidates": "arch=vit_b14,vit_s14;image_px=" + ",".join(str(14 * k) for k in range(16, 1016))
                           + ";data_hours=" + ",".join(str(h) for h in range(1, 1001)),
    "long-and-bad": "arch=vit_b14;image_px=224;data_hours=" + ",".join(str(50 + k) for k in range(80)) + ",-1",
    "control-characters": "arch=vit_b14\x1b[31m;image_px=224;data_hours=50",
}
for key, spec in SPECS.items():
    _add(f"spec-{key}", lambda d, s=spec: ["suggest", "--bootstrap", "20", "--outcomes", "1", "--candidates", s])

CANDIDATE_FILES = {
    "seed-fraction": "arch,image_px,data_hours,subset_seed\nvit_b14,224,50,2.5\n",
    "seed-huge": "arch,image_px,data_hours,subset_seed\nvit_b14,224,50,99999999999999999999\n",
    "hours-1e12": "arch,image_px,data_hours\nvit_b14,224,1e12\n",
    "hours-text": "arch,image_px,data_hours\nvit_b14,224,lots\n",
    "missing-column": "arch,image_px\nvit_b14,224\n",
    "header-only": "arch,image_px,data_hours\n",
    "many-rows": "arch,image_px,data_hours\n" + "vit_b14,224,50\n" * 200_000,
}
for key, text in CANDIDATE_FILES.items():
    _add(f"candidates-file-{key}", lambda d, t=text: ["suggest", "--bootstrap", "20", "--outcomes", "1",
                                                     "--candidates", str(_file(d / "cands.csv", t))])
_add("candidates-missing-csv", lambda d: ["suggest", "--bootstrap", "20", "--candidates", str(d / "none.csv")])
_add("write-config-under-a-file", lambda d: ["suggest", "--bootstrap", "20", "--outcomes", "1", "--write-config",
                                             str(_file(d / "afile", "x") / "next")])
_add("write-config-onto-a-file", lambda d: ["suggest", "--bootstrap", "20", "--outcomes", "1", "--write-config",
                                            str(_file(d / "afile", "x"))])
_add("write-config-name-too-long", lambda d: ["suggest", "--bootstrap", "20", "--write-config", str(d / ("x" * 300))])

# -- options: one validator per option, on every command that takes it -----------------------------------------
FIG = ["--out", "fig.png"]
PER_OPTION: dict[str, tuple[list[list[str]], list[str]]] = {
    "--seed": ([["fit", "--bootstrap", "5"], ["project", "--bootstrap", "5"], ["compare", "--forms", "poly1"],
                ["suggest"], ["plot", "bootstrap", *FIG], ["plot", "loss", *FIG]], ["-1", str(2 ** 63)]),
    "--alpha-max": ([["fit", "--form", "powerlaw"], ["project"], ["backtest"], ["compare", "--bootstrap", "0"]],
                    ["0", "-1", "nan", "inf", "1e308", "101"]),
    "--huber-delta": ([["fit", "--form", "powerlaw"], ["project"], ["backtest"], ["compare", "--bootstrap", "0"]],
                      ["0", "-1", "nan", "inf"]),
    "--level-tol": ([["backtest"], ["compare", "--bootstrap", "0"]], ["-1", "nan", "inf", "1"]),
    "--passes": ([["project"], ["plan"], ["suggest"]], ["0", "-1", "nan", "inf"]),
    "--dpi": ([["plot", "data", *FIG], ["plot", "loss", *FIG], ["plot", "iso", *FIG]], ["0", "-1", "nan", "inf"]),
    "--level": ([["fit", "--bootstrap", "5"], ["compare"], ["suggest"], ["plot", "data", *FIG]],
                ["0", "1", "-0.5", "nan"]),
    "--workers": ([["fit", "--bootstrap", "5"], ["project", "--bootstrap", "5"], ["compare"], ["suggest"]],
                  ["100000"]),
    "--at": ([["project", "--mode", "at"], ["compare", "--bootstrap", "0"], ["suggest", "--question", "at"],
              ["plot", "iso", "--mode", "at", *FIG]],
             ["n_params=2.5e9,data_hours=2e4,image_px=952,extra=1", "n_params=nan,data_hours=2e4,image_px=952",
              "n_params=inf,data_hours=2e4,image_px=952", "n_params=0,data_hours=2e4,image_px=952",
              "n_params=1e9,n_params=2e9,data_hours=2e4,image_px=952", ",", "x"]),
    "--budget": ([["project"], ["suggest"]], ["0", "-1", "nan", "inf", "1e400"]),
    "--target": ([["project"], ["suggest"], ["plot", "iso", *FIG]], ["nan", "inf", "1.5", "-0.2", "1e400"]),
    "--map-axes": ([["plot", "iso", *FIG]], ["n_params", "n_params,n_params", "a,b,c", ","]),
    "--hold": ([["plot", "iso", *FIG]], ["image_px=nan", "image_px=0", "x", "image_px=1,image_px=2"]),
    "--where": ([["plot", "data", *FIG]], ["image_px=inf", "x", ","]),
}
for flag, (commands, values) in PER_OPTION.items():
    for cmd in commands:
        for k, value in enumerate(values):
            _add(f"option-{'-'.join(c.strip('-') for c in cmd if c not in FIG)}-{flag.strip('-')}-{k}",
                 lambda d, c=cmd, f=flag, v=value: [*[str(d / a) if a == "fig.png" else a for a in c], f, v])

BOUNDS = ["n_params=1e9:1e8", "n_params=nan:1e9", "n_params=0:1e9", "n_params=1e9:inf", "x=1:2", "n_params=1e9",
          "n_params=1e9:1e10,n_params=1e9:1e10", ",,,", "image_px=1e-300:1e-300", "image_px=1:10"]
for k, b in enumerate(BOUNDS):
    _add(f"bounds-optimal-{k}", lambda d, b=b: ["project", "--optimal", "--mode", "at", "--bounds", b])
for k, b in enumerate(["params=1e9:1e8", "params=nan:1", "tokens=0:1e9", ",", "params=1e9:1e10,params=1e9:1e10"]):
    _add(f"bounds-budget-{k}", lambda d, b=b: ["project", *_lm(d), "--budget", "1e21", "--cost", "6nd", "--bounds", b])
for k, target in enumerate(["nan", "inf", "1e400", "-1", "0", "80%"]):
    _add(f"loss-target-{k}", lambda d, t=target: ["project", *_lm(d), "--target", t])
_add("loss-target-suggest-nan", lambda d: ["suggest", *_lm(d), "--target", "nan", "--cost", "6nd"])

PLAN = {"--gpus": ["0", "-1"], "--batch": ["0", "-5"], "--usd-per-gpu-hour": ["-1", "inf", "nan"],
        "--peak-tflops": ["0", "inf", "nan", "-1"], "--mfu": ["0", "1.5", "nan"], "--params": ["0", "inf", "nan"],
        "--px": ["0", "nan", "inf"], "--hours": ["0", "-1", "inf"], "--mask-ratio": ["1", "-0.1", "nan"]}
for flag, values in PLAN.items():
    for k, value in enumerate(values):
        _add(f"plan-{flag.strip('-')}-{k}", lambda d, f=flag, v=value: ["plan", f, v])
_add("plan-gpus-1e23", lambda d: ["plan", "--gpus", "1e23"], code=2)
_add("axes-twice", lambda d: ["fit", *_lm(d)[:4], "--axes", "params,params", "--kind", "loss"])

# -- work bounded before it starts: refused in one line with the estimate and the flag ------------------------
WORK = {
    "fit-bootstrap": ["fit", "--bootstrap", "100000000"],
    "project-bootstrap": ["project", "--bootstrap", "100000000"],
    "compare-bootstrap": ["compare", "--forms", "poly1", "--bootstrap", "100000000"],
    "suggest-bootstrap": ["suggest", "--bootstrap", "100000000"],
    "suggest-outcomes": ["suggest", "--bootstrap", "20", "--outcomes", "100000000"],
    "plot-iso-bootstrap": ["plot", "iso", "--interval", "bootstrap", "--bootstrap", "100000000", *FIG],
    "plot-bootstrap-bootstrap": ["plot", "bootstrap", "--bootstrap", "100000000", *FIG],
    "project-frontier-rows": ["project", "--optimal", "--mode", "at", "--frontier-rows", "100000000"],
    "plot-frontier-rows": ["plot", "frontier", "--rows", "1000000", *FIG],
    "plot-dpi": ["plot", "loss", "--fraction", "0.01", "--seed", "2", "--dpi", "100000", *FIG],
}
for key, args in WORK.items():
    _add(f"work-{key}", lambda d, a=args: [str(d / x) if x == "fig.png" else x for x in a])
_add("work-table-candidates", lambda d: ["suggest", *_lm(d), "--target", "2.5", "--cost", "6nd", "--candidates",
                                         str(_file(d / "c.csv", "params,tokens\n" + "1e9,1e11\n" * 300_000))])


# -- damaged databases: one line naming the table, column and run --------------------------------------------
def _damaged(sql: str) -> Callable[[Path, Path], Path]:
    def make(d: Path, source: Path) -> Path:
        path = d / "damaged.sqlite"
        path.write_bytes(source.read_bytes())
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA ignore_check_constraints = 1")
        conn.execute(sql)
        conn.commit()
        conn.close()
        return path

    return make


FIRST = "(SELECT min(run_id) FROM runs)"
DAMAGE = {  # name -> (the table damaged, SQL)
    "eval-value-text": ("evals", "UPDATE evals SET value = 'abc' WHERE run_id IN (SELECT run_id FROM evals LIMIT 3)"),
    "image_px-text": ("runs", f"UPDATE runs SET image_px = 'big' WHERE run_id = {FIRST}"),
    "n_params-blob": ("runs", f"UPDATE runs SET n_params = x'00ff' WHERE run_id = {FIRST}"),
    "config-not-json": ("runs", f"UPDATE runs SET config_json = '{{oops' WHERE run_id = {FIRST}"),
    "package_versions-not-json": ("runs", f"UPDATE runs SET package_versions = '[1,' WHERE run_id = {FIRST}"),
    "history-value-text": ("history", "UPDATE history SET value = 'x' WHERE rowid = (SELECT min(rowid) FROM history)"),
}
DAMAGE_COMMANDS = {  # name -> (the tables it reads, arguments)
    "list": ({"runs", "evals"}, ["runs", "list"]),
    "show": ({"runs", "evals", "history"}, ["runs", "show", "RUN"]),
    "export-csv": ({"runs", "evals"}, ["runs", "export", "OUT.csv"]),
    "export-jsonl": ({"runs", "evals", "history"}, ["runs", "export", "OUT.jsonl"]),
    "fit": ({"runs", "evals"}, ["fit"]),
    "plan": ({"runs", "evals"}, ["plan"]),
    "loss": ({"runs", "history"}, ["plot", "loss", "--runs", "RUN", *FIG]),
}
DAMAGED_CASES: dict[str, tuple[Callable[[Path, Path], Path], list[str]]] = {}
for key, (table, sql) in DAMAGE.items():
    for cname, (reads, cmd) in DAMAGE_COMMANDS.items():
        if table in reads:  # a command that does not read the damaged table runs as usual
            DAMAGED_CASES[f"damaged-{key}-{cname}"] = (_damaged(sql), cmd)


def damaged_args(cmd: list[str], d: Path, db: Path) -> list[str]:
    """The command's arguments on a damaged copy: RUN is a run the damage touched (or any), OUT a new file."""
    conn = sqlite3.connect(db)
    run = conn.execute("SELECT run_id FROM evals WHERE typeof(value) = 'text' UNION ALL "
                       "SELECT run_id FROM history WHERE typeof(value) = 'text' UNION ALL "
                       f"SELECT {FIRST}").fetchone()[0]
    conn.close()
    return [str(run) if a == "RUN" else str(d / a.replace("OUT", "out")) if a.startswith("OUT") else
            str(d / a) if a == "fig.png" else a for a in cmd]


# -- export targets: never the database, a folder or an existing file without --force ------------------------
EXPORTS: dict[str, Callable[[Path, Path], list[str]]] = {
    "onto-the-database": lambda d, db: ["runs", "export", "--format", "csv", str(db)],
    "onto-the-wal": lambda d, db: ["runs", "export", "--format", "csv", f"{db}-wal"],
    "onto-the-database-forced": lambda d, db: ["runs", "export", "--format", "csv", "--force", str(db)],
    "onto-a-folder": lambda d, db: ["runs", "export", str(_mkdir(d / "folder.csv"))],
    "onto-an-existing-file": lambda d, db: ["runs", "export", str(_file(d / "old.csv", "keep me\n"))],
    "onto-an-existing-jsonl": lambda d, db: ["runs", "export", str(_file(d / "old.jsonl", "keep me\n"))],
    "name-too-long": lambda d, db: ["runs", "export", str(d / ("x" * 300 + ".csv"))],
}


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- text with control characters, shown escaped (these run: exit 0) ------------------------------------------
ESCAPE = "\x1b[31m\x1b]0;pwned\x07\u202e"
SHOWN: dict[str, Builder] = {
    "fit-column-names": lambda d: ["fit", "--data", str(_file(d / "t.csv", f"a,b{ESCAPE},loss\n" + "".join(
        f"{i},{(3 * i) % 7 + 1},{1 / i + 0.1}\n" for i in range(1, 9)))), "--y", "loss", "--axes", f"a,b{ESCAPE}",
        "--kind", "loss"],
    "backtest-column-names": lambda d: ["backtest", "--forms", "poly1", "--data", str(_file(d / "t.csv", (
        f"a{ESCAPE},b,loss\n" + "".join(f"{i},{(3 * i) % 7 + 1},{1 / i + 0.1}\n" for i in range(1, 13))))),
        "--y", "loss", "--axes", f"a{ESCAPE},b", "--kind", "loss"],
}
