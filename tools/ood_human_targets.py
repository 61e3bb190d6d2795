"""Recompute the human OOD accuracies of Geirhos et al. 2021 from the model-vs-human repository's raw data.

Geirhos, Narayanappa, Mitzkus, Thieringer, Bethge, Wichmann and Brendel (2021), "Partial success in closing the
gap between human and machine vision", NeurIPS 34. Their repository, bethgelab/model-vs-human, ships every human
trial of the 17 out-of-distribution (OOD) sets as CSV files (``raw-data/<set>/<set>_subject-NN_session_N.csv``:
one row per trial with the subject's 16-class answer ``object_response`` and the true ``category``).

What is computed, per set (the repository's "OOD accuracy" of its benchmark, ``modelvshuman/plotting/plot.py``,
``get_mean_over_datasets`` with ``EXCLUDE = True``): the share of correct answers over every human trial of the
set (subjects ``subject-*``, all pooled), leaving out the conditions that file's ``EXCLUDE_CONDITIONS`` lists
(the undistorted control condition of each parametric set, and the conditions with mean human accuracy under
0.2). A missing answer (``na``: the subject did not respond in time) counts as wrong. Cue-conflict counts the
shape category as correct, as the repository does. The mean is the unweighted mean over the 17 sets. The
exclusions are read from that file (its ``EXCLUDE_CONDITIONS`` literal) and conditions are compared by value
(``3`` = ``3.0``, ``false`` = ``False``), since the CSV files spell them as the experiments wrote them.

The 16-class decision of an ImageNet classifier (``helper/human_categories.py``: the ImageNet class indices of
each of the 16 categories; ``helper/categories.txt``: the 1,000 WNIDs by index) is written beside, as WNIDs, so
that a fine-tuned model's 1,000-way output can be read as a 16-class answer (mean probability of a category's
classes, as the repository's ``ImageNetProbabilitiesTo16ClassesMapping`` does).

Usage (a checkout, or a bare clone with a commit)::

    python tools/ood_human_targets.py --repo model-vs-human --out runs_db/data/model-vs-human/human_ood.json
    python tools/ood_human_targets.py --git-dir model-vs-human.git --commit 79ed7cd1... --check
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import math
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from runs_db.ood import same_condition  # the rule the package applies to image names: one definition

REPOSITORY = "bethgelab/model-vs-human"
# The 17 OOD sets of the paper and of the repository's benchmark (modelvshuman/constants.py, DEFAULT_DATASETS).
DATASETS = ("colour", "contrast", "high-pass", "low-pass", "phase-scrambling", "power-equalisation", "false-colour",
            "rotation", "eidolonI", "eidolonII", "eidolonIII", "uniform-noise", "sketch", "stylized", "edge",
            "silhouette", "cue-conflict")
PLOT_FILE = "modelvshuman/plotting/plot.py"
CATEGORIES_FILE = "modelvshuman/helper/human_categories.py"
WNIDS_FILE = "modelvshuman/helper/categories.txt"
LICENCE_FILE = "licenses/LICENSES_OVERVIEW.md"
EVAL_SET_PREFIX = "mvh-"  # the run database's name of a set: mvh-sketch, ...; the mean: mvh-mean
ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "runs_db" / "data" / "model-vs-human" / "human_ood.json"

Reader = Callable[[str], str]  # repository path -> text
Lister = Callable[[str], list[str]]  # repository folder -> the paths of its files


def checkout_reader(repo: Path) -> tuple[Reader, Lister, str]:
    def read(path: str) -> str:
        return (repo / path).read_text(encoding="utf-8")

    def files(folder: str) -> list[str]:
        return sorted(str(p.relative_to(repo)) for p in (repo / folder).iterdir() if p.is_file())

    commit = _git(["-C", str(repo), "rev-parse", "HEAD"]).strip() if (repo / ".git").exists() else "unknown"
    return read, files, commit


def _git(args: list[str]) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def git_reader(git_dir: Path, commit: str) -> tuple[Reader, Lister, str]:
    full = _git(["--git-dir", str(git_dir), "rev-parse", f"{commit}^{{commit}}"]).strip()

    def read(path: str) -> str:
        return _git(["--git-dir", str(git_dir), "show", f"{full}:{path}"])

    def files(folder: str) -> list[str]:
        out = _git(["--git-dir", str(git_dir), "ls-tree", "--name-only", f"{full}:{folder}"])
        return sorted(f"{folder}/{name}" for name in out.split())

    return read, files, full


def parse(source: str) -> ast.Module:
    """``source`` parsed, never run (quietly: old files hold escapes that Python now warns about)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source)


def literal_assignment(source: str, name: str) -> object:
    """The literal value assigned to ``name`` at the top of ``source`` (read, never run)."""
    for node in parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(f"{name} is not assigned in the file")


def set_accuracy(trials: list[dict[str, str]], excluded: list[str]) -> dict[str, object]:
    """Pooled accuracy of the human trials of one set, leaving out ``excluded`` conditions."""
    human = [t for t in trials if t["subj"].startswith("subject-")]
    kept = [t for t in human if not any(same_condition(t["condition"], c) for c in excluded)]
    if not kept:
        raise ValueError("no human trials left")
    correct = sum(t["object_response"] == t["category"] for t in kept)
    by_subject: dict[str, list[bool]] = {}
    for t in kept:
        by_subject.setdefault(t["subj"], []).append(t["object_response"] == t["category"])
    per_subject = [sum(v) / len(v) for v in by_subject.values()]
    conditions: list[str] = []
    for t in kept:
        if not any(same_condition(t["condition"], c) for c in conditions):
            conditions.append(t["condition"])
    return {"value": correct / len(kept), "correct": correct, "trials": len(kept), "subjects": len(by_subject),
            "subject_min": min(per_subject), "subject_max": max(per_subject),
            "trials_left_out": len(human) - len(kept), "conditions": sorted(conditions, key=_condition_order)}


def _condition_order(c: str) -> tuple[int, float, str]:
    try:
        return 0, float(c), c
    except ValueError:
        return 1, 0.0, c


def read_trials(read: Reader, path: str) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(read(path))))
    for r in rows:
        if not {"subj", "object_response", "category", "condition"} <= set(r):
            raise ValueError(f"{path}: expected columns subj, object_response, category, condition")
    return rows


def sixteen_classes(read: Reader) -> dict[str, list[str]]:
    """Category -> the WNIDs of its ImageNet classes (by index into categories.txt, the 1,000 WNIDs)."""
    wnids = [line.split()[0] for line in read(WNIDS_FILE).splitlines() if line.strip()]
    if len(wnids) != 1000 or not all(re.fullmatch(r"n\d{8}", w) for w in wnids):
        raise ValueError(f"{WNIDS_FILE}: expected the 1,000 ImageNet WNIDs")
    source = read(CATEGORIES_FILE)
    out: dict[str, list[str]] = {}
    for node in ast.walk(parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == "HumanCategories":
            for item in node.body:
                if isinstance(item, ast.Assign) and isinstance(item.targets[0], ast.Name) \
                        and item.targets[0].id.endswith("_indices"):
                    indices = ast.literal_eval(item.value)
                    out[item.targets[0].id.removesuffix("_indices")] = [wnids[i] for i in indices]
    if len(out) != 16:
        raise ValueError(f"{CATEGORIES_FILE}: expected 16 categories, found {len(out)}")
    return dict(sorted(out.items()))


def compute(read: Reader, files: Lister, commit: str) -> dict[str, object]:
    excluded_by_set = literal_assignment(read(PLOT_FILE), "EXCLUDE_CONDITIONS")
    assert isinstance(excluded_by_set, dict)
    sets = []
    for name in DATASETS:
        paths = [p for p in files(f"raw-data/{name}") if p.endswith(".csv")]
        if not paths:
            raise ValueError(f"raw-data/{name}: no CSV files")
        trials = [t for p in paths for t in read_trials(read, p)]
        excluded = [str(c) for c in excluded_by_set.get(name, [])]
        sets.append({"dataset": name, "eval_set": EVAL_SET_PREFIX + name, **set_accuracy(trials, excluded),
                     "excluded_conditions": excluded, "files": f"raw-data/{name}/*.csv ({len(paths)} files)"})
    values = [float(s["value"]) for s in sets]  # type: ignore[arg-type]
    read_trials_total = sum(int(s["trials"]) + int(s["trials_left_out"]) for s in sets)  # type: ignore[call-overload]
    return {
        "schema": "runs_db/human_ood@1",
        "paper": "Geirhos et al. 2021, Partial success in closing the gap between human and machine vision, "
                 "NeurIPS 34",
        "repository": REPOSITORY,
        "commit": commit,
        "licence": "the repository's licences/LICENSES_OVERVIEW.md: its own code MIT (licenses/CODE_LICENSE); "
                   "the human responses in raw-data/ carry no separate licence; only numbers computed from them "
                   "are shipped here",
        "method": "per set: correct / trials over every human trial (subject-*), all subjects pooled, leaving "
                  f"out the conditions of {PLOT_FILE} EXCLUDE_CONDITIONS; an 'na' answer counts as wrong; "
                  "cue-conflict counts the shape category; mean: unweighted over the 17 sets "
                  "(tools/ood_human_targets.py)",
        # the paper's abstract: 85,120 psychophysical trials across 90 participants
        "human_trials_read": read_trials_total,
        "subjects_read": sum(int(s["subjects"]) for s in sets),  # type: ignore[call-overload]
        "mean": {"eval_set": EVAL_SET_PREFIX + "mean", "value": math.fsum(values) / len(values),
                 "sets": [s["eval_set"] for s in sets]},
        "sets": sets,
        "sixteen_classes": {"source": f"{CATEGORIES_FILE} (*_indices) and {WNIDS_FILE}",
                            "categories": sixteen_classes(read)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--repo", type=Path, help="a checkout of bethgelab/model-vs-human")
    where.add_argument("--git-dir", type=Path, help="a (bare) clone of it")
    parser.add_argument("--commit", default="HEAD", help="with --git-dir: the commit to read [HEAD]")
    parser.add_argument("--out", type=Path, help="write the JSON here (default: print it)")
    parser.add_argument("--check", action="store_true", help=f"compare with the shipped {SHIPPED.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    read, files, commit = checkout_reader(args.repo) if args.repo else git_reader(args.git_dir, args.commit)
    result = compute(read, files, commit)
    text = json.dumps(result, indent=1, ensure_ascii=False) + "\n"
    if args.check:
        same = json.loads(SHIPPED.read_text()) == result
        print("same as the shipped file" if same else "differs from the shipped file", file=sys.stderr)
        return 0 if same else 1
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    for s in result["sets"]:  # type: ignore[attr-defined]
        print(f"{s['dataset']:>20}: {100 * s['value']:.2f}% of {s['trials']} trials", file=sys.stderr)
    print(f"{'mean':>20}: {100 * result['mean']['value']:.2f}%", file=sys.stderr)  # type: ignore[index]
    return 0


if __name__ == "__main__":
    sys.exit(main())
