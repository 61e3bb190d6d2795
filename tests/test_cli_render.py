"""Rendering rules of the CLI: estimates rounded to their standard errors, tables stacked when narrow,
long words cut at separators, help reflowed, plain progress lines with an ETA, and what `fit` tables say."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from scaling.cli.progress import PlainProgress
from scaling.cli.render import (
    CONTINUED,
    break_long_words,
    fmt_estimate,
    fmt_stderr,
    reflow_help,
    stdout_console,
    table,
)
from tests.cli_helpers import invoke


@pytest.mark.parametrize(("value", "se", "shown", "se_shown"), [
    (28.792059256466974, 122.4, "30", "120"),  # the case: no 17 digits beside an SE of 122
    (-0.5853091589556507, 0.03741, "-0.585", "0.037"),
    (0.04233806579922519, 0.004554, "0.0423", "0.0046"),
    (2.3e9, 1.2e7, "2.300e+09", "1.2e+07"),
    (0.3, 12.0, "0", "12"),
    (5.123456789, None, "5.12346", "-"),  # no standard error: six significant digits
    (1.69000000000000017, 5.9e-16, "1.6900000", "5.9e-16"),  # an exact fit: 8 significant digits at most
])
def test_estimates_carry_the_digits_their_standard_error_supports(value: float, se: float | None, shown: str,
                                                                   se_shown: str) -> None:
    assert fmt_estimate(value, se) == shown
    assert fmt_stderr(se) == se_shown


def render(renderable: object, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, highlight=False)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_wide_tables_are_stacked_with_the_key_column_repeated() -> None:
    cols = ["question", *[f"column {i}" for i in range(10)]]
    rows = [["scale every axis", *[f"{1.2345e22 * (i + 1):.3e}" for i in range(10)]],
            ["solve data_hours", *["10,564,550 h"] * 10]]
    t = table("What reaches it?", cols, rows, caption="a caption")
    wide = render(t, 400)
    assert CONTINUED not in wide and wide.count("scale every axis") == 1
    narrow = render(t, 80)
    assert all(len(line) <= 80 for line in narrow.splitlines())
    parts = narrow.count(CONTINUED) + 1
    assert parts >= 2 and narrow.count("scale every axis") == parts  # the key column in every part
    for i in range(10):
        assert f"{1.2345e22 * (i + 1):.3e}" in narrow  # every number whole on one line
    assert narrow.count("10,564,550 h") == 10
    assert narrow.rstrip().endswith("a caption")


def test_bracketed_cells_are_text_not_markup() -> None:
    out = render(table(None, ["section"], [["[pretrain]"], ["[finetune]"]]), 80)
    assert "[pretrain]" in out and "[finetune]" in out


def test_long_words_break_at_separators_never_inside_a_number() -> None:
    text = "50000,20000,50000,20000,50000,20000,20000,1000 logs/pretraining_logs/vits14_1.0_1_log.txt 10,564,550"
    lines = break_long_words(text, 20).split("\n")
    assert all(len(w) <= 20 for line in lines for w in line.split())
    assert "10,564,550" in lines[-1]  # a number that fits is never cut at its thousands separators
    pieces = "".join(w for line in lines for w in line.split(" ") if w)
    assert pieces.replace(" ", "") == text.replace(" ", "")
    assert all(not (a[-1].isdigit() and b[:1].isdigit()) for a, b in itertools.pairwise(lines))


def test_reflow_joins_prose_keeps_examples_and_escapes_brackets() -> None:
    doc = """Summary line.

    Prose that the source
    wraps [one object per run].

    [bold]Examples[/bold]

      scaling fit --form poly1 \\
          --json
    """
    out = reflow_help(doc) or ""
    paragraphs = out.split("\n\n")
    assert paragraphs[1] == "Prose that the source wraps \\[one object per run]."
    assert paragraphs[2] == "[bold]Examples[/bold]"
    assert paragraphs[3] == "  scaling fit --form poly1 \\\n      --json"


def test_columns_env_sets_the_width_of_piped_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert stdout_console().width == 80
    monkeypatch.delenv("COLUMNS")
    assert stdout_console().width == 200  # piped without COLUMNS: wide enough for every table


def test_plain_progress_prints_every_few_seconds_with_an_eta() -> None:
    now = [0.0]
    lines: list[str] = []
    p = PlainProgress(5.0, lines.append, clock=lambda: now[0])
    for done in range(1, 101):  # 100 resamples, 0.5 s each
        now[0] = done * 0.5
        p.update("bootstrap", done, 100)
    # one line per 5 s of the 50 s, then the last line
    assert len(lines) == 10 and lines[-1] == "bootstrap: 100/100 done in 0:00:50"
    first = lines[0]
    assert first.startswith("bootstrap: 10/100 (10%)") and "0:00:05 elapsed" in first
    assert first.endswith("about 0:00:45 left")  # 5 s for 10 of 100: 45 s to go
    quick: list[str] = []
    q = PlainProgress(5.0, quick.append, clock=lambda: 1.0)
    q.update("backtest", 1, 2)
    q.update("backtest", 2, 2)
    assert quick == []  # work quicker than the interval prints nothing


def test_fit_tables_round_and_name_rows_by_kind(tmp_path: Path) -> None:
    # Chinchilla approach-3 parameters (Hoffmann et al. 2022): L = E + A/N^alpha + B/D^beta, E = 1.69
    n, d = np.meshgrid(np.logspace(7.5, 10, 6), np.logspace(9, 11.5, 6))
    loss = 1.69 + 406.4 / n**0.34 + 410.7 / d**0.28
    csv = tmp_path / "chinchilla.csv"
    pd.DataFrame({"n_params": n.ravel(), "tokens": d.ravel(), "loss": loss.ravel()}).to_csv(csv, index=False)
    result = invoke(tmp_path / "unused.sqlite", "fit", "--data", str(csv), "--y", "loss", "--axes",
                    "n_params,tokens", "--kind", "loss", "--form", "powerlaw", "--bootstrap", "20")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "floor as every axis grows" in out and "ceiling" not in out  # a loss falls to a floor
    assert "free parameters" in out  # the statistic, not the axis n_params
    stat_lines = [ln for ln in out.splitlines() if "free parameters" in ln]
    assert stat_lines and "n_params" not in stat_lines[0]
    assert "20 of 20" in out  # the resamples behind each interval
    for line in out.splitlines():  # no estimate printed to 17 digits
        assert not any(len(tok.lstrip("-").replace(".", "")) > 12 for tok in line.split() if tok[:1].isdigit())


def test_progress_lines_reach_a_piped_stderr(published_db_path: Path) -> None:
    from scaling.cli import app
    from tests.cli_helpers import runner

    result = runner.invoke(app, ["--db", str(published_db_path), "fit", "--bootstrap", "8", "--json"],
                           env={"SCALING_PROGRESS_EVERY": "0"})
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stderr.splitlines() if "elapsed" in ln or "done in" in ln]
    assert lines and lines[-1].endswith(tuple(f"8/8 done in 0:00:{s:02d}" for s in range(60)))
    assert result.stdout.lstrip().startswith("{")  # stdout still carries one JSON document


def test_training_progress_off_a_terminal_is_plain_lines_with_the_loss(capsys: pytest.CaptureFixture[str],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Under pytest stderr is not a terminal, as in a SLURM log: a rich bar would show nothing there."""
    from scaling.cli.progress import TrainReporter

    monkeypatch.setenv("SCALING_PROGRESS_EVERY", "0")
    rep = TrainReporter(enabled=True)
    rep.start("pretrain", 100, "step")
    rep.update(40, "loss 0.812")
    rep.update(100, "loss 0.700")
    rep.stop()
    TrainReporter(enabled=False).update(5, "loss 9")  # ranks other than 0 stay silent
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("pretrain: 40/100 (40%)") and lines[0].endswith("loss 0.812")
    assert lines[1].startswith("pretrain: 100/100 done in") and len(lines) == 2
