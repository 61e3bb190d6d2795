"""Projection against closed-form inverses of a known additive power law."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from scaling.compute.flops import ComputeAssumptions
from scaling.errors import ProjectionError
from scaling.questions.projection import project_at, project_axis, project_scale


@dataclass
class PowerLaw:
    """accuracy = 1 - (E + A n^-a + B d^-b): a fit stand-in with a closed-form inverse."""

    E: float = 0.2
    A: float = 30.0
    a: float = 0.3
    B: float = 2.0
    b: float = 0.25
    form: str = "known"
    axes: tuple[str, ...] = ("n_params", "data_hours")
    kind: str = "accuracy"
    axis_ranges: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {"n_params": (2e7, 6e8), "data_hours": (0.5, 5000.0)}
    )

    @property
    def ceiling(self) -> float:
        return 1 - self.E

    def predict(self, X: Mapping[str, Any]) -> np.ndarray:
        n = np.asarray(X["n_params"], float)
        d = np.asarray(X["data_hours"], float)
        return 1 - (self.E + self.A * n**-self.a + self.B * d**-self.b)


def test_solve_axis_matches_closed_form() -> None:
    f = PowerLaw()
    target = 0.6
    proj = project_axis(f, target, "data_hours")
    n0 = 6e8
    expected = (f.B / (1 - target - f.E - f.A * n0**-f.a)) ** (1 / f.b)
    assert proj.reachable
    assert proj.point is not None
    assert proj.point["data_hours"] == pytest.approx(expected, rel=1e-9)
    assert proj.predicted == pytest.approx(target, abs=1e-9)
    assert proj.decades_beyond is not None
    assert proj.decades_beyond["data_hours"] == pytest.approx(math.log10(expected / 5000.0), rel=1e-9)


def test_scale_mode_reaches_target_at_common_factor() -> None:
    f = PowerLaw()
    proj = project_scale(f, 0.7)
    assert proj.reachable and proj.scale_factor is not None and proj.point is not None
    k = proj.scale_factor
    assert 1 - (f.E + f.A * (6e8 * k) ** -f.a + f.B * (5000 * k) ** -f.b) == pytest.approx(0.7, abs=1e-9)
    assert proj.point["n_params"] == pytest.approx(6e8 * k)
    # the path is monotone, so no smaller factor reaches it
    assert project_at(f, {"n_params": 6e8 * k * 0.99, "data_hours": 5000 * k * 0.99}, target=0.7).reachable is False


def test_scale_exponents_move_axes_at_different_rates() -> None:
    f = PowerLaw()
    proj = project_scale(f, 0.7, exponents={"data_hours": 0.5})
    assert proj.point is not None and proj.scale_factor is not None
    assert proj.point["data_hours"] == pytest.approx(5000 * proj.scale_factor**0.5)


def test_target_beyond_ceiling_is_unreachable() -> None:
    proj = project_scale(PowerLaw(E=0.2), 0.85)
    assert not proj.reachable
    assert "ceiling" in proj.reason
    assert proj.point is None


def test_evaluate_at_point_and_compute() -> None:
    f = PowerLaw(axes=("n_params", "data_hours", "image_px"),
                 axis_ranges={"n_params": (2e7, 6.3e8), "data_hours": (0.5, 4988.6), "image_px": (224, 476)})
    point = {"n_params": 2.5e9, "data_hours": 20_000.0, "image_px": 952.0}
    proj = project_at(f, point, compute=ComputeAssumptions(passes=2.0, mask_ratio=0.8))
    assert proj.predicted == pytest.approx(1 - (0.2 + 30 * 2.5e9**-0.3 + 2 * 20_000**-0.25))
    assert proj.decades_beyond is not None
    assert proj.decades_beyond["image_px"] == pytest.approx(math.log10(2.0))
    assert proj.compute is not None
    assert proj.compute.images_seen == pytest.approx(2 * 20_000 * 3600)


def test_bad_requests_are_projection_errors() -> None:
    f = PowerLaw()
    with pytest.raises(ProjectionError, match="image_px"):
        project_axis(f, 0.6, "image_px")
    with pytest.raises(ProjectionError, match="lacks axis"):
        project_at(f, {"n_params": 1e9}, target=0.5)
    with pytest.raises(ProjectionError, match="positive"):
        project_at(f, {"n_params": -1.0, "data_hours": 1.0})


def test_far_point_without_a_vit_shape_has_no_compute_and_says_why() -> None:
    # At 1e9 px a 14-px patch grid has (1e9/14)^2 = 5.1e15 tokens: position embeddings alone (width >= 1e-3
    # per token) exceed 1e9 parameters, so no ViT shape exists and the compute model must decline.
    f = PowerLaw(axes=("n_params", "data_hours", "image_px"),
                 axis_ranges={"n_params": (2e7, 6.3e8), "data_hours": (0.5, 4988.6), "image_px": (224, 476)})
    proj = project_at(f, {"n_params": 1e9, "data_hours": 1e4, "image_px": 1e9},
                      compute=ComputeAssumptions(passes=2.0))
    assert proj.compute is None
    assert "position embeddings" in proj.details["compute_note"]


def test_a_form_that_turns_back_is_not_answered_below_the_reference() -> None:
    """A quadratic in log x (poly2 fits it exactly) with its maximum inside the data: loss = 4 - (l - 2.5)^2 / 2,
    l = log10 x, data up to l = 3.5 (loss 3.5). Target 3: the loss meets it again at tiny x (l < 1.09), which
    the search used to return as 'already reached at 0.001 x the reference'; going up from the reference it
    is met at l = 2.5 + sqrt(2) (closed form), so k = 10^(sqrt(2) - 1)."""
    import pandas as pd

    import scaling
    from scaling.design.core import ScaleSearch
    from scaling.questions.projection import crossing

    lx = np.linspace(1.5, 3.5, 9)
    df = pd.DataFrame({"x": 10**lx, "loss": 4 - 0.5 * (lx - 2.5) ** 2})
    fit = scaling.fit(df, form="poly2", y="loss", axes=["x"], kind="loss")
    p = project_scale(fit, 3.0)
    assert p.reachable and p.scale_factor == pytest.approx(10 ** (math.sqrt(2) - 1), rel=1e-8) and p.reason == ""
    search = ScaleSearch(np.array([10**3.5]), np.array([1.0]), 3.0, "loss")
    assert search(fit.require_model().predict) == pytest.approx(math.sqrt(2) - 1, abs=1e-8)
    # the rule on a grid of 7 factors, the reference at the middle (log factor 0)
    logf = np.arange(-3.0, 4.0)
    cases = {(0, 0, 0, 0, 1, 1, 1): (4, ""), (1, 1, 0, 0, 0, 0, 0): (None, "below"),  # met only below: no answer
             (0, 1, 1, 1, 1, 0, 0): (1, ""), (1, 1, 1, 1, 0, 0, 0): (0, "floor"),  # met at the reference: down
             (1, 0, 0, 0, 0, 1, 0): (5, ""), (0, 0, 0, 0, 0, 0, 0): (None, "never")}
    for ok, want in cases.items():
        assert crossing(logf, np.array(ok, dtype=bool)) == want, ok
