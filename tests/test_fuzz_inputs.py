"""Malformed inputs over every format (CSV, JSON lines, run.json, MAE logs, database files) and the commands'
options: each exits 1 (2 for a usage error) with exactly one line on stderr, no traceback, no warning, no raw
control character, and an unchanged database (a dump of every table, compared before and after).

The real entry point (``scaling.cli.main``) runs in-process, so that usage errors are checked as users see
them and 850+ cases stay fast. Each bad file is tried by ``runs import`` and by ``runs validate``. Every case
runs under a time limit (``CASE_SECONDS``) and a memory limit (``CASE_MEMORY``, on the process's address
space): work that is not bounded fails the case instead of hanging or exhausting the machine. The groups of
issue 23 (cost expressions, grid specs, every validated option, unbounded work, damaged databases, export
targets, control characters) are in ``tests/fuzz_bounded.py``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
import resource
import shutil
import signal
import sqlite3
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

import runs_db
import scaling.cli
from scaling.cli import main
from tests import fuzz_bounded
from tests.cli_helpers import sqlite_file

LOGS = runs_db.published_logs_dir()
PROTOCOL, EVAL_SET = runs_db.PROTOCOL_PERMISSIVE, runs_db.EVAL_SET_IMAGENET


# ------------------------------------------------------------------------------------------------ harness
@pytest.fixture(autouse=True, scope="module")
def _built_once() -> Any:
    """``main()`` as is, but the Click command that Typer builds from the app on every call (0.3 s) is built
    once: Typer's ``app(...)`` is ``get_command(app)(...)``."""
    command = typer.main.get_command(scaling.cli.app)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scaling.cli, "app", lambda **kwargs: command(**kwargs))
        yield


CASE_SECONDS = 30  # no case is near this: a bounded command answers in about a second here
CASE_MEMORY = 2 * 2**30  # address space a case may add to the test process
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class CaseTimeout(BaseException):
    """Raised in a case that runs past CASE_SECONDS (a BaseException: nothing in the CLI catches it)."""


def _vm_bytes() -> int:
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    return kb * 1024


@contextlib.contextmanager
def limits(seconds: float = CASE_SECONDS, memory: int = CASE_MEMORY) -> Iterator[None]:
    """Run the body under a wall-clock limit (SIGALRM raises CaseTimeout) and an address-space limit (a
    MemoryError past it), both lifted after."""

    def expire(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"the case ran past {seconds} s")

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = _vm_bytes() + memory
    resource.setrlimit(resource.RLIMIT_AS, (ceiling if hard == resource.RLIM_INFINITY else min(ceiling, hard), hard))
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_cli(args: list[str]) -> tuple[int, str, str, list[str]]:
    """``scaling ARGS`` in-process through ``scaling.cli.main``: (exit code, stdout, stderr, warnings)."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["scaling", *args]
    code: Any = 0
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        warnings.simplefilter("always")
        try:
            with limits():
                main()
        except SystemExit as exc:
            code = exc.code
        except BaseException as exc:  # a traceback is exactly what must not happen: report it as one
            import traceback

            err.write("Traceback (escaped main):\n" + "".join(traceback.format_exception(exc)))
            code = -1
        finally:
            sys.argv = argv
    return (0 if code is None else int(code)), out.getvalue(), err.getvalue(), [str(w.message) for w in caught]


def dump(path: Path) -> str:
    """Every table of an SQLite file (schema, version and rows) hashed; raw bytes for anything else."""
    if not path.exists():
        return "absent"
    if path.is_dir():
        return "a folder"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            h = hashlib.sha256(repr(conn.execute("PRAGMA user_version").fetchone()).encode())
            for name, sql in conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall():
                h.update(repr((name, sql)).encode())
                if str(sql).startswith("CREATE TABLE"):
                    h.update(repr(conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid').fetchall()).encode())
            return h.hexdigest()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------- good inputs
CSV_HEADER = ["arch", "image_px", "data_hours", "data_fraction", "subset_seed", "pretrain_steps", "global_batch",
              "mask_ratio", "status", "name", "protocol", "eval_set", "metric", "selection", "value", "epoch",
              "n_epochs", "config_json", "tags_json", "started_at"]


def csv_row(**over: Any) -> dict[str, Any]:
    row = {"arch": "vit_s14", "image_px": 224, "data_hours": 4.98, "data_fraction": 0.001, "subset_seed": 5,
           "pretrain_steps": 100, "global_batch": 64, "mask_ratio": 0.75, "status": "COMPLETED", "name": "s",
           "protocol": PROTOCOL, "eval_set": EVAL_SET, "metric": "top1", "selection": "best-epoch", "value": 0.2,
           "epoch": 3, "n_epochs": 5, "config_json": "", "tags_json": "", "started_at": "2025-01-01T10:00:00Z"}
    return {**row, **over}


def write_csv(path: Path, rows: list[dict[str, Any]], header: list[str] = CSV_HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows([[r.get(c, "") for c in header] for r in rows])
    return path


def record(i: int = 1, **over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "schema": "runs_db/run.json@1", "name": f"tiny_{i}", "status": "COMPLETED", "arch": "vit_t14",
        "image_px": 224, "data_frames": 17_959, "data_fraction": 0.001, "subset_seed": i, "pretrain_steps": 1000,
        "global_batch": 64, "mask_ratio": 0.75, "package_versions": {"numpy": "2.0"},
        "started_at": "2025-01-01T10:00:00Z",
        "config": {"arch": "vit_t14", "image_px": 224, "data_fraction": 0.001, "subset_seed": i},
        "evals": [{"protocol": PROTOCOL, "eval_set": EVAL_SET, "metric": "top1", "selection": "best-epoch",
                   "value": 0.05 + i / 100, "epoch": 3, "n_epochs": 5}],
        "history": [{"phase": "pretrain", "key": "train_loss", "step": s, "value": 1 / (s + 1)} for s in (0, 10)],
        "tags": {"note": "fuzz"},
    }
    rec.update(over)
    return rec


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.fixture(scope="module")
def fuzz_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small database with rows in every table: 16 CSV runs (2 archs x 4 data sizes x 2 px, top-1 and
    top-5: every axis has >= 2 levels, so commands reach their option checks), a run.json with history and
    tags, one MAE run."""
    root = tmp_path_factory.mktemp("fuzzdb")
    rows = [csv_row(arch=a, image_px=px, data_hours=h, data_fraction=h / 5000, subset_seed=1, metric=m,
                    name=f"{a}-{h}-{px}", value=0.1 + 0.2 * k + 0.02 * j + 0.0002 * px + (0.1 if m == "top5" else 0))
            for k, a in enumerate(("vit_s14", "vit_b14")) for j, h in enumerate((0.5, 5, 50, 500))
            for px in (224, 448) for m in ("top1", "top5")]
    write_csv(root / "grid.csv", rows)
    (root / "run").mkdir()
    (root / "run" / "run.json").write_text(json.dumps(record(1)))
    logs = mae_copy(root / "logs")
    path = root / "runs.sqlite"
    with runs_db.open_db(path, seed_published=False) as db:
        db.import_paths([root / "grid.csv", root / "run", logs])
    return path


MAE_RUN = ("vitb14_logs", "vitb14_0.01_2_log.txt")


def mae_copy(root: Path) -> Path:
    for kind in ("pretraining", "finetuning"):
        dst = root / f"{kind}_logs" / MAE_RUN[0] / MAE_RUN[1]
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(LOGS / f"{kind}_logs" / MAE_RUN[0] / MAE_RUN[1], dst)
    return root


# ------------------------------------------------------------------------------------------------- cases
# A case builds its inputs under a fresh folder and returns (arguments after --db, expected exit code).
Builder = Callable[[Path], list[str]]
CASES: dict[str, tuple[Builder, int]] = {}


def case(name: str, code: int = 1) -> Callable[[Builder], Builder]:
    def register(build: Builder) -> Builder:
        assert name not in CASES, name
        CASES[name] = (build, code)
        return build

    return register


def file_case(name: str, make: Callable[[Path], Path]) -> None:
    """One bad file, tried by import and by validate."""
    case(f"import-{name}")(lambda d: ["runs", "import", str(make(d))])
    case(f"validate-{name}")(lambda d: ["runs", "validate", str(make(d))])


BAD_CELLS: dict[str, list[Any]] = {
    "arch": ["", "vit_zz9", "vit\x00s14"],
    "image_px": ["", "abc", "0", "-14", "225", "1.5", "nan", "1e400", 10**30, "²", "99999999"],
    "data_hours": ["abc", "0", "-1", "nan", "inf", "1e308", "1e12"],
    "data_fraction": ["0", "1.5", "-0.1", "nan"],
    "subset_seed": ["1.5", "x", 10**25, "-" + "9" * 20],
    "pretrain_steps": ["-1", 10**20, "1e30"],
    "global_batch": ["0", 2**63],
    "mask_ratio": ["1", "-0.1", "nan"],
    "status": ["DONE", "completed\x00"],
    "name": ["a\x00b", "esc\x1b[31m"],
    "protocol": ["fine\x00tune", "x\x07"],
    "metric": ["\x00"],
    "selection": ["max", ""],
    "value": ["", "43.97", "-0.1", "nan", "high", "1.0000001"],
    "epoch": ["-1", 10**19, "1.5"],
    "n_epochs": ["0", 10**40],
    "config_json": ["{", "[1]", nested(100), nested(5000)],
    "tags_json": ["{bad", "1"],
    "started_at": ["yesterday", "2025-13-01"],
}
for column, values in BAD_CELLS.items():
    for k, bad in enumerate(values):
        def make_bad_csv(d: Path, column: str = column, bad: Any = bad) -> Path:
            return write_csv(d / "bad.csv", [csv_row(subset_seed=7), csv_row(**{"subset_seed": 8, column: bad})])

        file_case(f"csv-{column}-{k}", make_bad_csv)

CSV_FILES: dict[str, Callable[[Path], Path]] = {
    "empty": lambda d: _text(d / "e.csv", ""),
    "header-only": lambda d: write_csv(d / "h.csv", []),
    "blank-rows-only": lambda d: _text(d / "b.csv", ",".join(CSV_HEADER) + "\n\n,,\n"),
    "unknown-column": lambda d: write_csv(d / "u.csv", [csv_row()], [*CSV_HEADER, "colour"]),
    "duplicate-column": lambda d: write_csv(d / "d.csv", [csv_row()], [*CSV_HEADER, "value"]),
    "missing-value-column": lambda d: write_csv(d / "m.csv", [csv_row()], [c for c in CSV_HEADER if c != "value"]),
    "missing-hours": lambda d: write_csv(d / "n.csv", [csv_row()], [c for c in CSV_HEADER if c != "data_hours"]),
    "nul-in-header": lambda d: write_csv(d / "z.csv", [csv_row()], [*CSV_HEADER[:-1], "started\x00at"]),
    "extra-cell": lambda d: _text(d / "x.csv", ",".join(CSV_HEADER) + "\n" + ",".join(
        str(v) for v in csv_row().values()) + ",extra\n"),
    "binary": lambda d: _bytes(d / "bin.csv", bytes(range(256)) * 4),
    "utf16": lambda d: _bytes(d / "u16.csv", (",".join(CSV_HEADER) + "\n").encode("utf-16")),
    "latin1": lambda d: _bytes(d / "l1.csv", ",".join(CSV_HEADER).encode() + b"\n\xe9\xff\n"),
    "conflicting-rows": lambda d: write_csv(d / "c.csv", [csv_row(), csv_row(value=0.3)]),
    "conflicting-run-columns": lambda d: write_csv(d / "r.csv", [csv_row(status="RUNNING"), csv_row(metric="top5")]),
    "wrong-suffix": lambda d: _text(d / "t.txt", "hello"),
    "folder-without-runs": lambda d: _mkdir(d / "nothing"),
    "missing-path": lambda d: d / "missing.csv",
}


def _text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


for key, maker in CSV_FILES.items():
    file_case(f"csv-{key}", maker)

# ------------------------------------------------------------------------------- run.json and JSON lines
RECORDS: dict[str, Any] = {
    "image_px-huge-int": record(image_px=10**30),
    "image_px-absurd": record(image_px=10**7),
    "data_frames-huge-int": record(data_frames=10**25),
    "data_hours-1e308": record(data_hours=1e308),
    "pretrain_steps-huge": record(pretrain_steps=2**70),
    "samples-overflow": record(pretrain_steps=2**60, global_batch=1024),
    "subset_seed-huge": record(subset_seed=-(10**30)),
    "config-deep-100000": "DEEP",
    "config-deep-100": record(config=json.loads(nested(100))),
    "config-list": record(config=[1, 2]),
    "config-empty": record(config={}),
    "package_versions-deep": record(package_versions=json.loads(nested(80))),
    "tags-list": record(tags=["a"]),
    "unknown-field": record(colour="red"),
    "status": record(status="DONE"),
    "run_id-mismatch": record(run_id="0" * 16),
    "name-nul": record(name="a\x00b"),
    "eval-percent": record(evals=[{**record()["evals"][0], "value": 21.1}]),
    "eval-epoch-huge": record(evals=[{**record()["evals"][0], "epoch": 10**21}]),
    "eval-not-object": record(evals=[1]),
    "evals-not-list": record(evals={"a": 1}),
    "eval-unknown-key": record(evals=[{**record()["evals"][0], "colour": "red"}]),
    "history-step-huge": record(history=[{"phase": "pretrain", "key": "loss", "step": 10**30, "value": 1.0}]),
    "history-bad-phase": record(history=[{"phase": "eval", "key": "loss", "step": 1, "value": 1.0}]),
    "history-value-text": record(history=[{"phase": "pretrain", "key": "loss", "step": 1, "value": "x"}]),
    "started_at": record(started_at="never"),
    "bool-image_px": record(image_px=True),
    "a-list": [record()],
    "a-number": 3,
    "null": None,
}


def _record_text(value: Any) -> str:
    return nested(100_000) if value == "DEEP" else json.dumps(value)


for key, value in RECORDS.items():
    file_case(f"runjson-{key}", lambda d, v=value: _text(_mkdir(d / "r") / "run.json", _record_text(v)))
    file_case(f"jsonl-{key}", lambda d, v=value: _text(d / "r.jsonl", json.dumps(record(2)) + "\n" + _record_text(v)))
for key, text in {"empty": "", "blank-lines": "\n \n", "not-json": "{oops", "nan-literal": '{"a": NaN}',
                  "truncated": json.dumps(record())[:-5], "deep-line": nested(100_000)}.items():
    file_case(f"runjson-{key}", lambda d, t=text: _text(_mkdir(d / "r") / "run.json", t))
    file_case(f"jsonl-{key}", lambda d, t=text: _text(d / "r.jsonl", t))
file_case("jsonl-not-utf8", lambda d: _bytes(d / "r.jsonl", b'{"a": "\xff"}\n'))


# ------------------------------------------------------------------------------------------------ MAE logs
def mae_case(name: str, which: str, edit: Callable[[list[str]], list[str]]) -> None:
    def make(d: Path) -> Path:
        root = mae_copy(d / "logs")
        log = root / f"{which}_logs" / MAE_RUN[0] / MAE_RUN[1]
        log.write_text("\n".join(edit(log.read_text().splitlines())) + "\n")
        return root

    file_case(f"mae-{name}", make)


def set_key(line: int, key: str, value: str) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        obj = json.loads(lines[line])
        text = json.dumps({k: v for k, v in obj.items() if k != key})
        lines[line] = text[:-1] + f', "{key}": {value}}}'
        return lines

    return edit


for key, value in {"it-huge": ("it", str(10**30)), "it-inf": ("it", "1e400"), "it-negative": ("it", "-5"),
                   "it-text": ("it", '"10"'), "loss-text": ("train_loss", '"x"')}.items():
    mae_case(key, "pretraining", set_key(2, *value))
for key, value in {"epoch-huge": ("epoch", str(10**25)), "epoch-inf": ("epoch", "1e999"), "epoch-skip": ("epoch", "7"),
                   "n_parameters-huge": ("n_parameters", str(10**40)), "n_parameters-wrong": ("n_parameters", "5"),
                   "acc1-percent": ("test_acc1", "150"), "acc1-nan": ("test_acc1", "NaN")}.items():
    mae_case(key, "finetuning", set_key(1, *value))
mae_case("pretrain-not-json", "pretraining", lambda lines: [*lines[:3], "{oops", *lines[3:]])
mae_case("pretrain-deep", "pretraining", lambda lines: [*lines[:3], nested(100_000)])
mae_case("pretrain-empty", "pretraining", lambda lines: [])
mae_case("finetune-empty", "finetuning", lambda lines: ["  "])


def mae_renamed(new_name: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        root = mae_copy(d / "logs")
        for kind in ("pretraining", "finetuning"):
            log = root / f"{kind}_logs" / MAE_RUN[0] / MAE_RUN[1]
            log.rename(log.with_name(new_name))
        return root

    return make


for key, name in {"name-seed-huge": "vitb14_0.01_99999999999999999999999_log.txt",
                  "name-px-huge": "vitb14@99999999999_0.01_2_log.txt", "name-fraction-0": "vitb14_0.0_2_log.txt",
                  "name-bad": "vitb14-0.01-2_log.txt", "name-unknown-arch": "vitzz14_0.01_2_log.txt"}.items():
    file_case(f"mae-{key}", mae_renamed(name))
file_case("mae-orphan-finetune", lambda d: _orphan(mae_copy(d / "logs")))
file_case("mae-no-pretraining", lambda d: _mkdir(d / "logs" / "finetuning_logs"))


def _orphan(root: Path) -> Path:
    (root / "pretraining_logs" / MAE_RUN[0] / MAE_RUN[1]).unlink()
    return root


# ------------------------------------------------------------------------------------------ database files
DB_FILES: dict[str, Callable[[Path], Path]] = {
    "garbage": lambda d: _bytes(d / "g.sqlite", b"\x00\xff" * 3000),
    "text": lambda d: _text(d / "t.sqlite", "this is not a database\n" * 50),
    "version-2-no-tables": lambda d: sqlite_file(d / "v2.sqlite", "PRAGMA user_version = 2"),
    "version-1-no-tables": lambda d: sqlite_file(d / "v1.sqlite", "PRAGMA user_version = 1"),
    "version-99": lambda d: sqlite_file(d / "v99.sqlite", "PRAGMA user_version = 99"),
    "foreign-runs-table": lambda d: sqlite_file(d / "f.sqlite", "CREATE TABLE runs (x)"),
    "wrong-columns": lambda d: sqlite_file(d / "w.sqlite",
        *(f"CREATE TABLE {t} (x)" for t in ("runs", "evals", "history", "tags", "meta")), "PRAGMA user_version = 2"),
    "a-folder": lambda d: _mkdir(d / "db-folder"),
}
for key, make_db in DB_FILES.items():
    for cmd in (["runs", "list"], ["fit"], ["runs", "show", "abc"], ["runs", "import", str(LOGS)]):
        def build(d: Path, make_db: Callable[[Path], Path] = make_db, cmd: list[str] = cmd) -> list[str]:
            return ["--db", str(make_db(d)), *cmd]

        case(f"db-{key}-{'-'.join(cmd[:2]) if cmd[0] == 'runs' else cmd[0]}")(build)


# ------------------------------------------------------------------------------------------------- options
USAGE = [["project", "--mode", "nope"], ["project", "--bootstrap", "-5"], ["fit", "--workers", "0"],
         ["fit", "--seed", "abc"], ["runs", "list", "--image-px", "abc"], ["plot", "nope"], ["nope"],
         ["plot", "data", "--out", "x.bmp"], ["runs", "import"], ["fit", "--level", "abc"],
         ["compare", "--workers", "0"], ["fit", "--chance", "abc"], ["fit", "--bootstrap", "1.5"],
         ["runs", "validate"], ["runs", "show"], ["fit", "--nope"], ["project", "--frontier-rows", "-1"]]
for args in USAGE:
    case("usage-" + "-".join(a.strip("-") for a in args), code=2)(lambda d, a=args: list(a))

DOMAIN = [["fit", "--form", "nope"], ["fit", "--chance", "2"], ["fit", "--chance", "0"], ["fit", "--chance", "-1"],
          ["fit", "--chance", "0.01", "--form", "powerlaw_chance"], ["backtest", "--chance", "2"],
          ["compare", "--chance", "1.5", "--bootstrap", "0"], ["backtest", "--rolling", "nope"],
          ["compare", "--rolling", "nope", "--bootstrap", "0"], ["fit", "--metric", "top7"],
          ["fit", "--selection", "nope"], ["fit", "--axes", "nope"], ["fit", "--axes", ","], ["fit", "--level", "1.5"],
          ["fit", "--kind", "nope"], ["project", "--target", "nope"], ["project", "--target", "2"],
          ["project", "--at", "n_params=abc"], ["project", "--at", "x"], ["project", "--exponents", "nope"],
          ["project", "--axis", "nope"], ["project", "--bounds", "nope"], ["project", "--cost", "nope"],
          ["project", "--optimal", "--cost", "__import__('os')"],
          ["project", "--optimal", "--cost", "6*nope"], ["project", "--budget", "-1", "--optimal"],
          ["fit", "--huber-delta", "-1", "--form", "powerlaw"], ["fit", "--alpha-max", "0", "--form", "powerlaw"],
          ["fit", "--group", "nope", "--bootstrap", "2"], ["runs", "show", "zzzz"], ["runs", "export", "out.txt"],
          ["runs", "import", "--format", "nope", str(LOGS)], ["backtest", "--forms", ","],
          ["fit", "--protocol", "nope"], ["project", "--passes", "-1"]]
for args in DOMAIN:
    case("option-" + "-".join(a.strip("-") for a in args)[:60])(lambda d, a=args: list(a))

TABLES: dict[str, str] = {
    "empty": "", "header-only": "a,b,loss\n", "not-numeric": "a,b,loss\nx,2,1\n1,2,3\n",
    "negative-axis": "a,b,loss\n" + "".join(f"{-i},{i},{1 / i}\n" for i in range(1, 9)),
    "huge-y": "a,b,loss\n" + "".join(f"{i},{i * 2},{1e308 if i == 3 else 1 / i}\n" for i in range(1, 9)),
    "huge-axis": "a,b,loss\n" + "".join(f"{1e200 * i},{i * 2},{1 / i}\n" for i in range(1, 9)),
    "nan": "a,b,loss\n" + "".join(f"{i},{i * 2},{'nan' if i == 2 else 1 / i}\n" for i in range(1, 9)),
    "ragged": "a,b,loss\n1,2\n3,4,5,6,7\n", "binary": "\x00\x01\x02\n\x00",
}
for key, text in TABLES.items():
    case(f"data-{key}")(lambda d, t=text: ["fit", "--data", str(_text(d / "t.csv", t)), "--y", "loss", "--axes",
                                          "a,b", "--kind", "loss"])
case("data-folder")(lambda d: ["fit", "--data", str(d), "--y", "loss", "--axes", "a"])
case("data-missing-file")(lambda d: ["fit", "--data", str(d / "none.csv"), "--y", "loss", "--axes", "a"])
case("data-without-y")(lambda d: ["fit", "--data", str(_text(d / "t.csv", "a,loss\n1,2\n")), "--axes", "a"])
case("data-saturated-accuracy")(lambda d: ["fit", "--data", str(_text(d / "t.csv", "a,b,acc\n" + "".join(
    f"{i},{i * 2},1.0\n" for i in range(1, 9)))), "--y", "acc", "--axes", "a,b"])
case("export-under-a-file")(lambda d: ["runs", "export", str(_text(d / "afile", "x") / "x.csv")])
case("plot-out-under-a-file")(lambda d: ["plot", "loss", "--out", str(_text(d / "afile", "x") / "x.png")])


# ------------------------------------------------------------- your own runs: a mapped CSV, Parquet, MLflow
# The bad cells above through `--from-csv` and a mapping (the first bad value of each mappable column that is not
# empty: an empty value is a run without that evaluation), and the ways a mapping, a Parquet file or an MLflow
# store can be wrong.
MAPPED = [c for c in CSV_HEADER if c not in ("config_json", "tags_json")]
IDENTITY = ",".join(f"{c}={c}" for c in MAPPED)


def mapped_import(path: Path, mapping: str = IDENTITY, *extra: str) -> list[str]:
    return ["runs", "import", "--from-csv", str(path), "--map", mapping, *extra]


for column, values in BAD_CELLS.items():
    if column in MAPPED:
        first_bad = next(v for v in values if v != "")
        case(f"own-csv-{column}")(lambda d, column=column, bad=first_bad: mapped_import(write_csv(
            d / "own.csv", [csv_row(subset_seed=7), csv_row(**{"subset_seed": 8, column: bad})], MAPPED)))
OWN: dict[str, Builder] = {
    "map-unknown-target": lambda d: mapped_import(write_csv(d / "o.csv", [csv_row()], MAPPED), "arch=colour"),
    "map-column-absent": lambda d: mapped_import(write_csv(d / "o.csv", [csv_row()], MAPPED), "nope=arch"),
    "map-control-characters": lambda d: mapped_import(write_csv(d / "o.csv", [csv_row()], MAPPED),
                                                      "ar\x1bch=arch\u202e"),
    "map-file-garbage": lambda d: mapped_import(write_csv(d / "o.csv", [csv_row()], MAPPED),
                                                str(_bytes(d / "m.toml", bytes(range(256))))),
    "set-unknown-field": lambda d: mapped_import(write_csv(d / "o.csv", [csv_row()], MAPPED), IDENTITY,
                                                 "--set", "colour=red"),
    "csv-binary": lambda d: mapped_import(_bytes(d / "bin.csv", bytes(range(256)) * 4)),
    "same-run-twice": lambda d: mapped_import(write_csv(d / "o.csv", [csv_row(), csv_row(value=0.3)], MAPPED)),
    "parquet-not-parquet": lambda d: ["runs", "import", str(_text(d / "x.parquet", "not parquet"))],
    "mlflow-no-store": lambda d: ["runs", "import", "--from-mlflow", str(d / "mlruns"), "--experiment", "e"],
    "mlflow-no-sqlite": lambda d: ["runs", "import", "--from-mlflow", f"sqlite:///{d / 'm.db'}", "--experiment", "e"],
}
for key, builder in OWN.items():
    case(f"own-{key}")(builder)


# --------------------------------------------------------------------- issue 23's groups (tests/fuzz_bounded.py)
for key, (builder, expected) in fuzz_bounded.BOUNDED.items():
    case(f"i23-{key}", expected)(builder)
for key, (make_damaged, cmd) in fuzz_bounded.DAMAGED_CASES.items():
    def build_damaged(d: Path, make: Callable[[Path, Path], Path] = make_damaged, cmd: list[str] = cmd) -> list[str]:
        db = make(d, DB_SOURCE[0])
        return ["--db", str(db), *fuzz_bounded.damaged_args(cmd, d, db)]

    case(f"i23-{key}")(build_damaged)
for key, export_args in fuzz_bounded.EXPORTS.items():
    def build_export(d: Path, make: Callable[[Path, Path], list[str]] = export_args) -> list[str]:
        db = d / "own.sqlite"
        db.write_bytes(DB_SOURCE[0].read_bytes())
        return ["--db", str(db), *make(d, db)]

    case(f"i23-export-{key}")(build_export)
DB_SOURCE: list[Path] = []  # the fuzz database, for the cases that damage or export onto a copy of it


# --------------------------------------------------------------------------------------------------- test
def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 650
    assert len(CASES) - 455 >= 200  # issue 23 added at least 200 to the 455 before it


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input(name: str, fuzz_db: Path, tmp_path: Path) -> None:
    DB_SOURCE[:] = [fuzz_db]
    build, expected = CASES[name]
    args = build(tmp_path)
    own_db = args[0] == "--db"
    db = Path(args[1]) if own_db else fuzz_db
    before = dump(db)
    files_before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != db}
    code, out, err, caught = run_cli(args if own_db else ["--db", str(fuzz_db), *args])
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert code == expected, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert not CONTROL.search(err), f"a raw control character on stderr: {err!r}"
    assert not caught, caught
    assert out == "", out
    assert dump(db) == before, "the database changed"
    assert not any(p.name == fuzz_bounded.MARKER for p in tmp_path.rglob("*")), "an input ran code"
    assert {p: p.read_bytes() for p in files_before} == files_before, "a file the case did not create changed"


@pytest.mark.parametrize("name", sorted(fuzz_bounded.SHOWN))
def test_text_from_files_is_shown_escaped(name: str, tmp_path: Path, fuzz_db: Path) -> None:
    """Column names with escape sequences and bidirectional overrides: the command runs, and what it prints
    has them escaped (\\x1b, \\u202e), never raw."""
    code, out, err, _ = run_cli(["--db", str(fuzz_db), *fuzz_bounded.SHOWN[name](tmp_path)])
    assert code == 0, err
    assert not CONTROL.search(out + err), f"raw control characters: {(out + err)!r}"
    assert "\\x1b[31m" in out and "\\u202e" in out
