"""Checkpoints: atomic save, and resume restores weights, optimizer and RNG only for the same identity."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from train.checkpoint import resume, rng_state, save_checkpoint  # noqa: E402
from train.errors import TrainError  # noqa: E402

pytestmark = pytest.mark.train


def _model_and_opt(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 3)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2)


def test_resume_restores_the_same_identity_and_refuses_another(tmp_path: Path) -> None:
    model, opt = _model_and_opt(0)
    model(torch.randn(8, 4)).square().mean().backward()
    opt.step()
    path = tmp_path / "run" / "x.ckpt"
    identity = {"arch": "tiny", "seed": 1}
    save_checkpoint(path, {"identity": identity, "model": model.state_dict(), "optimizer": opt.state_dict(),
                           "rng": rng_state()})
    after_save = torch.rand(3)  # what the RNG gives right after the checkpoint
    assert [p.name for p in path.parent.iterdir()] == ["x.ckpt"]  # no temporary file left behind

    fresh, fresh_opt = _model_and_opt(1)
    assert resume(tmp_path / "none.ckpt", identity, fresh, fresh_opt, mismatch="x") is None
    state = resume(path, identity, fresh, fresh_opt, mismatch="another configuration")
    assert state is not None
    for a, b in zip(fresh.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert fresh_opt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"] == 1
    assert torch.equal(torch.rand(3), after_save)

    with pytest.raises(TrainError, match="belongs to another configuration"):
        resume(path, {"arch": "tiny", "seed": 2}, *_model_and_opt(2), mismatch="another configuration")
