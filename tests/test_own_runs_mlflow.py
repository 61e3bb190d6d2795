"""`scaling runs import --from-mlflow URI --experiment NAME` against a real MLflow file store that the test
creates and fills through the MLflow client (the `mlflow` extra, mlflow-skinny)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import runs_db
from tests.cli_helpers import invoke, ok_json, one_line_error

mlflow = pytest.importorskip("mlflow")

PROTOCOL, EVAL_SET = runs_db.PROTOCOL_PERMISSIVE, runs_db.EVAL_SET_IMAGENET
SET = f"protocol={PROTOCOL},selection=last-epoch"
# (run name, arch, hours, top-5 per epoch, status): the last logged value is what MLflow keeps per metric.
RUNS = [("s14-50h", "vit_s14", 49.886, [0.20, 0.31, 0.35], "FINISHED"),
        ("b14-50h", "vit_b14", 49.886, [0.30, 0.42], "FINISHED"),
        ("b14-500h", "vit_b14", 498.86, [0.10], "FAILED")]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A file store with one experiment of three runs; returns run name -> MLflow run id, and the uri."""
    root = tmp_path_factory.mktemp("mlflow") / "mlruns"
    uri = root.as_uri()
    ids: dict[str, str] = {"uri": uri}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses file stores unless asked
        client = mlflow.MlflowClient(tracking_uri=uri)
        exp = client.create_experiment("mae-grid")
        client.create_experiment("other")
        for name, arch, hours, top5, status in RUNS:
            run = client.create_run(exp, run_name=name)
            rid = run.info.run_id
            for key, value in {"arch": arch, "image_px": 224, "data_hours": hours, "subset_seed": 1,
                               "lr": 1e-3}.items():
                client.log_param(rid, key, value)
            for step, value in enumerate(top5):
                client.log_metric(rid, f"{EVAL_SET}/top5", value, step=step)
            client.log_metric(rid, "train_loss", 0.3)
            client.set_terminated(rid, status=status)
            ids[name] = rid
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ
    return ids


def test_an_mlflow_experiment_imports_with_its_own_names(store: dict[str, str], tmp_path: Path) -> None:
    db_path = tmp_path / "runs.sqlite"
    runs_db.open_db(db_path, seed_published=False).close()
    report = ok_json(db_path, "runs", "import", "--from-mlflow", store["uri"], "--experiment", "mae-grid",
                     "--set", SET)
    assert (report["runs_added"], report["evals_added"]) == (3, 3)
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # the opt-out lasted only for the read
    with runs_db.open_db(db_path) as db:
        frame = db.list_with_eval(metric="top5", selection="last-epoch").set_index("name")
        for name, arch, hours, top5, status in RUNS:
            row = frame.loc[name]
            assert row["value"] == top5[-1]  # MLflow's latest value, stored exactly
            assert (row["arch"], row["data_hours"], row["image_px"]) == (arch, hours, 224)
            assert row["status"] == {"FINISHED": "COMPLETED", "FAILED": "FAILED"}[status]
            assert row["started_at"].endswith("Z") and row["source"] == "import:mlflow"
            config = db.get_run(str(row["run_id"]))["config"]
            assert config["foreign_id"] == store[name]  # the MLflow run id tells same-settings runs apart
        assert {e[0] for e in db.eval_keys().itertuples(index=False)} == {PROTOCOL}
    again = ok_json(db_path, "runs", "import", "--from-mlflow", store["uri"], "--experiment", "mae-grid",
                    "--set", SET)
    assert (again["runs_added"], again["runs_unchanged"], again["evals_added"]) == (0, 3, 0)


def test_a_mapping_adds_to_mlflow_names(store: dict[str, str], tmp_path: Path) -> None:
    """params.lr into the config, the loss as a tag; a plain folder path works as the URI."""
    db = runs_db.open_db(tmp_path / "runs.sqlite", seed_published=False)
    path = store["uri"].removeprefix("file://")
    report = db.import_mlflow(path, "mae-grid", "params.lr=config.lr,metrics.train_loss=tag.train_loss",
                              constants=SET)
    assert report.runs_added == 3
    run = db.get_run(str(db.list_runs(name="b14-50h")["run_id"].iloc[0]))
    assert run["config"]["settings"] == {"lr": "0.001"} and run["tags"] == {"train_loss": "0.3"}


@pytest.mark.parametrize(("where", "experiment", "words"), [
    ("uri", "nope", "no experiment named 'nope' (there: Default, mae-grid, other)"),
    ("uri", "other", "experiment 'other' has no runs"),
    ("missing", "mae-grid", "no MLflow file store there"),
    ("sqlite", "mae-grid", "no MLflow SQLite store there"),
])
def test_bad_stores_are_one_line_and_create_nothing(store: dict[str, str], tmp_path: Path, where: str,
                                                    experiment: str, words: str) -> None:
    db_path = tmp_path / "runs.sqlite"
    runs_db.open_db(db_path, seed_published=False).close()
    uri = {"uri": store["uri"], "missing": str(tmp_path / "mlruns"),
           "sqlite": f"sqlite:///{tmp_path / 'mlflow.db'}"}[where]
    line = one_line_error(invoke(db_path, "runs", "import", "--from-mlflow", uri, "--experiment", experiment,
                                 "--set", SET))
    assert words in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.sqlite", "runs.sqlite-shm", "runs.sqlite-wal"]
    assert runs_db.open_db(db_path).count_runs() == 0


def test_without_selection_the_error_says_how_to_give_it(store: dict[str, str], tmp_path: Path) -> None:
    db_path = tmp_path / "runs.sqlite"
    line = one_line_error(invoke(db_path, "runs", "import", "--from-mlflow", store["uri"], "--experiment",
                                 "mae-grid", "--set", f"protocol={PROTOCOL}"))
    assert f"run {store['s14-50h']}: column 'selection': no selection" in line and "--set selection=" in line
