"""``write_configs``: a ``scaling train point`` config (TOML, ``[pretrain]`` and ``[finetune]`` tables, the
format of ``train.config``) for each of a suggestion's top candidates.

A config sets what the run database needs to line the run up with the grid: architecture, image px, data
fraction (hours / the corpus's hours) and subset seed, the mask ratio and the training length (images
seen) the cost was computed with, and the published grid's fine-tuning protocol. Where the data live is
not known here: pass ``--data`` (and ``--finetune-data``) to ``scaling train point --config FILE``.
A candidate that no config can express is skipped with the reason: a size no registered architecture
has, or more hours than the corpus holds (a data fraction above 1).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from scaling.core.display import Text
from scaling.core.jsonable import jsonable
from scaling.core.results import Result
from scaling.design.result import CandidateScore, SuggestResult
from scaling.errors import ScalingError

SCHEMA = "scaling.suggest.configs/v1"


@dataclass(frozen=True)
class ConfigsWritten(Result):
    """What ``write_configs`` wrote, and what it skipped with the reason."""

    directory: str
    paths: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (candidate label, reason)

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"schema": SCHEMA, "directory": self.directory, "written": list(self.paths),
                         "skipped": [{"candidate": c, "reason": r} for c, r in self.skipped]})

    def to_frame(self) -> pd.DataFrame:
        rows = [{"config": p, "skipped": ""} for p in self.paths] + [{"config": c, "skipped": r}
                                                                       for c, r in self.skipped]
        return pd.DataFrame(rows)

    def summary(self) -> Text:
        lines = [f"wrote {len(self.paths)} config(s) to {self.directory}", *self.paths]
        lines += [f"skipped {c}: {r}" for c, r in self.skipped]
        return Text("\n".join(lines))

    def __repr__(self) -> str:
        return f"ConfigsWritten(directory={self.directory!r}, written={len(self.paths)}, skipped={len(self.skipped)})"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_text(score: CandidateScore, source: Mapping[str, Any], quantity: str) -> str:
    """The TOML text of one candidate's config (raises ScalingError when no config can express it)."""
    run = score.run
    if not run.get("arch"):
        raise ScalingError(f"no registered architecture has {score.point.get('n_params', 0):.3g} parameters "
                           "(register one in runs_db/archs.py)")
    fraction = run.get("data_fraction")
    if run.get("beyond_corpus"):
        raise ScalingError(f"needs {run['data_hours']:.4g} h, more than the corpus holds "
                           f"({run.get('corpus_hours') or 0:.4g} h)")
    if fraction is None:
        raise ScalingError("the grid records no data fraction: the corpus size is unknown")
    pretrain = {"arch": run["arch"], "image_px": round(run["image_px"]), "data_fraction": min(float(fraction), 1.0),
                "subset_seed": int(run["subset_seed"]), "mask_ratio": float(run["mask_ratio"]),
                "images": round(run["images_seen"])}
    finetune = {"label_fraction": 0.02}
    if source.get("protocol"):
        finetune["protocol"] = source["protocol"]
    if source.get("eval_set"):
        finetune["eval_set"] = source["eval_set"]
    head = [f"# suggested by `scaling suggest` (rank {score.rank}): {score.label}",
            f"# expected shrinkage of the interval of {quantity}: {score.shrinkage:.3g} for {score.flops:.3g} "
            "pretraining FLOPs",
            "# train it with: scaling train point --config THIS.toml --data FRAMES --finetune-data IMAGENET"]
    body = ["[pretrain]", *(f"{k} = {_toml_value(v)}" for k, v in pretrain.items()), "",
            "[finetune]", *(f"{k} = {_toml_value(v)}" for k, v in finetune.items())]
    return "\n".join([*head, "", *body]) + "\n"


def _name(score: CandidateScore) -> str:
    return f"{score.rank:02d}-" + re.sub(r"[^A-Za-z0-9.]+", "-", score.label).strip("-") + ".toml"


def check_directory(directory: str | Path) -> Path:
    """``directory`` as a folder configs can be written into: itself a folder or not there yet, under a folder
    (not a file); ScalingError (one line) otherwise, before any work."""
    out = Path(directory)
    try:
        if out.exists() and not out.is_dir():
            raise ScalingError(f"{out}: exists and is not a directory")
        parent = out.absolute()
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    except OSError as exc:  # a name too long, a loop of links
        raise ScalingError(f"{out}: {exc.strerror or exc}") from None
    if not parent.is_dir():
        raise ScalingError(f"{out}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ScalingError(f"{out}: {parent} is not writable")
    return out


def write_configs(result: SuggestResult, directory: str | Path, *, top: int | None = None,
                  force: bool = False) -> ConfigsWritten:
    """Write a ``scaling train point`` config for each of the ``top`` best candidates of ``result`` (a
    ``SuggestResult``; default its own ``top``) into ``directory`` (created if missing). Every config is
    built, and every existing file checked, before any file is written: a config already there with other
    content is replaced only with ``force`` (the same content is left as it is). Each file is written whole
    (temporary file, then renamed); a folder that cannot be written is a one-line ScalingError."""
    k = result.top if top is None else top
    if k < 1:
        raise ScalingError(f"top must be at least 1; got {k}")
    if result.fit is None or "arch" not in (result.grid.columns if result.grid is not None else []):
        raise ScalingError("configs are written for run-database suggestions only (a --data table has no runs)")
    out = check_directory(directory)
    texts: list[tuple[Path, str]] = []
    skipped: list[tuple[str, str]] = []
    for s in result.scores[:k]:
        try:
            texts.append((out / _name(s), config_text(s, result.fit.source, result.quantity)))
        except ScalingError as exc:
            skipped.append((s.label, str(exc)))
    changed = [(path, text) for path, text in texts if not _holds(path, text, force)]
    temporary: list[Path] = []
    try:  # every file written beside its name first, then all renamed: a failure leaves none half-written
        out.mkdir(parents=True, exist_ok=True)
        for path, text in changed:
            temporary.append(path.with_suffix(".toml.tmp"))
            temporary[-1].write_text(text, encoding="utf-8")
        for (path, _), tmp in zip(changed, temporary, strict=True):
            os.replace(tmp, path)
    except OSError as exc:
        for tmp in temporary:
            tmp.unlink(missing_ok=True)
        raise ScalingError(f"{out}: cannot write the configs: {exc.strerror or exc}") from None
    return ConfigsWritten(str(out), tuple(str(path) for path, _ in texts), tuple(skipped))


def _holds(path: Path, text: str, force: bool) -> bool:
    """Whether ``path`` already holds ``text``; a folder there, or a file with other content without
    ``force``, is a ScalingError."""
    if not path.exists():
        return False
    if not path.is_file():
        raise ScalingError(f"{path}: exists and is not a file")
    if path.read_bytes() == text.encode("utf-8"):
        return True
    if not force:
        raise ScalingError(f"{path} exists with other content; pass --force (force=True) to replace it")
    return False
