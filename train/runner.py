"""Grid points end to end: check inputs, pretrain, fine-tune/evaluate, write ``run.json``, record in the DB.

A run is one pretraining run (the unit of the run database); its id is the hash of the pretraining config
(``PretrainConfig.hashed()`` + the digest of the selected frames), so the same point trained twice is the
same run. Fine-tuning adds evaluations (one protocol each) to that run; it may be repeated later with
another label fraction or OOD set (``scaling train finetune``), and the new evals join the same run.

Order of work: every input is read and checked first (data paths, video decoding, image sizes, label
fraction, database conflicts), so bad input costs one line and leaves nothing in the database. Then the
RUNNING record, training with checkpoints, and the final COMPLETED (or FAILED, with the reason) record.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import runs_db
from runs_db.archs import ViTShape, encoder_params, get_arch
from train import dist, record
from train.checkpoint import load_weights
from train.config import FinetuneConfig, PretrainConfig, folder_name
from train.data import FrameCorpus, Subset, discover, select_subset
from train.errors import TrainError
from train.finetune import FinetuneData, prepare_finetune_data, run_finetune
from train.flops import FlopsCheck, check_flops
from train.model import check_mask_ratio
from train.pretrain import DCP_NAME, PretrainResult, run_pretrain
from train.runtime import NullReporter, Reporter

CONFIG_SCHEMA = "train/mae-pretrain@1"
FLOPS_METHOD = "profiled:torch.utils.flop_counter(meta) x samples_seen"


@dataclass
class Outcome:
    record: dict[str, object]  # the run.json object (runs_db/run.json@1)
    run_dir: Path
    db_message: str | None


@dataclass
class PreparedPretrain:
    cfg: PretrainConfig
    shape: ViTShape
    corpus: FrameCorpus
    subset: Subset
    flops: FlopsCheck
    config: dict[str, object]  # hashed into the run id


def prepare_pretrain(cfg: PretrainConfig, reporter: Reporter | None = None) -> PreparedPretrain:
    """Check the config and read the data (decoding video); raises one-line ``TrainError``s."""
    reporter = reporter or NullReporter()
    cfg.validate()
    shape = get_arch(cfg.arch)
    check_mask_ratio((cfg.image_px // shape.patch_px) ** 2, cfg.mask_ratio)
    corpus = discover(cfg.data, fps=cfg.fps, short_side=round(1.25 * cfg.image_px),
                      on_video=lambda p: reporter.note(f"decoding {p}"))
    subset = select_subset(corpus, cfg.data_fraction, cfg.subset_seed, cfg.subset)
    flops = check_flops(shape, cfg.image_px, cfg.mask_ratio, decoder_dim=cfg.decoder_dim,
                        decoder_depth=cfg.decoder_depth, decoder_heads=cfg.decoder_heads)
    if abs(flops.ratio - 1.0) > 0.02:
        reporter.note(f"warning: counted FLOPs differ from the analytic model by {100 * (flops.ratio - 1):+.1f}%")
    config: dict[str, object] = {"schema": CONFIG_SCHEMA, "pretrain": cfg.hashed(),
                                 "data": {"frames": subset.frames, "digest": subset.digest}}
    return PreparedPretrain(cfg, shape, corpus, subset, flops, config)


def _dataset_name(cfg: PretrainConfig) -> str:
    return cfg.dataset or "+".join(Path(p).name for p in cfg.data)[:200]


def default_name(cfg: PretrainConfig) -> str:
    return f"{cfg.arch}@{cfg.image_px}_{cfg.data_fraction:g}_{cfg.subset_seed}"


def run_folder(out: Path | None, name: str | None, cfg: PretrainConfig, root: Path = Path("runs")) -> Path:
    """``out``, or ``root/<name>`` (default name from the config); a name must not lead out of ``root``."""
    if out is not None:
        return out
    return root / folder_name(name if name is not None else default_name(cfg), "run name")


def build_record(prep: PreparedPretrain, *, status: str, started_at: str, name: str | None,
                 result: PretrainResult | None = None, failure: str | None = None,
                 world: int = 1, device: str = "cpu") -> dict[str, object]:
    """The ``run.json`` object (``runs_db/run.json@1``) of a pretraining run in any state."""
    cfg, subset, flops = prep.cfg, prep.subset, prep.flops
    steps = result.steps if result else 0
    samples = steps * cfg.global_batch
    tags: dict[str, str] = {
        "data_paths": json.dumps([str(Path(p).expanduser().resolve()) for p in cfg.data]),
        "data_digest": subset.digest,
        "data_subset": cfg.subset + (f" from frame {subset.start}" if subset.start is not None else ""),
        "data_fps": "native" if cfg.fps is None else f"{cfg.fps:g}",
        "decoder": f"{cfg.decoder_dim} wide, {cfg.decoder_depth} deep, {cfg.decoder_heads} heads",
        "flops_counted_per_image": f"{flops.counted:.6g}",
        "flops_analytic_per_image": f"{flops.analytic:.6g}",
        "flops_counted_over_analytic": f"{flops.ratio:.6f}",
        "flops_analytic_decoder_share": f"{flops.analytic_decoder / flops.analytic:.4f}",
        "processes": str(world),
        "device": device,
    }
    if result is not None and result.batches is not None:  # how the last job split the global batch
        tags["micro_batch"], tags["accum"] = str(result.batches.micro_batch), str(result.batches.accum)
    if result is not None:
        tags["precision"] = result.precision
        tags["pretrain_wall_seconds"] = f"{result.seconds:.1f}"
        if result.images_per_s:
            tags["pretrain_images_per_s"] = f"{result.images_per_s:.1f}"
    if failure:
        tags["failure"] = failure
    history: list[dict[str, object]] = []
    for row in (result.history if result else []):
        for key in ("train_loss", "train_lr", "grad_norm"):
            v = row.get(key)
            history.append({"phase": "pretrain", "key": key, "step": int(row["it"]), "segment": 0,
                            "value": v if isinstance(v, int | float) and math.isfinite(v) else None})
    rec: dict[str, object] = {
        "schema": runs_db.RUN_JSON_SCHEMA,
        "run_id": runs_db.run_id_for(prep.config),
        "name": name or default_name(cfg),
        "status": status,
        "arch": prep.shape.name,
        "image_px": cfg.image_px,
        "patch_px": prep.shape.patch_px,
        "n_params": encoder_params(prep.shape, cfg.image_px),
        "dataset": _dataset_name(cfg),
        "data_frames": subset.frames,
        "data_hours": subset.hours,
        "data_fraction": cfg.data_fraction,
        "subset_seed": cfg.subset_seed,
        "train_seed": cfg.seed,
        "pretrain_steps": steps,
        "global_batch": cfg.global_batch,
        "samples_seen": samples,
        "pretrain_flops": flops.counted * samples,
        "flops_method": FLOPS_METHOD,
        "mask_ratio": cfg.mask_ratio,
        "source": "local",
        "code_version": record.code_version(),
        "package_versions": record.package_versions(),
        "host": record.host(),
        "started_at": started_at,
        "config": prep.config,
        "tags": tags,
        "evals": [],
        "history": history,
    }
    if status != "RUNNING":
        rec["finished_at"] = record.utc_now()
    return rec


def _read_run_json(path: Path) -> dict[str, Any] | None:
    """A run.json as written by ``build_record`` (callers read its fields as such), or None if unreadable."""
    try:
        obj: dict[str, Any] | None = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return obj


def _publish(rec: dict[str, object], run_dir: Path, db: Path | None, use_db: bool) -> str | None:
    record.write_run_json(run_dir, rec)
    if not use_db:
        return None
    _, message = record.insert_into_db(db, rec)
    return message


def pretrain_point(prep: PreparedPretrain, run_dir: Path, env: dist.DistEnv, *, db: Path | None, use_db: bool,
                   name: str | None = None, reporter: Reporter | None = None,
                   stop_after: int | None = None) -> Outcome:
    """Pretrain (or resume, or find finished) the run of ``prep`` in ``run_dir`` and record it."""
    reporter = reporter or NullReporter()
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = runs_db.run_id_for(prep.config)
    existing = _read_run_json(run_dir / "run.json")
    if existing is not None and existing.get("run_id") not in (None, run_id):
        raise TrainError(f"{run_dir} holds another run ({existing.get('run_id')}); use another --out")
    if existing is not None and existing.get("status") == "COMPLETED" and (run_dir / DCP_NAME).exists():
        reporter.note(f"pretraining of run {run_id} is already complete in {run_dir}")
        message = _publish(existing, run_dir, db, use_db) if env.is_main else None
        return Outcome(existing, run_dir, message)

    started = (existing or {}).get("started_at") or record.utc_now()
    device = f"{env.device.type} x {env.world}"
    if env.is_main:  # RUNNING first: a DB conflict (a COMPLETED twin) stops us here, before any training
        _publish(build_record(prep, status="RUNNING", started_at=started, name=name, world=env.world, device=device),
                 run_dir, db, use_db)
    dist.barrier(env)
    try:
        result = run_pretrain(prep.cfg, prep.corpus, prep.subset, run_dir, env, identity=prep.config,
                              reporter=reporter, stop_after=stop_after)
    except BaseException as e:
        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
        if isinstance(e, TrainError):
            reason = str(e)
        if env.is_main:
            failed = build_record(prep, status="FAILED", started_at=started, name=name, failure=reason,
                                  world=env.world, device=device)
            try:
                _publish(failed, run_dir, db, use_db)
            except Exception:  # the original error matters more than a failed bookkeeping write
                pass
        raise
    if stop_after is not None and result.steps < (prep.cfg.total_steps() or 0):
        return Outcome(_read_run_json(run_dir / "run.json") or {}, run_dir, None)
    rec = build_record(prep, status="COMPLETED", started_at=started, name=name, result=result, world=env.world,
                       device=device)
    message = _publish(rec, run_dir, db, use_db) if env.is_main else None
    return Outcome(rec, run_dir, message)


def finetune_point(run_dir: Path, fcfg: FinetuneConfig, env: dist.DistEnv, *, db: Path | None, use_db: bool,
                   data: FinetuneData | None = None, reporter: Reporter | None = None,
                   weights: Path | None = None) -> Outcome:
    """Fine-tune the pretrained encoder of ``run_dir`` and add the evaluations to its record. The encoder comes
    from the run's checkpoint (``pretrain.dcp/``) or from ``weights``: a checkpoint folder or the single file
    ``scaling train export`` wrote, of the same run."""
    reporter = reporter or NullReporter()
    rec = _read_run_json(run_dir / "run.json")
    source = weights if weights is not None else run_dir / DCP_NAME
    if rec is None or not source.exists():
        raise TrainError(f"{run_dir} holds no pretrained run (run.json and {source.name}); run `scaling train "
                         "pretrain` first")
    if rec.get("status") != "COMPLETED":
        raise TrainError(f"the pretraining in {run_dir} is {rec.get('status')}; finish it first (rerun the same "
                         "pretrain command to resume)")
    data = data or prepare_finetune_data(fcfg)
    weights_found, meta = load_weights(source, prefix="encoder.")
    found_id = runs_db.run_id_for(meta["identity"]) if isinstance(meta.get("identity"), dict) else None
    if weights is not None and found_id != rec.get("run_id"):
        raise TrainError(f"{weights} holds the weights of run {found_id or 'unknown'}, not of {run_dir}'s run "
                         f"{rec.get('run_id')}")
    encoder = {k.removeprefix("encoder."): v for k, v in weights_found.items()}
    del weights_found
    shape = get_arch(rec["arch"])
    protocol = fcfg.protocol_name()
    ft_dir = run_dir / fcfg.protocol_folder()  # finetune-<set>-<pct>pct or linprobe-...; never outside run_dir
    identity = {"run_id": rec["run_id"], "finetune": fcfg.hashed(), "n_labelled": len(data.keep)}
    result = run_finetune(fcfg, data, encoder, shape, int(rec["image_px"]), ft_dir, env, identity=identity,
                          reporter=reporter)
    tags = dict(rec.get("tags") or {})
    tags[f"finetune:{protocol}"] = json.dumps({**fcfg.hashed(), "n_labelled": len(data.keep),
                                               "n_train": len(data.train), "n_parameters": result.n_parameters,
                                               "precision": result.precision, "wall_seconds": round(result.seconds, 1),
                                               "best_epoch_selected_on": fcfg.eval_set_name()}, sort_keys=True)
    for s in data.ood:  # how each OOD set was scored, and what it left out (16-class sets of Geirhos et al.)
        tags[f"ood:{protocol}/{s.name}"] = json.dumps({
            "images": len(s), "left_out": s.left_out,
            "decision": "16 categories: mean probability of each one's ImageNet classes" if s.groups is not None
            else "training classes"}, sort_keys=True)
    old_keys = {(e["protocol"], e["eval_set"], e["metric"], e["selection"]) for e in rec.get("evals", [])}
    evals = [e for e in rec.get("evals", [])]
    evals += [e for e in result.evals if (e["protocol"], e["eval_set"], e["metric"], e["selection"]) not in old_keys]
    history = [h for h in rec.get("history", []) if not str(h.get("key", "")).startswith(f"{protocol}/")]
    history += result.history
    rec = {**rec, "tags": tags, "evals": evals, "history": history}
    message = _publish(rec, run_dir, db, use_db) if env.is_main else None
    return Outcome(rec, run_dir, message)
