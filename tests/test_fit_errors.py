"""Every way a fit refuses: one-line FitError naming the form, column and count; never a number."""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd
import pytest

from scaling.errors import FitError, ScalingError
from scaling.forms.result import fit


def table(nn: int = 4, nd: int = 4) -> pd.DataFrame:
    df = pd.DataFrame(
        list(product(np.geomspace(1e7, 1e9, nn), np.geomspace(10, 1e3, nd))), columns=["n", "d"]
    )
    df["acc"] = 1 - (0.3 + 3 * df["n"] ** -0.2 + 0.5 * df["d"] ** -0.3)
    return df


def refuses(df: pd.DataFrame, form: str, match: str, **kw: object) -> None:
    kw.setdefault("y", "acc")
    kw.setdefault("axes", ["n", "d"])
    with pytest.raises(FitError, match=match) as info:
        fit(df, form, **kw)
    assert "\n" not in str(info.value)


def test_too_few_points() -> None:
    df = table(3, 2)  # 6 points; powerlaw on 2 axes has 5 parameters
    refuses(df, "powerlaw", r"form 'powerlaw' has 5 parameters and needs at least 7 points; got 6")
    refuses(table(2, 2), "poly1", r"form 'poly1' has 3 parameters and needs at least 5 points; got 4")


def test_too_few_distinct_values_on_an_axis() -> None:
    df = table(6, 2)
    refuses(df, "powerlaw", r"form 'powerlaw' needs >= 3 distinct values of axis 'd'; got 2")
    refuses(df, "poly2", r"form 'poly2' needs >= 3 distinct values of axis 'd'; got 2")
    refuses(df, "logit2", r"'d'; got 2")
    refuses(table(6, 1), "poly1", r"form 'poly1' needs >= 2 distinct values of axis 'd'; got 1")


def test_non_positive_axis_values() -> None:
    df = table()
    df.loc[[0, 1], "d"] = [0.0, -1.0]
    refuses(df, "powerlaw", r"axis column 'd' has 2 non-positive values")
    refuses(df, "poly1", r"axis column 'd' has 2 non-positive values")


def test_accuracy_outside_unit_interval() -> None:
    df = table()
    df.loc[0, "acc"] = 1.0
    refuses(df, "logit1", r"y column 'acc' has 1 values outside \(0, 1\)")
    refuses(df, "powerlaw", r"outside \(0, 1\) for kind='accuracy'")
    df.loc[0, "acc"] = 1.5  # as a loss it is fine for poly1, but never for a logit
    refuses(df, "logit1", r"form 'logit1' needs y in \(0, 1\)", kind="loss")
    fit(df, "poly1", y="acc", axes=["n", "d"], kind="loss")


def test_non_positive_loss_for_power_law() -> None:
    df = table()
    df.loc[[2, 3, 4], "acc"] = 0.0
    refuses(
        df,
        "powerlaw",
        r"form 'powerlaw' needs a positive loss/error; column 'acc' has 3 values <= 0",
        kind="loss",
    )


def test_nans_and_missing_columns() -> None:
    df = table()
    df.loc[[1, 5], "acc"] = np.nan
    refuses(df, "powerlaw", r"y column 'acc' has 2 NaN or infinite values")
    df = table()
    df.loc[3, "n"] = np.inf
    refuses(df, "poly1", r"axis column 'n' has 1 NaN or infinite values")
    refuses(table(), "poly1", r"axis column 'hours' not in data", axes=["n", "hours"])
    refuses(table(), "poly1", r"y column 'top1' not in data", y="top1")
    df = table()
    df["w"] = 1.0
    df.loc[0, "w"] = 0.0
    refuses(df, "poly1", r"weights column 'w' has 1 non-positive values", weights="w")


def test_bad_options_kind_and_form() -> None:
    refuses(table(), "poly1", r"form 'poly1' does not take option\(s\) huber_delta", huber_delta=0.1)
    refuses(table(), "powerlaw", r"does not take option\(s\) chance", chance=0.9)
    refuses(table(), "powerlaw", r"kind must be 'accuracy', 'error' \(an error rate\) or 'loss'", kind="rate")
    refuses(table(), "spline", r"unknown form 'spline'")
    df = table()
    df["loss"] = 1 - df["acc"]
    refuses(df, "powerlaw_chance", r"needs option 'chance'", y="loss", kind="loss")


def test_prediction_input_errors() -> None:
    r = fit(table(), "poly1", y="acc", axes=["n", "d"])
    with pytest.raises(FitError, match=r"lacks axis column\(s\) 'd'"):
        r.predict({"n": 1e9})
    with pytest.raises(FitError, match=r"axis 'n' has 1 non-positive"):
        r.predict({"n": [0.0, 1e9], "d": 10})


def test_non_convergence_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    import scaling.forms.varpro as fv

    def never(theta0: np.ndarray, prob: fv.Problem, alpha_max: float) -> fv.Refined:
        return fv.Refined(theta0, 1.0, False, "ABNORMAL_TERMINATION_IN_LNSRCH")

    monkeypatch.setattr(fv, "refine", never)
    refuses(
        table(),
        "powerlaw",
        r"power law did not converge from \d+ refinements and 3 random starts",
        n_starts=3,
    )


def test_accuracies_of_exactly_0_or_1_are_left_out_and_named() -> None:
    """A solved eval set (1.0) or a dead run (0.0) is stored as measured; a study's fit leaves such points
    out (no form can take them), says so, and equals the fit of the other points."""
    import scaling

    df = table()
    saturated = pd.concat([df, pd.DataFrame({"n": [1e9, 1e7], "d": [1e3, 10.0], "acc": [1.0, 0.0]})],
                          ignore_index=True)
    for form in ("logit1", "powerlaw"):
        r = scaling.fit(saturated, form, y="acc", axes=["n", "d"])
        ref = fit(df, form, y="acc", axes=["n", "d"])
        assert dict(r.params) == pytest.approx(dict(ref.params), rel=1e-9) and r.n_points == ref.n_points == len(df)
        assert r.notes[0].startswith(f"left out 2 of {len(df) + 2} points with an accuracy of exactly 0 or 1 "
                                     f"(row {len(df) + 1}, row {len(df) + 2})"), r.notes
        assert r.to_dict()["fit"]["notes"][0] == r.notes[0]
    bt = scaling.backtest(saturated, ["poly1"], y="acc", axes=["n", "d"])
    assert bt.notes[0].startswith("left out 2 of")
    with pytest.raises(ScalingError, match="every one of the 2 accuracies is exactly 0 or 1"):
        scaling.fit(saturated.tail(2), "poly1", y="acc", axes=["n", "d"])


def test_a_study_checks_chance_and_rolling_axis_before_any_form() -> None:
    """A nonsense --chance or --rolling is an error, not every form "skipped" or the option ignored."""
    import scaling

    df = table()  # errors 1 - acc are all above 0.3
    kw: dict[str, object] = {"y": "acc", "axes": ["n", "d"]}
    with pytest.raises(ScalingError, match=r"chance-level error of an accuracy is in \(0, 1\]; got 2"):
        scaling.backtest(df, ["poly1", "powerlaw_chance"], chance=2.0, **kw)
    with pytest.raises(ScalingError, match=r"chance level 0.05 is below an observed error of 0.\d+"):
        scaling.fit(df, "powerlaw_chance", chance=0.05, **kw)
    with pytest.raises(ScalingError, match=r"rolling axis 'nope' is not one of the axes \(n, d\)"):
        scaling.backtest(df, ["poly1"], rolling_axis="nope", **kw)
    assert scaling.fit(df, "powerlaw_chance", chance=0.999, **kw).options["chance"] == 0.999
