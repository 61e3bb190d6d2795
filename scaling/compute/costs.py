"""Cost models over a fit's axes, by name or as an expression: what "compute" means for an allocation.

- ``mae``: the MAE pretraining FLOPs model of ``scaling.compute.flops`` (the run database's axes n_params,
  data_hours, image_px; passes over the data from the reference run), the default on the run database;
- ``6nd``: C = 6 N D, the language-model rule (Kaplan et al. 2020, arXiv 2001.08361, §2.1), with N and D
  the fit's first two axes (e.g. ``--axes params,tokens``);
- an expression of the axes, e.g. ``6*params*tokens`` or ``2*n*d + 1e9*d``: numbers, axis names,
  + - * / ** and parentheses, parsed with ``ast`` into a small tree that is evaluated with numpy (never
  ``eval``), so a cost given on the command line cannot run code.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scaling.compute.flops import ComputeAssumptions, pretrain_compute
from scaling.core.jsonable import JSONDict
from scaling.defaults import AXES
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

    def cost(self, point: Mapping[str, Any]) -> np.ndarray:
        """C at the points of ``point`` (axis -> value or array)."""
        cols = {a: np.asarray(point[a], dtype=float) for a in self.axes}
        with np.errstate(all="ignore"):
            return np.asarray(self.evaluate(cols), dtype=float)

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
        return CostModel("6nd", axes, f"6*{n}*{d}", lambda c: 6.0 * c[n] * c[d])
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


def _expression(text: str, axes: tuple[str, ...]) -> CostModel:
    where = f"cost expression {text!r}"
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise ScalingError(f"{where} is neither 'mae', '6nd' nor an arithmetic expression of the axes") from None

    def build(node: ast.AST) -> Callable[[Mapping[str, np.ndarray]], Any]:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            value = float(node.value)
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
    return CostModel("expression", axes, text, fn)
