"""The golden of the per-sample seeded MAE masks: ``train.model.mask_noise`` values recorded for fixed seeds.

The record (``tests/golden/train_masks.json``) was made with the mask generator as it was before issue 22
(one ``torch.Generator`` built per sample on the training thread), by ``python -m tests.train_masks_golden
record``; ``tests/test_train_model.py`` checks that the generator gives the identical values (every float32
bit) for the same (seed, sample index, patch count), so a changed generator never changes a run.

Small cases keep every value (as the exact float32 bit pattern, in hex); the large ones (up to 4,624
patches, the 2.43B model at 952 px) keep the SHA-256 of the values' bytes and the first and last values.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

RECORD = Path(__file__).resolve().parent / "golden" / "train_masks.json"
# (seed, first sample index, samples, patches): seeds 0 and the defaults of the tests, a 64-bit seed, sample
# indices far into a run (step 10^6 of a global batch of 4,096), and patch counts from 16 (32 px / 8) to
# 4,624 (952 px / 14).
CASES: list[tuple[int, int, int, int]] = [
    (0, 0, 8, 16), (1, 7, 4, 16), (3, 100, 5, 49), (5, 4_096_000_000, 3, 256), (2**40 + 7, 12, 4, 64),
    (0, 0, 64, 256), (1, 123_456, 16, 1156), (0, 4_096 * 999_999, 8, 4624),
]
FULL_UP_TO = 64  # patches: cases this small keep every value


def _hex(values: Any) -> list[str]:
    """One string per row: the float32 bit patterns of its values in hex, space-separated."""
    import numpy as np

    rows = np.asarray(values, dtype=np.float32).view(np.uint32)
    return [" ".join(f"{int(v):08x}" for v in row) for row in rows]


def case_key(case: tuple[int, int, int, int]) -> str:
    seed, first, n, length = case
    return f"seed={seed},first={first},n={n},patches={length}"


def describe(noise: Any, length: int) -> dict[str, Any]:
    """What the record keeps of one case's (n, patches) float32 noise."""
    import numpy as np

    arr = np.ascontiguousarray(noise.numpy(), dtype=np.float32)
    out: dict[str, Any] = {"sha256": hashlib.sha256(arr.tobytes()).hexdigest(), "shape": list(arr.shape)}
    if length <= FULL_UP_TO:
        out["bits"] = _hex(arr)
    else:
        out["first_bits"] = _hex(arr[:, :4])
        out["last_bits"] = _hex(arr[:, -4:])
    return out


def compute() -> dict[str, Any]:
    from train.model import mask_noise

    return {case_key(c): describe(mask_noise(range(c[1], c[1] + c[2]), c[3], c[0]), c[3]) for c in CASES}


def record() -> None:
    RECORD.parent.mkdir(exist_ok=True)
    RECORD.write_text(json.dumps(compute(), indent=1) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["record"]:
        sys.exit("usage: python -m tests.train_masks_golden record")
    record()
