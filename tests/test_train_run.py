"""`scaling train`: a tiny real-data grid point end to end, bad input, divergence, SIGKILL + resume, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from scaling.cli import app  # noqa: E402
from tests.train_fixtures import clip, digits_folder  # noqa: E402

pytestmark = pytest.mark.train
ROOT = Path(__file__).resolve().parents[1]


def tiny_args(data: Path, steps: int = 6, **extra: str) -> list[str]:
    args = ["--arch", "vit_pico8", "--image-px", "32", "--data", str(data), "--fps", "native",
            "--decoder-dim", "32", "--decoder-depth", "1", "--decoder-heads", "2", "--batch-size", "8",
            "--lr", "1e-3", "--steps", str(steps), "--log-every", "1", "--ckpt-every", "2", "--precision", "fp32"]
    for k, v in extra.items():
        args += [f"--{k.replace('_', '-')}", v]
    return args


def invoke(db: Path, *args: str) -> object:
    return CliRunner().invoke(app, ["--db", str(db), *args])


def run_count(db: Path) -> int:
    import runs_db

    if not db.exists():
        return 0
    with runs_db.open_db(db) as handle:
        return handle.count_runs()


def test_tiny_point_lands_in_the_database(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    digits, inverted = digits_folder(tmp_path)
    out = tmp_path / "point"
    r = invoke(db, "train", "point", *tiny_args(clip()), "--finetune-data", str(digits), "--ood", str(inverted),
               "--label-fraction", "0.1", "--epochs", "2", "--ft-batch-size", "32", "--ft-lr", "1e-3",
               "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    run = doc["run"]
    assert run["status"] == "COMPLETED" and run["pretrain_steps"] == 6 and run["samples_seen"] == 48
    assert run["data_frames"] == 120 and run["n_params"] == 32_224
    assert run["pretrain_flops"] == pytest.approx(48 * 3_171_456.0)  # counted per image x images seen
    assert float(run["tags"]["flops_counted_over_analytic"]) == pytest.approx(1.0, abs=0.02)
    evals = {(e["eval_set"], e["metric"], e["selection"]): e for e in run["evals"]}
    assert set(evals) == {(s, m, sel) for s in ("digits-val", "digits-inverted") for m in ("top1", "top5")
                          for sel in ("best-epoch", "last-epoch")}
    assert all(0 <= e["value"] <= 1 and e["n_epochs"] == 2 for e in run["evals"])
    assert evals[("digits-val", "top1", "last-epoch")]["epoch"] == 1
    assert run["evals"][0]["protocol"] == "finetune-digits-10pct"

    r = invoke(db, "runs", "list", "--arch", "vit_pico8", "--json")
    assert r.exit_code == 0, r.output
    listed = json.loads(r.stdout)["runs"]
    assert [x["run_id"] for x in listed] == [run["run_id"]] and listed[0]["status"] == "COMPLETED"
    # the run.json of a run done elsewhere imports into another database with the same content
    other = tmp_path / "other.sqlite"
    r = invoke(other, "runs", "import", str(out / "run.json"), "--json")
    assert r.exit_code == 0, r.output
    r = invoke(other, "runs", "show", run["run_id"], "--json")
    shown = json.loads(r.stdout)["run"]
    assert shown["status"] == "COMPLETED" and len(shown["evals"]) == 8
    # the MAE-format JSON-lines logs
    lines = [json.loads(x) for x in (out / "pretrain_log.txt").read_text().splitlines()]
    assert [x["it"] for x in lines] == list(range(6)) and {"train_loss", "train_lr"} <= set(lines[0])
    ft_log = (out / "finetune-digits-10pct" / "finetune_log.txt").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in ft_log] == [0, 1]
    # rerunning the finished point changes nothing
    r = invoke(db, "train", "point", *tiny_args(clip()), "--finetune-data", str(digits), "--ood", str(inverted),
               "--label-fraction", "0.1", "--epochs", "2", "--ft-batch-size", "32", "--ft-lr", "1e-3",
               "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["run"]["evals"] == run["evals"]
    # the model exported into one file evaluates to the same accuracy as the checkpoint (pretrain.dcp/)
    r = invoke(db, "train", "export", str(out), str(tmp_path / "point.pt"), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["step"] == 6 and json.loads(r.stdout)["tensors"] > 20
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "run.json").write_text(json.dumps({**json.loads((out / "run.json").read_text()), "evals": [],
                                               "history": []}))
    r = invoke(db, "train", "finetune", str(copy), "--weights", str(tmp_path / "point.pt"), "--finetune-data",
               str(digits), "--ood", str(inverted), "--label-fraction", "0.1", "--epochs", "2", "--ft-batch-size",
               "32", "--ft-lr", "1e-3", "--precision", "fp32", "--no-db", "--json")  # as `point` fine-tuned
    assert r.exit_code == 0, r.output
    exported = json.loads(r.stdout)["run"]["evals"]
    assert len(exported) == len(run["evals"]) == 8
    assert [(e["eval_set"], e["metric"], e["selection"], e["value"]) for e in exported] == [
        (e["eval_set"], e["metric"], e["selection"], e["value"]) for e in run["evals"]]


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt", "px", "labels", "mask"])
def test_bad_input_is_one_line_and_leaves_the_database_alone(tmp_path: Path, case: str) -> None:
    db = tmp_path / "runs.sqlite"
    digits, _ = digits_folder(tmp_path)
    data, extra, expect = clip(), {}, ""
    if case == "missing":
        data, expect = tmp_path / "nope", "data path not found"
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        data, expect = tmp_path / "empty", "no video, image or .tar files"
    elif case == "corrupt":
        data = tmp_path / "clip.mp4"
        data.write_bytes(clip().read_bytes()[:500])
        expect = "cannot decode video"
    elif case == "px":
        extra, expect = {"image_px": "36"}, "not a multiple of the 8-px patch"
    elif case == "labels":
        extra, expect = {"label_fraction": "0.004"}, "without any"
    elif case == "mask":
        extra, expect = {"mask_ratio": "0.99"}, "keeps 0 of 16 patches"
    args = [*tiny_args(data), "--label-fraction", "0.2"]
    for k, v in extra.items():  # a later option wins
        args += [f"--{k.replace('_', '-')}", v]
    r = invoke(db, "train", "point", *args, "--finetune-data", str(digits), "--out", str(tmp_path / "out"))
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()  # progress notes ("decoding ...") may come first
    errors = [x for x in lines if x.startswith("error: ")]
    assert errors == [lines[-1]] and expect in lines[-1], r.stderr
    assert "Traceback" not in r.output
    assert run_count(db) == 0 and not (tmp_path / "out" / "run.json").exists()


def test_accumulation_trains_the_same_run(tmp_path: Path) -> None:
    """--global-batch 8 in 4 micro-batches of 2 is the run of one batch of 8 (same id), to rounding."""
    db = tmp_path / "runs.sqlite"
    docs = []
    for name, extra in (("whole", []), ("accum", ["--global-batch", "8", "--accum", "4"]),
                        ("micro", ["--micro-batch", "2"])):
        r = invoke(db, "train", "pretrain", *tiny_args(clip(), steps=3), *extra, "--out", str(tmp_path / name),
                   "--no-db", "--json")
        assert r.exit_code == 0, r.output
        docs.append(json.loads(r.stdout)["run"])
    assert len({d["run_id"] for d in docs}) == 1 and {d["global_batch"] for d in docs} == {8}
    assert [(d["tags"]["micro_batch"], d["tags"]["accum"]) for d in docs] == [("8", "1"), ("2", "4"), ("2", "4")]
    rows = [[json.loads(x) for x in (tmp_path / n / "pretrain_log.txt").read_text().splitlines()]
            for n in ("whole", "accum", "micro")]
    for other in rows[1:]:
        for a, b in zip(rows[0], other, strict=True):
            assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
            assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-5)
    r = invoke(db, "train", "pretrain", *tiny_args(clip(), steps=3), "--micro-batch", "3", "--out",
               str(tmp_path / "bad"), "--no-db")
    assert r.exit_code == 1 and "micro-batch 3 do not make the 8 samples" in r.stderr
    # --batch-size (tiny_args: 8) is the older name of --global-batch: both, with other values, is a usage error
    r = invoke(db, "train", "pretrain", *tiny_args(clip(), steps=3), "--global-batch", "16", "--out",
               str(tmp_path / "both"), "--no-db")
    assert r.exit_code == 2 and "--batch-size" in r.stderr and not (tmp_path / "both").exists()


def test_train_without_torch_is_one_line(tmp_path: Path) -> None:
    block = ("import sys\nclass _Block:\n    def find_spec(self, name, path=None, target=None):\n"
             "        if name.split('.')[0] in ('torch', 'torchvision', 'timm'):\n"
             "            raise ImportError(name)\nsys.meta_path.insert(0, _Block())\n"
             "sys.argv = ['scaling', 'train', 'pretrain', '--data', 'x']\nfrom scaling.cli import main\nmain()\n")
    proc = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "COLUMNS": "60", "SCALING_DB": str(tmp_path / "db.sqlite")})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: torch is not installed; install the training extra: pip install 'humanlike-scaling[train]'"]


def test_divergence_is_recorded_as_failed_with_the_reason(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    out = tmp_path / "nan"
    r = invoke(db, "train", "pretrain", *tiny_args(clip(), steps=8, lr="1e30"), "--out", str(out))
    assert r.exit_code == 1, r.output
    assert "non-finite loss" in r.stderr and "Traceback" not in r.output
    rec = json.loads((out / "run.json").read_text())
    assert rec["status"] == "FAILED" and "non-finite loss at pretraining step" in rec["tags"]["failure"]
    import runs_db

    with runs_db.open_db(db) as handle:
        stored = handle.get_run(rec["run_id"])
    assert stored["status"] == "FAILED"


def _cli(*args: str, db: Path) -> list[str]:
    return [sys.executable, "-m", "scaling", "--db", str(db), *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def test_sigkill_and_resume_end_with_the_same_record(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    args = [*tiny_args(clip(), steps=40), "--ckpt-every", "5", "--no-db", "--json"]
    whole = subprocess.run(_cli("train", "pretrain", *args, "--out", str(tmp_path / "a"), db=db), env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "b"
    proc = subprocess.Popen(_cli("train", "pretrain", *args, "--out", str(out), db=db), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "pretrain_log.txt"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= 12:  # past the step-10 checkpoint
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = json.loads((out / "run.json").read_text())
    assert killed["status"] == "RUNNING"  # it really was interrupted
    resumed = subprocess.run(_cli("train", "pretrain", *args, "--out", str(out), db=db), env=_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "a" / "run.json").read_text())
    b = json.loads((out / "run.json").read_text())
    volatile = ("started_at", "finished_at")
    volatile_tags = ("pretrain_wall_seconds", "pretrain_images_per_s")
    for rec in (a, b):
        for k in volatile:
            rec.pop(k)
        for k in volatile_tags:
            rec["tags"].pop(k, None)
    assert a == b  # history (loss, lr and gradient norm of every step), FLOPs, config, everything
    assert (tmp_path / "a" / "pretrain_log.txt").read_text() == log.read_text()
    from train.checkpoint import load_weights

    wa, _ = load_weights(tmp_path / "a")
    wb, _ = load_weights(out)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_ddp_two_cpu_processes_equal_one_process(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    args = [*tiny_args(clip(), steps=3), "--no-db"]
    one = subprocess.run(_cli("train", "pretrain", *args, "--out", str(tmp_path / "one"), db=db), env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "scaling", "--db", str(db), "train", "pretrain", *args, "--out", str(tmp_path / "two")],
                         env=_env(), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    rows = [[json.loads(x) for x in (tmp_path / d / "pretrain_log.txt").read_text().splitlines()]
            for d in ("one", "two")]
    assert len(rows[0]) == len(rows[1]) == 3
    for r1, r2 in zip(*rows, strict=True):
        assert r2["train_loss"] == pytest.approx(r1["train_loss"], rel=1e-5)
        assert r2["grad_norm"] == pytest.approx(r1["grad_norm"], rel=1e-5)
    rec = json.loads((tmp_path / "two" / "run.json").read_text())
    assert rec["tags"]["processes"] == "2" and rec["samples_seen"] == 24
