"""Bad checkpoints and folder names in `scaling train`: one line on stderr, exit 1, nothing run or written.

A checkpoint that asks to run code is refused (``weights_only``) and must not become a traceback; a run
name or protocol name must not lead out of its folder (``--name ../../x``, ``--protocol ..``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from scaling.cli import app  # noqa: E402
from tests.test_train_run import tiny_args  # noqa: E402
from tests.train_fixtures import clip, digits_folder  # noqa: E402

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The labelled digits, exported once for the module (read only)."""
    return digits_folder(tmp_path_factory.mktemp("digits"))[0]


class _RunsCode:
    """Unpickling this would create ``marker`` (weights_only loading must refuse it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _one_line_error(result: object, expect: str) -> None:
    r = result
    assert r.exit_code == 1, r.output  # type: ignore[attr-defined]
    lines = r.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert lines and lines[-1].startswith("error: ") and expect in lines[-1], r.stderr  # type: ignore[attr-defined]
    assert [x for x in lines if x.startswith("error: ")] == [lines[-1]]
    assert "Traceback" not in r.output  # type: ignore[attr-defined]
    assert len(lines) <= 2  # at most a progress note ("decoding ...") before it


def _bad_files(tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    marker = tmp_path / "EXECUTED"
    torch.save({"identity": None, "model": _RunsCode(marker)}, tmp_path / "evil.pt")
    return {
        "code": ((tmp_path / "evil.pt").read_bytes(), "refused: loading them could run code"),
        "garbage": (b"not a checkpoint at all", "cannot load checkpoint"),
        "truncated": ((tmp_path / "evil.pt").read_bytes()[:60], "cannot load checkpoint"),
    }


@pytest.mark.parametrize("kind", ["code"])
def test_bad_pretrain_checkpoint_is_one_line(tmp_path: Path, kind: str) -> None:
    data, expect = _bad_files(tmp_path)[kind]
    out = tmp_path / "run"
    out.mkdir()
    (out / "pretrain.ckpt").write_bytes(data)
    r = CliRunner().invoke(app, ["train", "pretrain", *tiny_args(clip()), "--out", str(out), "--no-db"])
    _one_line_error(r, expect)
    assert not (tmp_path / "EXECUTED").exists()


def _completed_run(root: Path, ckpt: bytes) -> Path:
    run = root / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"run_id": "x" * 16, "status": "COMPLETED", "arch": "vit_pico8",
                                              "image_px": 32}))
    (run / "pretrain.ckpt").write_bytes(ckpt)
    return run


@pytest.mark.parametrize("kind", ["code", "garbage", "truncated", "foreign"])
def test_bad_checkpoints_in_finetune_are_one_line(tmp_path: Path, digits: Path, kind: str) -> None:
    files = _bad_files(tmp_path)
    if kind == "foreign":  # a real checkpoint of another model: its weights do not fit
        torch.save({"model": {"encoder.cls_token": torch.zeros(1, 1, 7)}}, tmp_path / "other.pt")
        files["foreign"] = ((tmp_path / "other.pt").read_bytes(), "does not fit vit_pico8")
    data, expect = files[kind]
    run = _completed_run(tmp_path, data)
    r = CliRunner().invoke(app, ["train", "finetune", str(run), "--finetune-data", str(digits), "--epochs", "1",
                                 "--label-fraction", "0.1", "--ft-batch-size", "16", "--no-db"])
    _one_line_error(r, expect)
    assert not (tmp_path / "EXECUTED").exists()


def test_bad_finetune_checkpoint_is_one_line(tmp_path: Path, digits: Path) -> None:
    from runs_db.archs import get_arch
    from train.model import build_vit

    encoder = build_vit(get_arch("vit_pico8"), 32).state_dict()
    run = _completed_run(tmp_path, b"")
    torch.save({"model": {f"encoder.{k}": v for k, v in encoder.items()}}, run / "pretrain.ckpt")
    ft = run / "finetune-digits-10pct"
    ft.mkdir()
    (ft / "finetune.ckpt").write_bytes(_bad_files(tmp_path)["code"][0])
    r = CliRunner().invoke(app, ["train", "finetune", str(run), "--finetune-data", str(digits), "--epochs", "1",
                                 "--finetune-name", "digits", "--label-fraction", "0.1", "--no-db"])
    _one_line_error(r, "refused: loading them could run code")
    assert not (tmp_path / "EXECUTED").exists()


def test_bad_sharded_checkpoint_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "pretrain.dcp").mkdir(parents=True)
    (out / "pretrain.dcp" / "meta.json").write_text("{not json")
    r = CliRunner().invoke(app, ["train", "pretrain", *tiny_args(clip()), "--out", str(out), "--no-db"])
    _one_line_error(r, "cannot read sharded checkpoint")


@pytest.mark.parametrize("name", ["../../x", "a/b"])
def test_run_name_stays_inside_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    r = CliRunner().invoke(app, ["train", "pretrain", *tiny_args(clip()), "--name", name, "--no-db"])
    _one_line_error(r, "must be a plain folder name")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b"]  # nothing written anywhere


@pytest.mark.parametrize("protocol", ["..", "../x"])
def test_protocol_stays_inside_the_run_folder(tmp_path: Path, digits: Path, protocol: str) -> None:
    run = _completed_run(tmp_path, b"unused")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    r = CliRunner().invoke(app, ["train", "finetune", str(run), "--finetune-data", str(digits), "--protocol",
                                 protocol, "--label-fraction", "0.1", "--no-db"])
    if protocol == "../x":  # '/' becomes '_': a folder '.._x' inside the run; here the checkpoint stops it
        _one_line_error(r, "cannot load checkpoint")
    else:
        _one_line_error(r, "must be a plain folder name")
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
