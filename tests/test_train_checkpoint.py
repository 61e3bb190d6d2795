"""Checkpoints (one format, DCP folders): save and load restore weights and optimizer for the same identity only;
nothing a checkpoint holds can run code, and every damaged folder is a one-line ``TrainError`` naming it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from train import checkpoint, dist  # noqa: E402
from train.errors import TrainError  # noqa: E402

pytestmark = pytest.mark.train
IDENTITY = {"arch": "tiny", "seed": 1}


class RunsCode:
    """Unpickling this would create ``marker``: a checkpoint must never get that far."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _model_and_opt(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2)


def _saved(folder: Path, seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    model, opt = _model_and_opt(seed)
    model(torch.randn(8, 4)).square().mean().backward()
    opt.step()
    checkpoint.save(folder, model, opt, {"identity": IDENTITY, "step": 1}, dist.DistEnv())
    return model, opt


def _one_line(err: pytest.ExceptionInfo[TrainError], folder: Path, fragment: str) -> None:
    text = str(err.value)
    assert "\n" not in text and str(folder) in text and fragment in text, text


def test_save_and_load_restore_the_same_identity_and_refuse_another(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "x.dcp"
    model, opt = _saved(folder)
    assert sorted(p.name for p in folder.parent.iterdir()) == ["x.dcp"]  # no .tmp or .old left behind
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["world"] == 1 and meta["step"] == 1 and ".metadata" in meta["files"]
    assert meta["metadata_sha256"] == hashlib.sha256((folder / ".metadata").read_bytes()).hexdigest()
    assert all((folder / name).stat().st_size == size for name, size in meta["files"].items())

    found = checkpoint.matching(folder, IDENTITY, mismatch="x")
    assert found is not None and found[0] == folder and found[1]["step"] == 1
    fresh, fresh_opt = _model_and_opt(1)
    checkpoint.load(folder, fresh, fresh_opt)
    for a, b in zip(fresh.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(fresh_opt.state.values(), opt.state.values(), strict=True):
        assert torch.equal(a["exp_avg_sq"], b["exp_avg_sq"]) and int(a["step"]) == int(b["step"]) == 1
    assert fresh_opt.param_groups[0]["lr"] == 1e-2 and fresh_opt.param_groups[0]["betas"] == (0.9, 0.999)
    with pytest.raises(TrainError, match="belongs to another configuration"):
        checkpoint.matching(folder, {"arch": "tiny", "seed": 2}, mismatch="another configuration")
    assert checkpoint.matching(tmp_path / "none.dcp", IDENTITY, mismatch="x") is None

    # the model alone (a finished run), exported into one file: the same tensors
    out = tmp_path / "model.pt"
    done = checkpoint.export(folder, out)
    assert (done.tensors, done.parameters, done.step, done.out) == (4, 4 * 3 + 3 + 3 + 3, 1, str(out))
    assert done.bytes == out.stat().st_size and done.to_dict()["tensors"] == 4
    weights, meta = checkpoint.load_weights(out)
    assert meta["identity"] == IDENTITY and all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    with pytest.raises(TrainError, match="give --force"):
        checkpoint.export(folder, out)
    assert checkpoint.export(folder, out, force=True).tensors == 4


def test_a_crafted_metadata_pickle_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    """The issue's attack: ``.metadata`` replaced by a pickle whose loading would create a marker file. With
    the recorded digest it is refused by the digest; with a forged digest, by the restricted unpickler."""
    import pickle

    folder = tmp_path / "x.dcp"
    _saved(folder)
    marker = tmp_path / "EXECUTED"
    (folder / ".metadata").write_bytes(pickle.dumps(RunsCode(marker)))
    for forged in (False, True):
        if forged:  # an attacker who also rewrites meta.json: the unpickler still refuses
            meta = json.loads((folder / "meta.json").read_text())
            meta["files"][".metadata"] = (folder / ".metadata").stat().st_size
            meta["metadata_sha256"] = hashlib.sha256((folder / ".metadata").read_bytes()).hexdigest()
            (folder / "meta.json").write_text(json.dumps(meta))
        for attempt in (lambda: checkpoint.load(folder, *_model_and_opt(1)), lambda: checkpoint.load_weights(folder),
                        lambda: checkpoint.export(folder, tmp_path / "out.pt")):
            with pytest.raises(TrainError) as err:
                attempt()
            _one_line(err, folder, "refused: reading them could run code" if forged else "is damaged")
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


def test_a_crafted_non_tensor_entry_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    """DCP's default planner reads non-tensor entries (optimizer hyperparameters) with weights_only=False: a
    checkpoint whose lr is a code-running object, with consistent digests, must still run nothing."""
    folder = tmp_path / "x.dcp"
    marker = tmp_path / "EXECUTED"
    model, opt = _model_and_opt(0)
    opt.param_groups[0]["lr"] = RunsCode(marker)
    checkpoint.save(folder, model, opt, {"identity": IDENTITY}, dist.DistEnv())
    with pytest.raises(TrainError) as err:
        checkpoint.load(folder, *_model_and_opt(1))
    _one_line(err, folder, "could run code")
    assert not marker.exists()


def test_metadata_pointing_outside_its_recorded_shards_is_refused(tmp_path: Path) -> None:
    """Real DCP metadata (admitted by the unpickler), rewritten to read a tensor from a file outside the folder,
    with a forged digest: refused before torch opens anything."""
    import dataclasses
    import pickle

    from train.checkpoint_safety import read_metadata

    folder = tmp_path / "x.dcp"
    _saved(folder)
    outside = tmp_path / "outside.distcp"
    shard = next(p for p in folder.iterdir() if p.suffix == ".distcp")
    shutil.copy(shard, outside)
    metadata = read_metadata(folder)
    metadata.storage_data = {k: dataclasses.replace(v, relative_path="../outside.distcp")
                             for k, v in metadata.storage_data.items()}
    (folder / ".metadata").write_bytes(pickle.dumps(metadata))
    meta = json.loads((folder / "meta.json").read_text())
    meta["files"][".metadata"] = (folder / ".metadata").stat().st_size
    meta["metadata_sha256"] = hashlib.sha256((folder / ".metadata").read_bytes()).hexdigest()
    (folder / "meta.json").write_text(json.dumps(meta))
    for attempt in (lambda: checkpoint.load(folder, *_model_and_opt(1)), lambda: checkpoint.load_weights(folder)):
        with pytest.raises(TrainError) as err:
            attempt()
        _one_line(err, folder, "not a shard this toolkit wrote")


def _damage(folder: Path, how: str) -> None:
    shard = next(p for p in folder.iterdir() if p.suffix == ".distcp")
    if how == "metadata removed":
        (folder / ".metadata").unlink()
    elif how == "metadata truncated":
        (folder / ".metadata").write_bytes((folder / ".metadata").read_bytes()[:40])
    elif how == "metadata garbage":
        (folder / ".metadata").write_bytes(b"\x80" * (folder / ".metadata").stat().st_size)
    elif how == "shard truncated":
        shard.write_bytes(shard.read_bytes()[:100])
    elif how == "shard removed":
        shard.unlink()
    elif how == "shard garbage":  # same size, so the file record passes: torch's reader fails inside DCP
        shard.write_bytes(b"\0" * shard.stat().st_size)
    elif how == "meta.json garbage":
        (folder / "meta.json").write_text("{not json")
    if how.endswith("digest forged"):  # meta.json rewritten to match: the unpickler itself meets the damage
        _damage(folder, how.removesuffix(", digest forged"))
        meta = json.loads((folder / "meta.json").read_text())
        meta["files"][".metadata"] = (folder / ".metadata").stat().st_size
        meta["metadata_sha256"] = hashlib.sha256((folder / ".metadata").read_bytes()).hexdigest()
        (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("how", ["metadata removed", "metadata truncated", "metadata garbage", "shard truncated",
                                 "shard removed", "shard garbage", "meta.json garbage",
                                 "metadata truncated, digest forged", "metadata garbage, digest forged"])
def test_a_damaged_folder_is_one_line_naming_it(tmp_path: Path, how: str) -> None:
    folder = tmp_path / "x.dcp"
    _saved(folder)
    _damage(folder, how)
    with pytest.raises(TrainError) as err:
        checkpoint.load(folder, *_model_and_opt(1))
    _one_line(err, folder, "checkpoint")


def test_a_folder_not_written_here_is_refused_never_overwritten(tmp_path: Path) -> None:
    folder = tmp_path / "x.dcp"
    _saved(folder)
    (folder / "meta.json").unlink()
    with pytest.raises(TrainError, match="not a checkpoint written by this toolkit"):
        checkpoint.matching(folder, IDENTITY, mismatch="x")
    shutil.rmtree(folder)
    _saved(folder)
    meta = json.loads((folder / "meta.json").read_text())
    del meta["metadata_sha256"]  # as an older version wrote it: no digest to check against
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(TrainError, match="records no digest"):
        checkpoint.load(folder, *_model_and_opt(1))
