"""The one-page study report (issue 21): ``scaling.report`` on the shipped grid and on a loss table, its page
self-contained (figures embedded as data URIs, nothing fetched, no script), its text escaped, and the page
rendered by a real headless Chromium: a screenshot that is not blank, and every figure decoded by the browser
(``img.naturalWidth`` read back through ``--dump-dom``)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import scaling
from tests.cli_helpers import invoke, one_line_error
from tests.golden_cases import LM_CSV

SMALL = {"n_boot": 20, "suggest_n_boot": 20}  # quick settings for the tests (the defaults are REPORT_*)
LOSS = {"y": "loss", "axes": ["params", "tokens"], "kind": "loss"}
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "headless_shell")


class Page(HTMLParser):
    """Every tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    return int(w), int(h)


@pytest.fixture(scope="module")
def lm_report() -> Any:
    return scaling.report(pd.read_csv(LM_CSV), 2.2, form="poly1", cost="6nd", **LOSS, **SMALL)


@pytest.fixture(scope="module")
def lm_page(lm_report: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lm_report.save_html(tmp_path_factory.mktemp("report") / "study.html")


def test_report_of_a_loss_table(lm_report: Any) -> None:
    assert [s.key for s in lm_report.sections] == ["projection", "forms", "backtest", "iso", "suggestions"]
    assert all(s.ok for s in lm_report.sections), [s.reason for s in lm_report.sections]
    # each section is the library's own answer: the same numbers as the calls made alone
    alone = scaling.project(scaling.fit(pd.read_csv(LM_CSV), form="poly1", **LOSS), 2.2)
    mine = lm_report.section("projection").result
    for (q, p), (q2, p2) in zip(mine.projections, alone.projections, strict=True):
        assert q == q2 and p.point == pytest.approx(p2.point, rel=1e-6)
    bt = lm_report.section("backtest").result
    assert bt.recommended == "powerlaw" and "logit1" not in bt.ranking  # Chinchilla's law; no logit of a loss > 1
    assert set(lm_report.section("forms").result.combined.weights) <= {"poly1", "powerlaw"}
    assert lm_report.section("suggestions").result.unit == "decades of FLOPs"
    assert lm_report.settings["n_boot"] == 20 and lm_report.settings["cost"] == "6nd"
    doc = lm_report.to_dict()
    assert doc["schema"] == "scaling.report/v1" and len(doc["sections"]) == 5
    assert json.loads(json.dumps(doc)) == doc


def test_a_section_the_data_cannot_give_is_left_out_with_its_reason() -> None:
    quick = {"form": "poly1", "forms": ["poly1", "poly2"], **LOSS, **SMALL}
    rep = scaling.report(pd.read_csv(LM_CSV), **quick)  # no target, no cost
    left = {s.key: s.reason for s in rep.sections if not s.ok}
    assert list(left) == ["suggestions"] and "give a target" in left["suggestions"]
    assert rep.section("iso").ok and rep.section("iso").result.target is None
    with_target = scaling.report(pd.read_csv(LM_CSV), 2.2, **quick)
    assert "cost model" in with_target.section("suggestions").reason


def test_the_page_is_self_contained(lm_report: Any, lm_page: Path) -> None:
    html = lm_page.read_text(encoding="utf-8")
    page = parse(html)
    tags = [t for t, _ in page.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    images = [a for t, a in page.tags if t == "img"]
    shown = [s for s in lm_report.sections if s.ok]
    assert len(images) == len(shown) - 1  # every section a figure, but the projection of a table (no FLOPs)
    for a in images:
        prefix = "data:image/png;base64,"
        assert a["src"].startswith(prefix)
        w, h = png_size(base64.b64decode(a["src"][len(prefix):]))
        assert w > 300 and h > 200
    links = [a.get("href", "") for _, a in page.tags if "href" in a]
    assert links and all(h.startswith("#") for h in links)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", html)
    assert "url(" not in html and "@import" not in html
    for s in lm_report.sections:
        assert f'id="{s.key}"' in html and s.title in html


def test_text_is_escaped(tmp_path: Path) -> None:
    lm = pd.read_csv(LM_CSV).rename(columns={"loss": "loss<script>alert(1)</script>"})
    rep = scaling.report(lm, 2.2, form="poly1", forms=["poly1", "poly2"], y="loss<script>alert(1)</script>",
                         axes=["params", "tokens"], kind="loss", title="<b>study</b> & co", n_boot=10,
                         suggest_n_boot=20)
    html = rep.to_html()
    assert "<script" not in html and "<b>study" not in html
    assert "&lt;b&gt;study&lt;/b&gt; &amp; co" in html and "loss&lt;script&gt;" in html


def test_report_of_the_shipped_grid(published_db_path: Path, tmp_path: Path) -> None:
    runs = scaling.load_runs(published_db_path)
    rep = scaling.report(runs, forms=["poly1", "logit1"], **SMALL)  # the power law's bootstraps take longer
    assert all(s.ok for s in rep.sections), [s.reason for s in rep.sections]
    assert rep.settings["target"] == "human-top5" and rep.settings["form"] == "poly1"
    scale = rep.section("projection").result.answer("scale every axis")
    # poly1 on the shipped grid: every axis x4.62 reaches human-top5 (README, `scaling project`)
    assert scale.scale_factor == pytest.approx(4.62, abs=0.01)
    iso = rep.section("iso").result.iso_data(n=20)
    assert iso.point == scale.point and (iso.x_axis, iso.y_axis) == ("data_hours", "n_params")
    assert rep.section("backtest").result.recommended == "logit1"  # README: `scaling.backtest(runs, [poly1, logit1])`
    page = parse(rep.save_html(tmp_path / "grid.html").read_text(encoding="utf-8"))
    assert len([a for t, a in page.tags if t == "img"]) == 5  # the grid's projection has its FLOPs figure


def test_the_report_shows_itself_in_jupyter(lm_report: Any) -> None:
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(lm_report)
    assert "<table" in data["text/html"] and "What to train next" in data["text/html"]
    assert data["image/png"].startswith(b"\x89PNG")  # the iso map


def test_save_and_load_round_trip(lm_report: Any, tmp_path: Path) -> None:
    back = scaling.load(lm_report.save(tmp_path / "report.json"))
    assert type(back).__name__ == "StudyReport" and back.to_dict() == lm_report.to_dict()


def test_scaling_report_command(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    args = ["report", "--data", str(LM_CSV), "--y", "loss", "--axes", "params,tokens", "--kind", "loss", "--form",
            "poly1", "--forms", "poly1,poly2", "--target", "2.2", "--cost", "6nd", "--bootstrap", "10",
            "--suggest-bootstrap", "20"]
    out = tmp_path / "study.html"
    result = invoke(db, *args, "--html", str(out), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["html"] == str(out) and [s["key"] for s in doc["sections"] if s["result"]] == \
        ["projection", "forms", "backtest", "iso", "suggestions"]
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not list(tmp_path.glob(".study.html.*"))  # written whole: no temporary left
    bad = invoke(db, *args, "--html", str(tmp_path / "study.txt"))
    assert bad.exit_code == 2 and ".html" in bad.stderr
    assert "does not exist" in one_line_error(invoke(db, *args, "--html", str(tmp_path / "no" / "s.html")))
    assert "--y, --axes and --kind describe a table" in one_line_error(invoke(db, "report", "--y", "loss"))
    assert not (tmp_path / "no").exists() and not (tmp_path / "study.txt").exists()


# -- a real browser ---------------------------------------------------------------------------------------------

def browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def run_browser(exe: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with a private profile (no sandbox: CI runs as root), never reaching a network."""
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp / 'profile'}", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


CHECK = """<script>window.addEventListener("load", () => { document.body.setAttribute("data-images",
  JSON.stringify(Array.from(document.images, i => [i.complete, i.naturalWidth, i.naturalHeight]))); });</script>"""


def test_the_page_renders_in_a_headless_chromium(lm_report: Any, lm_page: Path, tmp_path: Path) -> None:
    exe = browser()
    if exe is None:
        pytest.skip(f"no headless browser on this machine (looked for {', '.join(BROWSERS)}; `.ci/run` installs "
                    "Debian's chromium where apt can)")
    # A control page first: a browser that is installed but cannot render here at all (no shared memory, a
    # missing library of a machine's image) says so by a skip, not by failing the report's test.
    control, control_shot = tmp_path / "control.html", tmp_path / "control.png"
    control.write_text('<html><body style="background:#c00"><p>control</p></body></html>', encoding="utf-8")
    try:
        ran = run_browser(exe, tmp_path, "--window-size=200,200", f"--screenshot={control_shot}", control.as_uri())
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"{exe} is installed but cannot run here: {exc}")
    if not control_shot.exists():
        pytest.skip(f"{exe} is installed but renders no control page here: {ran.stderr.strip()[-300:]}")
    # The screenshot: something drawn over most of the page, in more than one colour.
    shot = tmp_path / "page.png"
    done = run_browser(exe, tmp_path, "--window-size=1200,2400", f"--screenshot={shot}", lm_page.as_uri())
    assert shot.exists(), done.stderr[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1200)
    assert float(pixels.std()) > 0.05, "blank screenshot"
    inked = (pixels.min(axis=2) < 0.9).mean()
    assert inked > 0.05, f"only {inked:.1%} of the screenshot is drawn"
    rgb = (pixels.reshape(-1, 3) * 255).round().astype(np.int64)
    assert len(np.unique(rgb @ np.array([65536, 256, 1]))) > 50  # figures' colours, not just text
    # The figures: the browser decoded every one (a copy of the page with a check appended, run to load).
    probe = tmp_path / "probe.html"
    probe.write_text(lm_page.read_text(encoding="utf-8").replace("</body>", CHECK + "\n</body>"), encoding="utf-8")
    dom = run_browser(exe, tmp_path, "--virtual-time-budget=3000", "--dump-dom", probe.as_uri()).stdout
    found = re.search(r'data-images="([^"]*)"', dom)
    assert found, dom[-2000:]
    images = json.loads(found.group(1).replace("&quot;", '"'))
    expected = len([s for s in lm_report.sections if s.ok]) - 1
    assert len(images) == expected and all(ok and w > 300 and h > 200 for ok, w, h in images), images
