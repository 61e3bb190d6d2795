"""What a user sees at 80 columns with output piped: no line wider than 80, no number or word split across
lines, every help text whole (bracketed words included) and every help example on one line, to be pasted.

Each command runs in-process on the shipped grid at COLUMNS=80, and everything it prints on stdout is also
rendered at 1000 columns (the reference, where nothing needs to wrap). A split cell ("6.11e+" / "22",
"COM" / "PLE" / "TED") leaves fragments that the reference never prints, so every token of the narrow
output must occur in the reference (or be a piece of a token too long for any column, cut where no number is).
"""

from __future__ import annotations

import inspect
import io
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from rich.cells import cell_len
from rich.console import Console

from scaling.cli import app
from scaling.cli.render import CONTINUED
from tests.cli_helpers import runner

NARROW, WIDE = 80, 1000

# One line per command: its arguments ("{run}" is a run id of the grid, "{tmp}" a fresh folder, "{csv}" the
# grid exported as CSV). `train flops` imports torch (10-25 s alone): slow.
COMMANDS: list[Any] = [
    "forms",
    "targets",
    "fit",
    "fit --form powerlaw --bootstrap 20 --seed 1",
    "fit --form logit1 --metric top5 --selection last-epoch",
    "project",
    "project --form logit1 --optimal",
    "project --bootstrap 20 --seed 1",
    "project --mode solve --axis n_params --budget 1e22",
    "backtest --forms poly1,logit1",
    "compare --forms poly1,logit1 --bootstrap 10 --target 60%",
    "runs list",
    "runs list --with-metric top5 --arch vit_h14",
    "runs show {run}",
    "runs export {tmp}/grid.csv",
    "runs validate {csv}",
    "plan",
    "plan --gpus 64 --fsdp --act-checkpointing --usd-per-gpu-hour 3.5",
    "project --mode at --plan",
    "suggest --bootstrap 20 --outcomes 1 --candidates arch=vit_h14;image_px=476;data_hours=500,5000",
    "report --forms poly1,logit1 --bootstrap 10 --suggest-bootstrap 20",
    pytest.param("train flops --arch vit_nano8 --image-px 32 --decoder-dim 128 --decoder-depth 2 "
                 "--decoder-heads 4", marks=pytest.mark.slow),
]

BOX = re.compile(r"[\u2500-\u257f]")  # rich's box-drawing characters: table rules, not text
LAYOUT_WORDS = set(CONTINUED.split())  # words the narrow layout itself adds
NUMBER_FRAGMENT = re.compile(r"\d\.\d*[eE][+-]?$|\d[eE][+-]$")  # a cell line ending in an exponent: "6.11e+"
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
LONG = 40  # a token longer than this may not fit beside its key column: cut, but never inside a number


def _tokens(text: str) -> set[str]:
    return {tok for line in text.splitlines() for tok in BOX.sub(" ", line).split()} - LAYOUT_WORDS


def _run(db: Path, args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """stdout at 80 columns, and the same renderables printed at 1000 columns."""
    wide = Console(file=io.StringIO(), width=WIDE, highlight=False)
    original = Console.print

    def print_both(self: Console, *objects: Any, **kwargs: Any) -> None:
        original(self, *objects, **kwargs)
        if not self.stderr and self is not wide:
            original(wide, *objects, **kwargs)

    monkeypatch.setattr(Console, "print", print_both)
    result = runner.invoke(app, ["--db", str(db), *args], env={"COLUMNS": str(NARROW)})
    monkeypatch.undo()
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.stdout, wide.file.getvalue()  # type: ignore[attr-defined]


def _check_narrow(narrow: str, wide: str) -> None:
    lines = narrow.splitlines()
    too_wide = [ln for ln in lines if cell_len(ln) > NARROW]
    assert not too_wide, "lines wider than 80 columns:\n" + "\n".join(too_wide)
    split = [ln for ln in lines if any(NUMBER_FRAGMENT.search(cell.rstrip()) for cell in BOX.split(ln))]
    assert not split, "lines ending inside a number:\n" + "\n".join(split)
    wide_tokens = _tokens(wide)
    fragments = {t for t in _tokens(narrow) - wide_tokens if not _clean_piece(t, wide_tokens)}
    assert not fragments, f"tokens split or cut at 80 columns: {sorted(fragments)[:20]}"


def _clean_piece(piece: str, wide_tokens: set[str]) -> bool:
    """Is ``piece`` a line's share of a long token of the reference, cut where no number is?"""
    for whole in (t for t in wide_tokens if len(t) > LONG and piece in t):
        at = whole.index(piece)
        cuts = {at, at + len(piece)}
        if not any(m.start() < cut < m.end() for m in NUMBER.finditer(whole) for cut in cuts):
            return True
    return False


@pytest.fixture(scope="module")
def run_id(published_db_path: Path) -> str:
    from runs_db import open_db

    return str(open_db(published_db_path).list_runs()["run_id"].iloc[-1])[:10]


@pytest.fixture(scope="module")
def grid_csv(published_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from runs_db import open_db

    path = tmp_path_factory.mktemp("export") / "grid.csv"
    open_db(published_db_path).export(path)
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_command_fits_80_columns(command: str, published_db_path: Path, run_id: str, grid_csv: Path,
                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = command.format(run=run_id, tmp=tmp_path, csv=grid_csv).split()
    narrow, wide = _run(published_db_path, args, monkeypatch)
    assert narrow.strip() and _tokens(narrow) and _tokens(wide)
    _check_narrow(narrow, wide)


def test_a_split_number_is_caught() -> None:
    """The checks above fail on the outputs the issue reported (so they can fail)."""
    wide = "│ solve │ 10,564,550 h │ 6.11e+22 │ COMPLETED │ a/long/path/of/runs/50000,20000,50000,20000 │\n"
    for narrow in ("│ solve │ 10,564 │ 6.11e+ │\n│       │ ,550 h │ 22     │\n",
                   "│ solve │ 10,564,550 h │ 6.11e+22 │ COM │\n│       │              │          │ PLE │\n"):
        with pytest.raises(AssertionError):
            _check_narrow(narrow, wide)
    with pytest.raises(AssertionError):
        _check_narrow("x" * 81 + "\n", "x" * 81 + "\n")
    _check_narrow("│ solve │\n│ 10,564,550 h │\n│ a/long/path/of/runs/50000, │\n│ 20000,50000,20000 │\n", wide)
    with pytest.raises(AssertionError):
        _check_narrow("│ a/long/path/of/runs/500 │\n│ 00,20000,50000,20000 │\n", wide)


def _commands() -> list[tuple[str, Any]]:
    """(path, click command) of every command and group of the app, sub-apps included."""
    out: list[tuple[str, Any]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        out.append((" ".join(path), cmd))
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


def _plain(text: str) -> str:
    """Help source as the terminal shows it: rich markup tags gone, escaped brackets unescaped, one space."""
    text = re.sub(r"(?<!\\)\[/?(bold|dim|italic|b|i)\]", "", text)
    return " ".join(text.replace("\\[", "[").split())


def _examples(help_text: str) -> list[str]:
    """The indented lines of a help text (examples and their continuation lines)."""
    return [ln.strip() for ln in inspect.cleandoc(help_text).splitlines() if ln.startswith(" ") and ln.strip()]


@pytest.mark.parametrize(("path", "command"), _commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_help_fits_80_columns_and_keeps_every_word(path: str, command: Any) -> None:
    result = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": str(NARROW)})
    assert result.exit_code == 0, result.output
    out = result.stdout
    too_wide = [ln for ln in out.splitlines() if cell_len(ln) > NARROW]
    assert not too_wide, "\n".join(too_wide)
    assert "\u2026" not in out, "help text cut with an ellipsis"
    shown = {ln.strip() for ln in out.splitlines()}
    for example in _examples((command.help or "").replace("\\[", "[")):
        assert example in shown, f"example wraps at 80 columns: {example!r}"
    flat = " ".join(BOX.sub(" ", out).split())
    prose = [p for p in inspect.cleandoc(command.help or "").split("\n\n") if not p.startswith(" ")]
    for paragraph in prose:
        assert _plain(paragraph) in flat, f"help paragraph lost words: {paragraph!r}"
    for param in command.params:
        if getattr(param, "help", None):
            assert _plain(param.help) in flat, f"{path} {param.opts}: help lost words: {param.help!r}"
