"""Compute-optimal allocation: closed forms against the numerical optimum, Chinchilla's formula, bounds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from scipy.special import expit

from scaling.allocation.mae import (
    ProportionalCost,
    flops_cost,
    optimal_allocation,
    optimal_closed_form,
    optimal_numerical,
    proportional_cost,
)
from scaling.compute.flops import ComputeAssumptions
from scaling.errors import ProjectionError

AXES = ("n_params", "data_hours", "image_px")
RANGES = {"n_params": (2e7, 6e8), "data_hours": (0.5, 5000.0), "image_px": (224.0, 476.0)}
WIDE = {"n_params": (1e6, 1e16), "data_hours": (1e-3, 1e12), "image_px": (14.0, 1e5)}
COST = ProportionalCost(k=5e4, rho=2.0, patch_px=14, max_rel_error=0.0, passes=10.0)


@dataclass
class Known:
    """A fit stand-in with exact parameters (the closed forms read ``params``; predictions use them too)."""

    form: str
    params: dict[str, float]
    kind: str = "accuracy"
    axes: tuple[str, ...] = AXES
    axis_ranges: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(RANGES))
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def ceiling(self) -> float | None:
        if self.form.startswith("powerlaw"):
            return 1 - self.params["E"]
        return None

    def predict(self, X: Mapping[str, Any]) -> np.ndarray:
        p = self.params
        cols = {a: np.asarray(X[a], dtype=float) for a in AXES}
        if self.form in ("poly1", "logit1"):
            z = p["const"] + sum(p[f"log10({a})"] * np.log10(cols[a]) for a in AXES)
            return expit(z) if self.form == "logit1" else z
        s = sum(p[f"A_{a}"] * cols[a] ** -p[f"alpha_{a}"] for a in AXES)
        if self.form == "powerlaw":
            return 1 - (p["E"] + s)
        c = self.options["chance"]
        return 1 - (p["E"] + c * s) / (1 + s)


POWER = Known("powerlaw", {"E": 0.1, "A_n_params": 10.0, "alpha_n_params": 0.3, "A_data_hours": 0.3,
                           "alpha_data_hours": 0.2, "A_image_px": 20.0, "alpha_image_px": 1.0})


def assert_same(a: Any, b: Any, rel: float = 1e-4) -> None:
    assert a.reachable and b.reachable
    for ax in AXES:
        assert a.point[ax] == pytest.approx(b.point[ax], rel=rel), ax
    assert a.cost == pytest.approx(b.cost, rel=rel * 1e-2)


def test_powerlaw_closed_form_equals_numerical() -> None:
    closed = optimal_closed_form(POWER, 0.6, COST, WIDE)
    num = optimal_numerical(POWER, 0.6, COST, WIDE)
    assert closed.method == "closed form" and num.method == "numerical"
    assert "no bound binding" in closed.details["note"] and closed.at_bounds == ()
    assert_same(closed, num)
    assert closed.predicted == pytest.approx(0.6, abs=1e-12)


def test_powerlaw_closed_form_satisfies_lagrange_conditions() -> None:
    # a_i A_i x_i^-a_i / c_i is the same for every axis (c = 1, 1, rho), and the terms sum to Delta.
    a = optimal_closed_form(POWER, 0.6, COST, WIDE)
    p, c = POWER.params, {"n_params": 1.0, "data_hours": 1.0, "image_px": COST.rho}
    terms = {ax: p[f"A_{ax}"] * a.point[ax] ** -p[f"alpha_{ax}"] for ax in AXES}
    marg = [p[f"alpha_{ax}"] * terms[ax] / c[ax] for ax in AXES]
    assert marg == pytest.approx([marg[0]] * 3, rel=1e-10)
    assert sum(terms.values()) == pytest.approx(0.4 - 0.1, rel=1e-12)
    # each axis's share of the reducible error is (c_i / a_i) / sum_j (c_j / a_j)
    w = {ax: c[ax] / p[f"alpha_{ax}"] for ax in AXES}
    for ax in AXES:
        assert a.details["error_share"][ax] == pytest.approx(w[ax] / sum(w.values()), rel=1e-10)


def test_matches_chinchilla_closed_form_when_resolution_is_free() -> None:
    # No resolution term and R pinned: C = k' N D, and the optimum follows Hoffmann et al. 2022:
    # N_opt = G (C/k')^(b/(a+b)), G = (a A / (b B))^(1/(a+b)).
    A, a, B, b = 406.4, 0.34, 410.7, 0.28
    f = Known("powerlaw", {"E": 1.69, "A_n_params": A, "alpha_n_params": a, "A_data_hours": B,
                           "alpha_data_hours": b, "A_image_px": 0.0, "alpha_image_px": 1.0}, kind="loss")
    bounds = dict(WIDE) | {"image_px": (224.0, 224.0), "data_hours": (1e6, 1e15)}
    for loss in (2.0, 2.2, 2.5):
        opt = optimal_closed_form(f, loss, COST, bounds)
        kprime = COST.k * (224.0 / 14) ** 2
        G = (a * A / (b * B)) ** (1 / (a + b))
        assert opt.point["n_params"] == pytest.approx(G * (opt.cost / kprime) ** (b / (a + b)), rel=1e-9)
        assert opt.point["data_hours"] == pytest.approx((opt.cost / kprime) / opt.point["n_params"], rel=1e-12)


def test_closed_form_with_a_binding_bound_equals_numerical() -> None:
    free = optimal_closed_form(POWER, 0.6, COST, WIDE)
    bounds = dict(WIDE) | {"n_params": (1e5, free.point["n_params"] / 3)}
    closed = optimal_closed_form(POWER, 0.6, COST, bounds)
    assert closed.at_bounds == ("n_params upper",) and "with bounds" in closed.details["note"]
    assert_same(closed, optimal_numerical(POWER, 0.6, COST, bounds))
    assert closed.cost > free.cost


def test_chance_law_closed_form_equals_numerical() -> None:
    f = Known("powerlaw_chance", {"E": 0.05, "A_n_params": 300.0, "alpha_n_params": 0.4, "A_data_hours": 2.0,
                                  "alpha_data_hours": 0.25, "A_image_px": 500.0, "alpha_image_px": 1.2},
              options={"chance": 0.999})
    assert_same(optimal_closed_form(f, 0.8, COST, WIDE), optimal_numerical(f, 0.8, COST, WIDE))


@pytest.mark.parametrize("form", ["poly1", "logit1"])
def test_linear_forms_closed_form_equals_numerical(form: str) -> None:
    params = {"const": -0.6, "log10(n_params)": 0.05, "log10(data_hours)": 0.07, "log10(image_px)": 0.23}
    if form == "logit1":
        params = {"const": -5.7, "log10(n_params)": 0.24, "log10(data_hours)": 0.27, "log10(image_px)": 0.9}
    f = Known(form, params)
    bounds = {"n_params": (2e7, 1e12), "data_hours": (0.5, 1e7), "image_px": (224.0, 952.0)}
    closed = optimal_closed_form(f, 0.8, COST, bounds)
    num = optimal_numerical(f, 0.8, COST, bounds)
    assert_same(closed, num, rel=1e-3)
    # Fractional knapsack: axes are raised in order of benefit per unit log cost b_i / c_i (image 0.23/2 or
    # 0.9/2 first); every axis before the last raised one sits at its upper bound, every one after at its lower.
    c = {"n_params": 1.0, "data_hours": 1.0, "image_px": COST.rho}
    order = sorted(AXES, key=lambda a: -params[f"log10({a})"] / c[a])
    assert closed.details["order"] == order
    interior = [a for a in AXES if bounds[a][0] * 1.000001 < closed.point[a] < bounds[a][1] * 0.999999]
    assert len(interior) == 1
    k = order.index(interior[0])
    assert all(f"{a} upper" in closed.at_bounds for a in order[:k])
    assert all(f"{a} lower" in closed.at_bounds for a in order[k + 1 :])


def test_unreachable_targets_are_explicit() -> None:
    a = optimal_closed_form(POWER, 0.95, COST, WIDE)  # error 0.05 < E = 0.1
    assert not a.reachable and "ceiling" in a.reason
    n = optimal_numerical(POWER, 0.95, COST, WIDE)
    assert not n.reachable and "not reachable within the bounds" in n.reason
    # with at most 0.01 h the data term alone (0.3 x 0.01^-0.2 = 0.75) exceeds the reducible error 0.3
    tight = dict(WIDE) | {"data_hours": (1e-3, 1e-2)}
    assert not optimal_closed_form(POWER, 0.6, COST, tight).reachable
    assert not optimal_numerical(POWER, 0.6, COST, tight).reachable
    with pytest.raises(ProjectionError, match="closed-form"):
        optimal_closed_form(Known("poly2", {}), 0.6, COST, WIDE)


def test_flops_optimum_is_a_local_minimum_of_the_exact_flops_model() -> None:
    assumptions = ComputeAssumptions(passes=5.0, mask_ratio=0.75)
    res = optimal_allocation(POWER, 0.6, assumptions, frontier_rows=5)
    opt = res.optimum
    assert opt.reachable and opt.cost_model == "flops" and not opt.at_bounds
    assert res.optimum_flops_exact == pytest.approx(opt.cost, rel=1e-4)  # spline vs exact model
    cost = flops_cost(assumptions, res.bounds)
    p = POWER.params

    def data_needed(n: float, r: float) -> float:
        rest = 0.4 - p["E"] - p["A_n_params"] * n ** -p["alpha_n_params"] - p["A_image_px"] * r ** -1.0
        return (p["A_data_hours"] / rest) ** (1 / p["alpha_data_hours"])

    best = res.optimum_flops_exact
    for dn, dr in [(1.1, 1.0), (0.9, 1.0), (1.0, 1.1), (1.0, 0.9), (1.05, 1.05)]:
        n, r = opt.point["n_params"] * dn, opt.point["image_px"] * dr
        pt = {"n_params": n, "data_hours": data_needed(n, r), "image_px": r}
        assert cost.exact(pt) > best
    # the closed form under the proportional cost agrees with its numerical twin on the same fit
    assert_same(res.proportional_closed, res.proportional_numerical, rel=1e-3)
    # frontier: the optimum is its cheapest row
    rel = [r.relative_cost for r in res.frontier if r.relative_cost is not None]
    assert min(rel) == pytest.approx(1.0, abs=1e-3) and all(x >= 1 - 1e-6 for x in rel)


def test_proportional_cost_is_fitted_to_the_flops_model() -> None:
    assumptions = ComputeAssumptions(passes=5.0, mask_ratio=0.75)
    box = {"n_params": (1e9, 1e13), "data_hours": (1.0, 1e6), "image_px": (224.0, 952.0)}
    pc = proportional_cost(assumptions, box)
    fc = flops_cost(assumptions, box)
    # At large N the encoder dominates: FLOPs/image ~ 6 N (tokens kept) = 6 N (1 - mask) (R/p)^2, so
    # rho is close to 2 and k close to 6 x 0.25 x passes x 3600.
    assert 1.9 < pc.rho < 2.3
    assert pc.k == pytest.approx(1.5 * 5.0 * 3600, rel=0.15)
    for pt in [(2e9, 10.0, 300.0), (5e12, 1e5, 900.0)]:
        logx = np.log(np.array([pt]))
        exact = fc.exact(dict(zip(AXES, pt, strict=True)))
        assert math.exp(pc.log_cost(logx)[0]) == pytest.approx(exact, rel=pc.max_rel_error + 1e-9)
        assert math.exp(fc.log_cost(logx)[0]) == pytest.approx(exact, rel=max(fc.max_rel_error, 1e-6) * 10)


def test_optimal_needs_the_compute_axes() -> None:
    f = Known("powerlaw", dict(POWER.params))
    f.axes = ("n_params", "data_hours")
    with pytest.raises(ProjectionError, match="needs the axes"):
        optimal_allocation(f, 0.6, ComputeAssumptions(passes=5.0))
