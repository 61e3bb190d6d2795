"""Build ``bench/data/extrapolation/`` (manifest.csv, curves.csv) from the released files of the three sources.

Not needed to run the benchmark (its output is shipped); it records how the shipped files were made and
rebuilds them from copies of the public files (paths below; README.md in the output folder names each
file's repository and commit). The choice rule, fixed before any method was scored:

- alabdulmohsin2022 (benchmark.vision.csv, benchmark.lang.csv): every ImageNet few-shot curve (tasks
  inet_5, inet_10, inet_25; 6 architectures), every NMT curve and every LM curve; the released split
  (Training = 1: fit, 0: tail); every LM curve is in the released file 4 times, row for row, and is
  kept once;
- muennighoff2023 (ColPret's datablations_losses.csv): every repetition curve of the 4.2B-parameter
  model (C4 and OSCAR, 1 to 44 epochs over a fixed 84B-token budget);
- choshen2025 (ColPret's opt_trajectories.csv): every OPT model's validation-perplexity trajectory
  (125M to 175B), as loss = ln(perplexity).

muennighoff2023 and choshen2025 have no released split: the fit part is every checkpoint at or below half
the curve's last x, the tail the rest (the alabdulmohsin2022 split holds out about the last factor of 2
of x too: its tails reach 0.30-0.33 decades beyond the fitted part). Every fitting point is kept; a tail
with more than 30 points is thinned to at most 30, evenly spaced in log x (``log_spaced_subset``).

    .venv/bin/python bench/build_extrapolation_data.py --vision benchmark.vision.csv \\
        --lang benchmark.lang.csv --datablations datablations_losses.csv \\
        --opt opt_trajectories.csv
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
from extrapolation_data import DATA_DIR, MANIFEST_COLUMNS, MAX_TAIL, POINT_COLUMNS, log_spaced_subset

A_TASKS = {"inet_5": ("error_rate", "error"), "inet_10": ("error_rate", "error"),
           "inet_25": ("error_rate", "error"), "log_perplexity": ("log_perplexity", "loss"),
           "val_loss": ("val_loss", "loss")}
B_PARAMS = "4.2B"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+_-]+", "-", str(text)).strip("-")


def curve_rows(curve: str, x: np.ndarray, y: np.ndarray, is_fit: np.ndarray) -> tuple[pd.DataFrame, int]:
    """Points of one curve (sorted by x) with the tail thinned; and the number of released tail points."""
    order = np.argsort(x, kind="stable")
    x, y, is_fit = x[order], y[order], is_fit[order]
    tail = np.flatnonzero(~is_fit)
    keep = np.concatenate([np.flatnonzero(is_fit), tail[log_spaced_subset(x[tail], MAX_TAIL)]])
    keep.sort()
    frame = pd.DataFrame({"curve": curve, "x": x[keep], "y": y[keep],
                          "split": np.where(is_fit[keep], "fit", "tail")})
    return frame, len(tail)


def manifest_row(curve: str, source: str, task: str, model: str, x_name: str, y_name: str, quantity: str,
                 points: pd.DataFrame, released: int, unique_tokens: float = math.nan) -> dict[str, object]:
    return {"curve": curve, "source": source, "task": task, "model": model, "x_name": x_name, "y_name": y_name,
            "quantity": quantity, "unique_tokens": unique_tokens, "n_fit": int((points["split"] == "fit").sum()),
            "n_tail": int((points["split"] == "tail").sum()), "n_tail_released": released}


def alabdulmohsin(vision: Path, lang: Path) -> tuple[list[dict[str, object]], list[pd.DataFrame]]:
    df = pd.concat([pd.read_csv(vision), pd.read_csv(lang)], ignore_index=True)
    df = df[df["Task"].isin(list(A_TASKS))]
    # Every LM curve appears 4 times in the released file, row for row: keep one copy of each row.
    df = df.drop_duplicates(["Domain", "Task", "Model", "Seen Examples", "Loss", "Training"])
    rows, frames = [], []
    for (task, model), g in df.groupby(["Task", "Model"], sort=True):
        y_name, quantity = A_TASKS[task]
        domain = str(g["Domain"].iloc[0]).lower()
        curve = f"alabdulmohsin2022/{domain}/{task}/{slug(model)}"
        pts, released = curve_rows(curve, g["Seen Examples"].to_numpy(float), g["Loss"].to_numpy(float),
                                   g["Training"].to_numpy() == 1)
        rows.append(manifest_row(curve, "alabdulmohsin2022", task, model, "seen_examples", y_name, quantity, pts,
                                 released))
        frames.append(pts)
    return rows, frames


def half_split(x: np.ndarray) -> np.ndarray:
    """Fit part: x at or below half the last x."""
    return x <= x.max() / 2


def muennighoff(path: Path) -> tuple[list[dict[str, object]], list[pd.DataFrame]]:
    df = pd.read_csv(path)
    df = df[df["num_params"] == B_PARAMS]
    rows, frames = [], []
    for (data, epochs), g in df.groupby(["data", "epochs"], sort=True):
        x, y = g["token_num"].to_numpy(float), g["loss"].to_numpy(float)
        curve = f"muennighoff2023/{data}/{B_PARAMS}/{int(epochs)}ep"
        pts, released = curve_rows(curve, x, y, half_split(x))
        u = float(g["tokens_per_epoch"].iloc[0])
        rows.append(manifest_row(curve, "muennighoff2023", f"{data} {int(epochs)}-epoch", B_PARAMS, "tokens",
                                 "val_loss", "loss", pts, released, unique_tokens=u))
        frames.append(pts)
    return rows, frames


def choshen(path: Path) -> tuple[list[dict[str, object]], list[pd.DataFrame]]:
    df = pd.read_csv(path)
    rows, frames = [], []
    for size, g in df.groupby("model_size", sort=False):
        x, y = 10.0 ** g["num_token"].to_numpy(float), np.log(g["ppl"].to_numpy(float))
        curve = f"choshen2025/opt/{size}"
        pts, released = curve_rows(curve, x, y, half_split(x))
        rows.append(manifest_row(curve, "choshen2025", "OPT validation perplexity", str(size), "tokens",
                                 "log_perplexity", "loss", pts, released))
        frames.append(pts)
    return rows, frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vision", type=Path, required=True, help="benchmark.vision.csv (Alabdulmohsin et al.)")
    ap.add_argument("--lang", type=Path, required=True, help="benchmark.lang.csv (Alabdulmohsin et al.)")
    ap.add_argument("--datablations", type=Path, required=True, help="ColPret aggregated_eval/datablations_losses.csv")
    ap.add_argument("--opt", type=Path, required=True, help="ColPret aggregated_eval/opt_trajectories.csv")
    ap.add_argument("--out", type=Path, default=DATA_DIR, help="output folder (default: the shipped one)")
    args = ap.parse_args()
    rows, frames = [], []
    for r, f in (alabdulmohsin(args.vision, args.lang), muennighoff(args.datablations), choshen(args.opt)):
        rows += r
        frames += f
    args.out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).to_csv(args.out / "manifest.csv", index=False)
    pd.concat(frames, ignore_index=True)[list(POINT_COLUMNS)].to_csv(args.out / "curves.csv", index=False,
                                                                     float_format="%.10g")
    print(f"{len(rows)} curves, {sum(len(f) for f in frames)} points -> {args.out}")


if __name__ == "__main__":
    main()
