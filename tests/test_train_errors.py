"""Bad checkpoints and folder names in `scaling train`: one line on stderr, exit 1, nothing run or written.

A checkpoint that asks to run code is refused before anything is unpickled, whichever file carries it: a
sharded checkpoint's ``.metadata`` (issue 23: resuming `scaling train pretrain`, with or without --fsdp, from
a ``pretrain.dcp/`` whose ``.metadata`` was replaced by a crafted pickle ran its code), an exported single
file, or a fine-tuning checkpoint. Every damaged folder (truncated, removed or garbage ``.metadata``, a
truncated or missing shard) is one line. A run name or protocol name must not lead out of its folder
(``--name ../../x``, ``--protocol ..``).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from scaling.cli import app  # noqa: E402
from tests.test_train_checkpoint import RunsCode, _damage  # noqa: E402
from tests.test_train_run import tiny_args  # noqa: E402
from tests.train_fixtures import clip, digits_folder, tiny_pretrain  # noqa: E402

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The labelled digits, exported once for the module (read only)."""
    return digits_folder(tmp_path_factory.mktemp("digits"))[0]


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder of `tiny_args` stopped after 2 of 6 steps: its pretrain.dcp/ is what a rerun resumes."""
    from train import dist
    from train.runner import prepare_pretrain, pretrain_point

    run = tmp_path_factory.mktemp("interrupted") / "run"
    cfg = tiny_pretrain(fps=None)
    pretrain_point(prepare_pretrain(cfg), run, dist.DistEnv(), db=None, use_db=False, stop_after=2)
    assert json.loads((run / "pretrain.dcp" / "meta.json").read_text())["step"] == 2
    return run


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
    torch.save({"identity": None, "model": RunsCode(marker)}, tmp_path / "evil.pt")
    return {
        "code": ((tmp_path / "evil.pt").read_bytes(), "refused: loading them could run code"),
        "garbage": (b"not a checkpoint at all", "cannot load checkpoint"),
        "truncated": ((tmp_path / "evil.pt").read_bytes()[:60], "cannot load checkpoint"),
    }


def _crafted_metadata(folder: Path, marker: Path, *, forge_digest: bool) -> None:
    (folder / ".metadata").write_bytes(pickle.dumps(RunsCode(marker)))
    if forge_digest:  # meta.json rewritten to match: the restricted unpickler must still refuse
        meta = json.loads((folder / "meta.json").read_text())
        meta["files"][".metadata"] = (folder / ".metadata").stat().st_size
        meta["metadata_sha256"] = hashlib.sha256((folder / ".metadata").read_bytes()).hexdigest()
        (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(("fsdp", "forge"), [(False, False), (False, True), (True, True)])
def test_a_crafted_metadata_pickle_is_refused_on_resume_and_runs_nothing(
        tmp_path: Path, interrupted: Path, fsdp: bool, forge: bool) -> None:
    out = tmp_path / "run"
    shutil.copytree(interrupted, out)
    marker = tmp_path / "EXECUTED"
    _crafted_metadata(out / "pretrain.dcp", marker, forge_digest=forge)
    args = ["train", "pretrain", *tiny_args(clip()), "--out", str(out), "--no-db", *(["--fsdp"] if fsdp else [])]
    r = CliRunner().invoke(app, args)
    _one_line_error(r, f"checkpoint {out / 'pretrain.dcp'}")
    assert ("could run code" if forge else "is damaged") in r.stderr
    assert not marker.exists()
    r = CliRunner().invoke(app, ["train", "export", str(out), str(tmp_path / "x.pt")])
    _one_line_error(r, f"checkpoint {out / 'pretrain.dcp'}")
    assert not marker.exists() and not (tmp_path / "x.pt").exists()


# every kind of damage is checked on the library (tests/test_train_checkpoint.py); here, through the command
@pytest.mark.parametrize("how", ["metadata removed", "metadata truncated", "metadata garbage", "shard truncated",
                                 "shard removed", "shard garbage"])
def test_a_damaged_checkpoint_is_one_line_on_resume(tmp_path: Path, interrupted: Path, how: str) -> None:
    out = tmp_path / "run"
    shutil.copytree(interrupted, out)
    _damage(out / "pretrain.dcp", how)
    r = CliRunner().invoke(app, ["train", "pretrain", *tiny_args(clip()), "--out", str(out), "--no-db"])
    _one_line_error(r, f"checkpoint {out / 'pretrain.dcp'}")


def test_an_earlier_single_file_checkpoint_is_not_read(tmp_path: Path) -> None:
    data, _ = _bad_files(tmp_path)["code"]
    out = tmp_path / "run"
    out.mkdir()
    (out / "pretrain.ckpt").write_bytes(data)
    r = CliRunner().invoke(app, ["train", "pretrain", *tiny_args(clip()), "--out", str(out), "--no-db"])
    _one_line_error(r, "is a checkpoint of an earlier version")
    assert not (tmp_path / "EXECUTED").exists()


def _completed_run(root: Path, interrupted: Path) -> Path:
    run = root / "run"
    shutil.copytree(interrupted, run)
    rec = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**rec, "status": "COMPLETED"}))
    return run


@pytest.mark.parametrize("kind", ["code", "garbage", "truncated", "foreign", "other run"])
def test_bad_weights_in_finetune_are_one_line(tmp_path: Path, digits: Path, interrupted: Path, kind: str) -> None:
    files = _bad_files(tmp_path)
    if kind == "foreign":  # a real file of another model: its weights do not fit
        torch.save({"model": {"encoder.cls_token": torch.zeros(1, 1, 7)}, "identity": None}, tmp_path / "o.pt")
        files[kind] = ((tmp_path / "o.pt").read_bytes(), "holds the weights of run unknown")
    if kind == "other run":
        from runs_db.archs import get_arch
        from train.model import build_vit

        encoder = {f"encoder.{k}": v for k, v in build_vit(get_arch("vit_pico8"), 32).state_dict().items()}
        torch.save({"format": "humanlike-scaling/model@1", "model": encoder, "meta": {"identity": {"a": 1}}},
                   tmp_path / "o.pt")
        files[kind] = ((tmp_path / "o.pt").read_bytes(), "not of")
    data, expect = files[kind]
    run = _completed_run(tmp_path, interrupted)
    (tmp_path / "weights.pt").write_bytes(data)
    r = CliRunner().invoke(app, ["train", "finetune", str(run), "--finetune-data", str(digits), "--epochs", "1",
                                 "--label-fraction", "0.1", "--ft-batch-size", "16", "--no-db",
                                 "--weights", str(tmp_path / "weights.pt")])
    _one_line_error(r, expect)
    assert not (tmp_path / "EXECUTED").exists()


def test_a_crafted_finetune_checkpoint_is_refused(tmp_path: Path, digits: Path, interrupted: Path) -> None:
    run = _completed_run(tmp_path, interrupted)
    args = ["train", "finetune", str(run), "--finetune-data", str(digits), "--epochs", "1", "--finetune-name",
            "digits", "--label-fraction", "0.1", "--ft-batch-size", "16", "--no-db"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    marker = tmp_path / "EXECUTED"
    _crafted_metadata(run / "finetune-digits-10pct" / "finetune.dcp", marker, forge_digest=True)
    _one_line_error(CliRunner().invoke(app, args), "refused: reading them could run code")  # the same command resumes
    assert not marker.exists()


def test_export_of_no_checkpoint_or_onto_a_file_is_one_line(tmp_path: Path, interrupted: Path) -> None:
    r = CliRunner().invoke(app, ["train", "export", str(tmp_path), str(tmp_path / "x.pt")])
    _one_line_error(r, "no checkpoint in")
    (tmp_path / "taken.pt").write_text("mine")
    r = CliRunner().invoke(app, ["train", "export", str(interrupted), str(tmp_path / "taken.pt")])
    _one_line_error(r, "give --force")
    assert (tmp_path / "taken.pt").read_text() == "mine"
    r = CliRunner().invoke(app, ["train", "export", str(interrupted), str(tmp_path / "taken.pt"), "--force", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["step"] == 2 and (tmp_path / "taken.pt").stat().st_size > 10_000


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
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"run_id": "x" * 16, "status": "COMPLETED", "arch": "vit_pico8",
                                              "image_px": 32}))
    (run / "weights.pt").write_bytes(b"unused")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    r = CliRunner().invoke(app, ["train", "finetune", str(run), "--finetune-data", str(digits), "--protocol",
                                 protocol, "--label-fraction", "0.1", "--no-db", "--weights", str(run / "weights.pt")])
    if protocol == "../x":  # '/' becomes '_': a folder '.._x' inside the run; here the weights stop it
        _one_line_error(r, "cannot load checkpoint")
    else:
        _one_line_error(r, "must be a plain folder name")
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
