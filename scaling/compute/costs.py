"""Cost models over a fit's axes, by name or as an expression: what "compute" means for an allocation.

- ``mae``: the MAE pretraining FLOPs model of ``scaling.compute.flops`` (the run database's axes n_params,
  data_hours, image_px; passes over the data from the reference run), the default on the run database;
- ``6nd``: C = 6 N D, the language-model rule (Kaplan et al. 2020, arXiv 2001.08361, §2.1), with N and D
  the fit's first two axes (e.g. ``--axes params,tokens``);
- an expression of the axes, e.g. ``6*params*tokens`` or ``2*n*d + 1e9*d``: numbers, axis names,
  + - * / ** and parentheses, parsed with ``ast`` into a small tree that is evaluated with numpy (never
  ``eval``), so a cost given on the command line cannot run code. It is bounded (``COST_MAX_CHARS``
  characters, ``COST_MAX_DEPTH`` levels of nesting) and evaluated in float64 with numpy's guarded
  arithmetic (an overflow is inf, a division by zero inf or nan, never an exception).

A cost must be finite and positive wherever it is asked: a ``6nd`` or expression cost that gives 0, a
negative number, inf or nan at a point raises a one-line ``ScalingError`` naming the point, and
``CostModel.check_box`` asks it over a bounds box (its corners, diagonal and axis sweeps) before an
allocation searches the box. The MAE model is left as it is: it has no value (nan) where position
embeddings alone exceed the parameters, and the allocations handle that.
"""

from __future__ import annotations

import ast
import itertools
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scaling.compute.flops import ComputeAssumptions, pretrain_compute
from scaling.core.jsonable import JSONDict
from scaling.defaults import AXES, COST_MAX_CHARS, COST_MAX_DEPTH
from scaling.errors import ScalingError

NAMED = ("mae", "6nd")
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}


@dataclass(frozen=True)
class CostModel:
    """A cost C(x) > 0 over ``axes`` (the fit's, in its order)."""

    name: str
    axes: tuple[str, ...]
    formula: str
    evaluate: Callable[[Mapping[str, np.ndarray]], np.ndarray] = field(repr=False, compare=False)
    # The MAE FLOPs model's fixed passes and mask (None for any other cost): an allocation under it also
    # gives the proportional-cost cross-check, the closed forms and the frontier (scaling.allocation).
    assumptions: ComputeAssumptions | None = field(default=None, repr=False, compare=False)
    # A cost that must be finite and positive at every point with positive axes ('6nd', expressions): a
    # ScalingError names the first point where it is not.
    strict: bool = field(default=False, compare=False)

    def cost(self, point: Mapping[str, Any]) -> np.ndarray:
        """C at the points of ``point`` (axis -> value or array)."""
        cols = {a: np.asarray(point[a], dtype=float) for a in self.axes}
        with np.errstate(all="ignore"):
            out = np.asarray(self.evaluate(cols), dtype=float)
        if self.strict:
            self._require_positive(cols, out)
        return out

    def _require_positive(self, cols: Mapping[str, np.ndarray], out: np.ndarray) -> None:
        grid = np.broadcast_arrays(out, *cols.values())
        given = np.ones(grid[0].shape, dtype=bool)
        for col in grid[1:]:
            given &= np.isfinite(col) & (col > 0)
        bad = given & ~(np.isfinite(grid[0]) & (grid[0] > 0))
        if bad.any():
            i = tuple(int(j) for j in np.argwhere(bad)[0])
            where = ", ".join(f"{a}={float(col[i]):.4g}" for a, col in zip(self.axes, grid[1:], strict=True))
            formula = self.formula if len(self.formula) <= 60 else self.formula[:57] + "..."
            raise ScalingError(f"cost {formula!r} is {float(grid[0][i]):.4g} at {where}: a cost must be finite "
                               "and positive over the axes' range")

    def check_box(self, bounds: Mapping[str, tuple[float, float]]) -> None:
        """Ask a strict cost over a bounds box (corners, the diagonal, a sweep of each axis through the
        centre, in log space): a ScalingError names the first point where it is not finite and positive."""
        if not self.strict:
            return
        lo = np.log([bounds[a][0] for a in self.axes])
        hi = np.log([bounds[a][1] for a in self.axes])
        k = len(self.axes)
        t = np.linspace(0.0, 1.0, 17)
        rows = [lo + np.outer(t, hi - lo)]
        if k <= 10:
            rows.append(np.array(list(itertools.product(*zip(lo, hi, strict=True)))))
        for j in range(k):
            sweep = np.tile((lo + hi) / 2, (9, 1))
            sweep[:, j] = np.linspace(lo[j], hi[j], 9)
            rows.append(sweep)
        logx = np.vstack(rows)
        self.cost({a: np.exp(logx[:, j]) for j, a in enumerate(self.axes)})

    def log_cost(self, logx: np.ndarray) -> np.ndarray:
        """ln C at rows of ln x, shape (m, k) in ``axes`` order -> (m,); -inf/nan where C <= 0."""
        logx = np.atleast_2d(logx)
        c = self.cost({a: np.exp(logx[:, j]) for j, a in enumerate(self.axes)})
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.broadcast_to(c, (logx.shape[0],)))

    def describe(self) -> JSONDict:
        return {"name": self.name, "formula": self.formula, "axes": list(self.axes)}


def cost_model(spec: str, axes: Sequence[str], *, assumptions: Any = None) -> CostModel:
    """The cost called ``spec`` ('mae', '6nd') or the expression ``spec`` over ``axes``; one-line
    ScalingError naming what is wrong otherwise."""
    axes = tuple(axes)
    text = spec.strip()
    if text.lower() == "mae":
        return _mae(axes, assumptions)
    if text.lower() == "6nd":
        if len(axes) < 2:
            raise ScalingError(f"cost '6nd' needs two axes (N, D); the fit has {', '.join(axes)}")
        n, d = axes[0], axes[1]
        return CostModel("6nd", axes, f"6*{n}*{d}", lambda c: 6.0 * c[n] * c[d], strict=True)
    return _expression(text, axes)


def _mae(axes: tuple[str, ...], assumptions: Any) -> CostModel:
    if set(axes) != set(AXES):
        raise ScalingError(f"cost 'mae' is the MAE FLOPs model over {', '.join(AXES)}; the fit has {', '.join(axes)}"
                           " (use '6nd' or an expression of the axes)")
    if assumptions is None:
        raise ScalingError("cost 'mae' needs the passes over the data (a run-database grid, or --passes)")

    def evaluate(c: Mapping[str, np.ndarray]) -> np.ndarray:
        cols = np.broadcast_arrays(c["n_params"], c["data_hours"], c["image_px"])
        out = np.full(cols[0].shape, np.nan)
        for i in np.ndindex(out.shape):
            try:
                out[i] = pretrain_compute(float(cols[0][i]), float(cols[1][i]), float(cols[2][i]),
                                          passes=assumptions.passes, mask_ratio=assumptions.mask_ratio,
                                          patch_px=assumptions.patch_px).flops
            except ValueError:  # no encoder shape there (position embeddings alone exceed the parameters)
                out[i] = math.nan
        return out

    return CostModel("mae", axes, f"MAE FLOPs per image x {assumptions.passes:.3g} passes x frames", evaluate,
                     assumptions)


def _depth(tree: ast.AST) -> int:
    """How deeply ``tree`` nests (iteratively: a deep tree must not exhaust the stack here)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _constant(value: int | float, where: str) -> np.float64:
    try:
        return np.float64(value)
    except OverflowError:
        raise ScalingError(f"{where}: the number {str(value)[:20]}... is too large") from None


def _expression(text: str, axes: tuple[str, ...]) -> CostModel:
    shown = text if len(text) <= 60 else text[:57] + "..."
    where = f"cost expression {shown!r}"
    if len(text) > COST_MAX_CHARS:
        raise ScalingError(f"{where} is {len(text):,} characters long; a cost expression has at most "
                           f"{COST_MAX_CHARS:,}")
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ScalingError(f"{where} is neither 'mae', '6nd' nor an arithmetic expression of the axes") from None
    if _depth(tree) > COST_MAX_DEPTH:
        raise ScalingError(f"{where} nests {_depth(tree)} levels deep; a cost expression has at most "
                           f"{COST_MAX_DEPTH}")

    def build(node: ast.AST) -> Callable[[Mapping[str, np.ndarray]], Any]:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            value = _constant(node.value, where)  # float64: numpy's guarded arithmetic (inf/nan, no exception)
            return lambda c: value
        if isinstance(node, ast.Name):
            if node.id not in axes:
                raise ScalingError(f"{where}: unknown name {node.id!r}; the axes are {', '.join(axes)}")
            name = node.id
            return lambda c: c[name]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            op, left, right = _BINARY[type(node.op)], build(node.left), build(node.right)
            return lambda c: op(left(c), right(c))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            op1, inner = _UNARY[type(node.op)], build(node.operand)
            return lambda c: op1(inner(c))
        raise ScalingError(f"{where}: only numbers, axis names, + - * / ** and parentheses are allowed")

    fn = build(tree)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    if not used:
        raise ScalingError(f"{where} does not depend on any axis ({', '.join(axes)})")
    return CostModel("expression", axes, text, fn, strict=True)
