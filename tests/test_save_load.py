"""``result.save(path)`` and ``scaling.load(path)`` round-trip exactly, with the schema version checked; a
pickled result round-trips too (issue 21).

"Exactly" is checked three ways: the loaded object equals the saved one (its dataclass fields), its complete
saved state encodes to the same JSON (every float bit for bit, NaN and infinities included), and it computes
the same numbers (predictions, intervals, summaries) to the last bit.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaling
from scaling.core.saved import FORMAT, SaveError, decode, encode
from scaling.errors import ScalingError

POINT = pd.DataFrame({"n_params": [6.32e8, 2.5e9], "data_hours": [4989.0, 20000.0], "image_px": [476.0, 952.0]},
                     index=["largest", "paper"])


@pytest.fixture(scope="module")
def runs(published_db_path: Path) -> pd.DataFrame:
    return scaling.load_runs(published_db_path)


@pytest.fixture(scope="module")
def boot_fit(runs: pd.DataFrame) -> scaling.FitResult:
    return scaling.fit(runs, form="logit1", metric="top5", n_boot=40, seed=4)


def same_numbers(a: scaling.FitResult, b: scaling.FitResult) -> None:
    assert a.predict(POINT).equals(b.predict(POINT))
    assert a.get_prediction(POINT).summary_frame(alpha=0.1).equals(b.get_prediction(POINT).summary_frame(alpha=0.1))
    assert a.conf_int(alpha=0.05).equals(b.conf_int(alpha=0.05)) and a.summary() == b.summary()
    assert a.to_dict() == b.to_dict()


def test_a_fit_round_trips_exactly(boot_fit: scaling.FitResult, tmp_path: Path) -> None:
    path = boot_fit.save(tmp_path / "fit.json")
    doc = json.loads(path.read_text())
    assert doc["schema"] == FORMAT and doc["result"]["schema"] == "scaling.fit/v1"
    assert doc["result"]["fit"]["params"] == json.loads(json.dumps(boot_fit.to_dict()))["fit"]["params"]
    loaded = scaling.load(path)
    assert isinstance(loaded, scaling.FitResult) and loaded == boot_fit
    assert encode(loaded) == encode(boot_fit)
    same_numbers(loaded, boot_fit)
    assert loaded.data is loaded.dataset.frame  # one table, shared as before
    assert loaded.data.dtypes.equals(boot_fit.data.dtypes) and loaded.data.attrs == boot_fit.data.attrs
    for name, values in boot_fit.bootstrap.samples.items():
        assert np.array_equal(loaded.bootstrap.samples[name], values, equal_nan=True)
    # the statsmodels object of a fresh fit is not saved; the band comes from the saved coefficients
    assert boot_fit.model.results is not None and loaded.model.results is None
    rep = scaling.project(loaded, "human-top5", [scaling.At()])  # a loaded fit works on
    assert rep.answer("at point").predicted == scaling.project(boot_fit, "human-top5", [scaling.At()]).answer(
        "at point").predicted


def test_a_pickled_fit_round_trips(boot_fit: scaling.FitResult) -> None:
    clone = pickle.loads(pickle.dumps(boot_fit))
    assert clone == boot_fit and encode(clone) == encode(boot_fit)
    same_numbers(clone, boot_fit)


def test_reports_round_trip(boot_fit: scaling.FitResult, runs: pd.DataFrame, tmp_path: Path) -> None:
    rep = scaling.project(boot_fit, "human-top5", [scaling.Scale(), scaling.At()],
                          uncertainty=scaling.Bootstrap(20, seed=1))
    bt = scaling.backtest(runs, ["poly1", "logit1"], metric="top5")
    plan = scaling.plan(rep.answer("at point"))
    for i, result in enumerate([rep, bt, plan, rep.bootstrap]):
        loaded = scaling.load(result.save(tmp_path / f"result{i}.json"))
        assert type(loaded) is type(result) and encode(loaded) == encode(result)
        assert loaded.summary() == result.summary() and loaded.to_dict() == result.to_dict()
        assert encode(pickle.loads(pickle.dumps(result))) == encode(result)
    assert scaling.load(tmp_path / "result0.json").answer("at point").predicted == rep.answer("at point").predicted


def test_the_schema_is_checked(boot_fit: scaling.FitResult, tmp_path: Path) -> None:
    path = boot_fit.save(tmp_path / "fit.json")
    doc = json.loads(path.read_text())

    def refused(document: object, words: str, name: str = "bad.json") -> None:
        bad = tmp_path / name
        bad.write_text(document if isinstance(document, str) else json.dumps(document))
        with pytest.raises(ScalingError) as err:
            scaling.load(bad)
        assert words in str(err.value) and "\n" not in str(err.value), str(err.value)

    refused({**doc, "schema": "scaling.saved/v0"}, "saved with schema 'scaling.saved/v0'; this version of scaling "
                                                   f"reads '{FORMAT}'")
    refused({**doc, "result": {**doc["result"], "schema": "scaling.fit/v2"}}, "a scaling.fit/v2 result")
    state = json.loads(json.dumps(doc["state"]))
    state["$dataclass"]["type"] = "os:system"
    refused({**doc, "state": state}, "only scaling's result types are loaded")
    state = json.loads(json.dumps(doc["state"]))
    state["$dataclass"]["fields"]["shiny_new_field"] = 1
    refused({**doc, "state": state}, "saved by another version of scaling (fields shiny_new_field unknown)")
    refused("{not json", "not JSON")
    refused({"a": 1}, "not a saved result")
    refused({"schema": FORMAT}, "without its state")
    with pytest.raises(ScalingError, match="cannot read"):
        scaling.load(tmp_path / "missing.json")


def test_saving_what_is_not_data_fails_before_writing(boot_fit: scaling.FitResult, tmp_path: Path) -> None:
    import dataclasses

    odd = dataclasses.replace(boot_fit, source={"callback": print})
    with pytest.raises(SaveError, match=r"FitResult\.source\['callback'\]"):
        odd.save(tmp_path / "odd.json")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ScalingError, match="does not exist"):
        boot_fit.save(tmp_path / "no" / "fit.json")


def test_tables_of_every_column_type_round_trip() -> None:
    frame = pd.DataFrame({
        "text": pd.array(["a", None, "c"], dtype="str"), "obj": np.array(["x", None, 1.5], dtype=object),
        "int": np.array([1, 2, 3], dtype="int64"), "float": [0.1, np.nan, np.inf], "flag": [True, False, True],
        "nullable": pd.array([1, None, 3], dtype="Int64"), "cat": pd.Categorical(["lo", "hi", "lo"]),
        "when": pd.to_datetime(["2024-01-01", "2024-06-30", "2025-01-01"]), "f32": np.float32([1.5, 2.5, 3.5]),
    }, index=pd.Index(["r1", "r2", "r3"], name="run"))
    frame.attrs["scaling.source"] = {"source": "test", "levels": (0.9, 0.95)}
    state = json.loads(json.dumps(encode({"frame": frame, "levels": {0.9: (1.0, np.nan)}}), allow_nan=False))
    back = decode(state)
    assert back["frame"].equals(frame) and back["frame"].dtypes.equals(frame.dtypes)
    assert back["frame"].index.equals(frame.index) and back["frame"].attrs == frame.attrs
    assert list(back["levels"]) == [0.9] and back["levels"][0.9][0] == 1.0 and np.isnan(back["levels"][0.9][1])
