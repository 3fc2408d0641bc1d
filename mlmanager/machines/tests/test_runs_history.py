"""Run history, comparison, exact re-runs and artifacts (issue 18, "Runs and registry"), and the
checksum of a dataset's stored file that a run records."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from mlmanager.accounts.caller import Caller
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.datasets.demo import generate
from mlmanager.datasets.files import local_path
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.services import dataset_delete
from mlmanager.jobs.models import Job
from mlmanager.machines import charts_runs, services
from mlmanager.machines.files import local_path as model_local_path
from mlmanager.machines.models import Machine, ModelVersion, TrainingRun
from mlmanager.machines.selectors_runs import compare_runs, parse_run_ids
from mlmanager.machines.tests.conftest import BUDGET_S, MAX_CANDIDATES


def _sha256(path: Any) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _machine(user: Any, dataset: Dataset, **kwargs: Any) -> Machine:
    kwargs.setdefault("outputs", ["churned"])
    kwargs.setdefault("time_budget_s", BUDGET_S)
    return services.machine_create(caller=Caller.for_session(user), dataset=dataset, **kwargs)


def _finished_run(
    user: Any,
    machine: Machine,
    *,
    seed: int = 0,
    version: int | None = None,
    score: float = 0.8,
    curve: list[list[float]] | None = None,
) -> TrainingRun:
    """A run started the real way, then ended as if its job succeeded, with a version when
    `version` is a number (no training: for the API's shapes, lists and permissions)."""
    run = services.training_start(caller=Caller.for_session(user), machine=machine, seed=seed)
    started = timezone.now() - timedelta(seconds=30)
    Job.objects.filter(pk=run.job_id).update(
        status=Job.Status.SUCCEEDED, started_at=started, finished_at=started + timedelta(seconds=12)
    )
    TrainingRun.objects.filter(pk=run.pk).update(
        is_active=False,
        candidates=4,
        best_score=score,
        best_estimator="lgbm",
        score_curve={
            "eval_method": "cv",
            "outputs": {machine.outputs[0]["name"]: curve or [[1.0, score - 0.1], [5.0, score]]},
        },
    )
    if version is not None:
        ModelVersion.objects.create(
            team_id=machine.team_id,
            machine=machine,
            run=run,
            number=version,
            outcome=ModelVersion.Outcome.SUCCEEDED,
            storage_dir=f"{machine.storage_dir}/run-{run.pk}",
            inputs=[{"name": name, "type": "numeric"} for name in machine.inputs],
            outputs=[
                {
                    **output,
                    "metrics": {
                        output["metric"]: score,
                        "accuracy": score + 0.05,
                        "holdout_rows": 40,
                        "confusion_matrix": {"labels": [False, True], "matrix": [[1, 2], [3, 4]]},
                    },
                    "baseline": {output["metric"]: 0.5, "accuracy": 0.6},
                    "leaderboard": [
                        {
                            "estimator": "lgbm",
                            "config": {"n": 4},
                            "score": score,
                            "fit_time_s": 0.1,
                        },
                        {"estimator": "rf", "config": {"n": 8}, "score": 0.7, "fit_time_s": 0.2},
                    ],
                    "feature_importance": [],
                    "best_estimator": "lgbm",
                    "artifact": "",
                    "artifact_signature": "",
                }
                for output in machine.outputs
            ],
        )
    run.refresh_from_db()
    return run


@pytest.fixture
def model_with_runs(owner, make_dataset) -> dict[str, Any]:
    dataset = make_dataset(owner)
    machine = _machine(owner, dataset)
    first = _finished_run(owner, machine, seed=1, version=1, score=0.8)
    second = _finished_run(owner, machine, seed=2, version=2, score=0.85)
    return {"dataset": dataset, "machine": machine, "first": first, "second": second}


# --- the dataset's checksum ------------------------------------------------------------------


def test_processing_records_the_stored_files_checksum(api, owner, run_jobs) -> None:
    with open(generate.CSV_PATH, "rb") as handle:
        response = api.post("/api/v1/datasets/", {"file": handle}, format="multipart")
    assert response.status_code == 202, response.json()
    assert response.json()["checksum"] == ""
    run_jobs()
    dataset = Dataset.objects.get(pk=response.json()["id"])
    assert dataset.status == Dataset.Status.READY, dataset.error
    assert dataset.checksum == _sha256(local_path(dataset.parquet_path))
    assert api.get(f"/api/v1/datasets/{dataset.pk}/").json()["checksum"] == dataset.checksum
    client = Client()
    client.force_login(owner)
    page = client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert f'data-testid="dataset-checksum">{dataset.checksum[:12]}</code>' in page


@pytest.mark.django_db
def test_a_run_records_its_dataset_with_checksum_and_rows(owner, make_dataset) -> None:
    dataset = make_dataset(owner)
    assert dataset.checksum == ""  # processed before checksums were kept: computed at start
    run = services.training_start(
        caller=Caller.for_session(owner), machine=_machine(owner, dataset), seed=7
    )
    checksum = _sha256(local_path(dataset.parquet_path))
    assert run.spec["dataset"] == {"id": dataset.pk, "checksum": checksum, "rows": 200}
    assert run.spec["dataset_id"] == dataset.pk
    dataset.refresh_from_db()
    assert dataset.checksum == checksum


# --- the history -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_history_lists_every_run_newest_first_with_spec_scores_and_version(
    api, owner, model_with_runs
) -> None:
    machine, first, second = (model_with_runs[key] for key in ("machine", "first", "second"))
    body = api.get(f"/api/v1/models/{machine.pk}/runs/").json()
    assert body["count"] == 2
    assert [entry["id"] for entry in body["results"]] == [second.pk, first.pk]
    entry = body["results"][1]
    checksum = model_with_runs["dataset"].checksum
    assert len(checksum) == 64
    assert entry["spec"] == {
        "kind": "table",
        "inputs": [
            {"name": "plan", "type": "categorical"},
            {"name": "monthly_fee", "type": "numeric"},
            {"name": "tenure_months", "type": "integer"},
            {"name": "spend", "type": "numeric"},
        ],
        "outputs": [{"name": "churned", "task": "binary", "metric": "roc_auc"}],
        "time_budget_s": BUDGET_S,
        "max_candidates": MAX_CANDIDATES,
        "seed": 1,
        "dataset": {"id": model_with_runs["dataset"].pk, "checksum": checksum, "rows": 200},
        "rerun_of": None,
    }
    assert (entry["model"], entry["status"], entry["error"]) == (machine.pk, "succeeded", "")
    assert entry["created_by"] == {"id": owner.pk, "email": owner.email}
    assert entry["finished_at"] is not None
    assert (entry["candidates"], entry["best_score"], entry["best_estimator"]) == (4, 0.8, "lgbm")
    assert entry["version"] == 1
    assert entry["outputs"] == [
        {
            "name": "churned",
            "task": "binary",
            "metric": "roc_auc",
            # numbers only: the confusion matrix and curves stay in the version
            "metrics": {"roc_auc": 0.8, "accuracy": 0.8500000000000001, "holdout_rows": 40},
            "baseline": {"roc_auc": 0.5, "accuracy": 0.6},
            "leaderboard": [
                {"estimator": "lgbm", "config": {"n": 4}, "score": 0.8, "fit_time_s": 0.1},
                {"estimator": "rf", "config": {"n": 8}, "score": 0.7, "fit_time_s": 0.2},
            ],
        }
    ]


@pytest.mark.django_db
def test_a_run_without_version_has_no_outputs_and_pages_limit(api, owner, make_dataset) -> None:
    machine = _machine(owner, make_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    entry = api.get(f"/api/v1/models/{machine.pk}/runs/").json()["results"][0]
    assert (entry["id"], entry["status"], entry["version"], entry["outputs"]) == (
        run.pk,
        "queued",
        None,
        [],
    )
    assert entry["finished_at"] is None
    assert api.get(f"/api/v1/models/{machine.pk}/runs/?limit=0").json()["error"]["code"] == (
        "invalid_filter"
    )


@pytest.mark.django_db
def test_history_costs_the_same_queries_however_many_runs(
    api, owner, make_dataset, django_assert_max_num_queries
) -> None:
    machine = _machine(owner, make_dataset(owner))
    for number in (1, 2):
        _finished_run(owner, machine, version=number)
    url = f"/api/v1/models/{machine.pk}/runs/"
    api.get(url)  # warm-up: the token's last-used write
    with django_assert_max_num_queries(8) as few:
        assert api.get(url).json()["count"] == 2
    for number in range(3, 13):
        _finished_run(owner, machine, version=number)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert api.get(url).json()["count"] == 12

    client = Client()
    client.force_login(owner)
    page = f"/models/{machine.pk}/runs/"
    client.get(page)
    with django_assert_max_num_queries(20) as page_few:
        assert client.get(page).status_code == 200
    for number in range(13, 20):
        _finished_run(owner, machine, version=number)
    with django_assert_max_num_queries(len(page_few.captured_queries)):
        assert client.get(page).status_code == 200


# --- comparing -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_compare_puts_parameters_metrics_and_curves_side_by_side(
    api, owner, model_with_runs, make_dataset
) -> None:
    first, second = model_with_runs["first"], model_with_runs["second"]
    # A run of another model of the same team, without a version.
    other = _machine(owner, make_dataset(owner, name="Other"), outputs=["spend"])
    third = _finished_run(owner, other, seed=2, curve=[[2.0, 30.0], [4.0, 25.0]])
    body = api.get(f"/api/v1/runs/compare/?ids={second.pk},{first.pk},{third.pk}").json()
    assert [run["id"] for run in body["runs"]] == [second.pk, first.pk, third.pk]
    parameters = {item["name"]: item for item in body["parameters"]}
    assert [item["name"] for item in body["parameters"]] == [
        "model",
        "dataset",
        "dataset_checksum",
        "dataset_rows",
        "inputs",
        "outputs",
        "time_budget_s",
        "max_candidates",
        "seed",
    ]
    machine = model_with_runs["machine"]
    assert parameters["model"] == {
        "name": "model",
        "values": [machine.pk, machine.pk, other.pk],
        "differs": True,
    }
    assert parameters["seed"] == {"name": "seed", "values": [2, 1, 2], "differs": True}
    assert parameters["time_budget_s"]["differs"] is False
    assert parameters["inputs"]["values"][0] == ["plan", "monthly_fee", "tenure_months", "spend"]
    assert parameters["outputs"]["values"][2] == [
        {"name": "spend", "task": "regression", "metric": "rmse"}
    ]
    assert body["metrics"] == [
        {
            "output": "churned",
            "metric": "roc_auc",
            "optimised": True,
            "higher_is_better": True,
            "values": [0.85, 0.8, None],
            "best_run": second.pk,
        },
        {
            "output": "churned",
            "metric": "accuracy",
            "optimised": False,
            "higher_is_better": True,
            "values": [0.9, 0.8500000000000001, None],
            "best_run": second.pk,
        },
    ]
    assert body["curves"] == [
        {
            "output": "churned",
            "series": [
                {
                    "run": second.pk,
                    "eval_method": "cv",
                    "until_s": 12.0,
                    "points": [[1.0, 0.75], [5.0, 0.85]],
                },
                {
                    "run": first.pk,
                    "eval_method": "cv",
                    "until_s": 12.0,
                    "points": [[1.0, 0.7000000000000001], [5.0, 0.8]],
                },
            ],
        },
        {
            "output": "spend",
            "series": [
                {
                    "run": third.pk,
                    "eval_method": "cv",
                    "until_s": 12.0,
                    "points": [[2.0, 30.0], [4.0, 25.0]],
                }
            ],
        },
    ]


@pytest.mark.parametrize(
    "ids",
    ["", "1", "1,", ",1,2", "a,b", "1,1", "0,1", "-1,2", "1.5,2", "1;2", "1,2,3,4,5,6,7,8,9,10,11"],
)
@pytest.mark.django_db
def test_compare_refuses_a_malformed_list(api, ids) -> None:
    response = api.get("/api/v1/runs/compare/", {"ids": ids})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_ids"


@pytest.mark.django_db
def test_compare_without_ids_is_invalid_and_ids_parse(api) -> None:
    assert api.get("/api/v1/runs/compare/").json()["error"]["code"] == "invalid_ids"
    assert parse_run_ids(" 3, 1 ") == [3, 1]


@pytest.mark.django_db
def test_compare_with_an_unknown_or_other_teams_run_is_404(api, model_with_runs) -> None:
    first = model_with_runs["first"]
    stranger = member("owner")
    theirs = _finished_run(stranger, _machine(stranger, _stranger_dataset(stranger)))
    for ids in (f"{first.pk},999999", f"{first.pk},{theirs.pk}"):
        response = api.get(f"/api/v1/runs/compare/?ids={ids}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_runs_of_two_of_the_callers_teams_are_not_compared(owner, make_dataset) -> None:
    """Comparisons stay within one team, even for someone in both."""
    mine = _finished_run(owner, _machine(owner, make_dataset(owner)))
    other_owner = member("owner")
    theirs = _finished_run(other_owner, _machine(other_owner, _stranger_dataset(other_owner)))
    from mlmanager.accounts.models import Membership

    Membership.objects.create(team=other_owner.current_team, user=owner, role="viewer")
    response = api_client_for(owner).get(f"/api/v1/runs/compare/?ids={mine.pk},{theirs.pk}")
    assert response.status_code == 404


def _stranger_dataset(user: Any) -> Dataset:
    from mlmanager.machines.tests.conftest import churn_frame

    dataset = Dataset(
        team=user.current_team,
        created_by=user,
        name="Theirs",
        original_filename="theirs.parquet",
        storage_dir=f"datasets/team-{user.current_team_id}/theirs",
        source_name="source.parquet",
        status=Dataset.Status.READY,
    )
    path = local_path(dataset.parquet_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    churn_frame().to_parquet(path, index=False)
    from mlmanager.engine.profiling import profile_parquet

    dataset.profile = profile_parquet(path)
    dataset.row_count = dataset.profile["row_count"]
    dataset.save()
    return dataset


def test_overlaid_curves_share_one_frame_and_colour_each_run() -> None:
    chart, legend = charts_runs.overlaid_score_chart(
        [
            {"run": 5, "until_s": 20.0, "points": [[1.0, 0.6], [4.0, 0.7]]},
            {"run": 9, "until_s": None, "points": [[2.0, 0.65], ["x", 1.0]]},
            {"run": 11, "until_s": 3.0, "points": []},
        ],
        run_ids=[9, 5, 11],
        metric="rmse",
        score_title="cross-validated rmse",
    )
    assert chart is not None
    assert [(series.kind, series.css) for series in chart.series] == [
        ("line", "chart-run-1"),
        ("dots", "chart-run-1 chart-run-dot"),
        ("line", "chart-run-0"),
        ("dots", "chart-run-0 chart-run-dot"),
    ]
    assert [(item.run_id, item.css) for item in legend] == [(5, "chart-run-1"), (9, "chart-run-0")]
    first_line, _dots, second_line, _dots2 = chart.series
    # Run 5 steps up at 4 s and runs on to its end (20 s, the frame's right end); run 9's
    # one point is flat to its own last point.
    assert len(first_line.points) == 1 + 2 + 1
    assert first_line.points[-1][0] == chart.right
    assert second_line.points[0][0] == second_line.points[-1][0]
    assert chart.y_title == "cross-validated rmse (lower is better)"
    assert charts_runs.overlaid_score_chart([], run_ids=[], metric="r2", score_title="r2") == (
        None,
        [],
    )


# --- re-running ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rerun_queues_the_same_spec_on_the_same_data(api, owner, model_with_runs) -> None:
    first = model_with_runs["first"]
    response = api.post(f"/api/v1/runs/{first.pk}/rerun/")
    assert response.status_code == 202, response.json()
    body = response.json()
    rerun = TrainingRun.objects.get(pk=body["id"])
    assert (body["status"], body["version"], body["spec"]["rerun_of"]) == ("queued", None, first.pk)
    assert rerun.spec == {**first.spec, "rerun_of": first.pk}
    assert (rerun.seed, rerun.max_candidates, rerun.time_budget_s) == (1, MAX_CANDIDATES, BUDGET_S)
    assert rerun.machine_id == first.machine_id
    # One run at a time, as for any training.
    again = api.post(f"/api/v1/runs/{first.pk}/rerun/")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "training_active")


@pytest.mark.django_db
def test_rerun_keeps_the_recorded_spec_when_the_model_changed(api, owner, model_with_runs) -> None:
    first, machine = model_with_runs["first"], model_with_runs["machine"]
    services.machine_update(machine=machine, inputs=["plan"], time_budget_s=60)
    rerun = TrainingRun.objects.get(pk=api.post(f"/api/v1/runs/{first.pk}/rerun/").json()["id"])
    assert [name for name, _type in rerun.spec["inputs"]] == [
        "plan",
        "monthly_fee",
        "tenure_months",
        "spend",
    ]
    assert rerun.spec["time_budget_s"] == BUDGET_S


@pytest.mark.django_db
def test_rerun_refuses_changed_or_deleted_data(api, owner, model_with_runs) -> None:
    first, dataset = model_with_runs["first"], model_with_runs["dataset"]
    Dataset.objects.filter(pk=dataset.pk).update(checksum="0" * 64)  # reprocessed into new bytes
    response = api.post(f"/api/v1/runs/{first.pk}/rerun/")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "dataset_changed"
    assert error["details"] == {"recorded": first.spec["dataset"]["checksum"], "current": "0" * 64}

    dataset_delete(caller=Caller.for_session(owner), dataset=dataset)
    response = api.post(f"/api/v1/runs/{first.pk}/rerun/")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "dataset_missing")
    assert TrainingRun.objects.filter(machine=model_with_runs["machine"]).count() == 2


@pytest.mark.django_db
def test_a_viewer_cannot_rerun(model_with_runs) -> None:
    viewer = member("viewer", team=model_with_runs["machine"].team)
    response = api_client_for(viewer).post(f"/api/v1/runs/{model_with_runs['first'].pk}/rerun/")
    assert response.status_code == 403


def test_a_rerun_bounded_by_candidates_finds_the_same_model(owner, make_dataset, run_jobs) -> None:
    """The real engine, twice: same spec, data and seed, a cap on candidates -> same model,
    same holdout metrics."""
    machine = _machine(owner, make_dataset(owner))
    original = services.training_start(caller=Caller.for_session(owner), machine=machine, seed=5)
    run_jobs()
    original.refresh_from_db()
    assert original.job.status == Job.Status.SUCCEEDED, original.job.error
    rerun = services.training_rerun(caller=Caller.for_session(owner), run=original)
    run_jobs()
    rerun.refresh_from_db()
    assert rerun.job.status == Job.Status.SUCCEEDED, rerun.job.error
    before, after = original.version.outputs[0], rerun.version.outputs[0]
    assert rerun.version.number == 2
    assert after["best_estimator"] == before["best_estimator"]
    assert after["metrics"] == before["metrics"]
    assert after["baseline"] == before["baseline"]
    assert [(row["estimator"], row["config"], row["score"]) for row in after["leaderboard"]] == [
        (row["estimator"], row["config"], row["score"]) for row in before["leaderboard"]
    ]
    assert rerun.version.reproducibility["dataset_sha256"] == original.spec["dataset"]["checksum"]


def test_a_rerun_trains_on_its_dataset_when_the_model_moved_on(
    owner, make_dataset, run_jobs, fake_engine
) -> None:
    """A model pointed at newer data (a dataset version) can still re-run an older run on
    the data that run used."""
    old = make_dataset(owner, name="Old")
    machine = _machine(owner, old)
    original = services.training_start(caller=Caller.for_session(owner), machine=machine)
    run_jobs()
    Machine.objects.filter(pk=machine.pk).update(dataset=make_dataset(owner, name="New"))
    rerun = services.training_rerun(caller=Caller.for_session(owner), run=original)
    run_jobs()
    rerun.refresh_from_db()
    assert rerun.job.status == Job.Status.SUCCEEDED, rerun.job.error
    assert rerun.spec["dataset"]["id"] == old.pk
    assert rerun.version.number == 2


# --- artifacts -------------------------------------------------------------------------------


def test_artifacts_list_and_download(api, owner, make_dataset, run_jobs, fake_engine) -> None:
    machine = _machine(owner, make_dataset(owner), outputs=["churned", "spend"])
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    run_jobs()
    run.refresh_from_db()
    version = run.version

    body = api.get(f"/api/v1/runs/{run.pk}/artifacts/").json()
    assert body["count"] == 3
    assert [(item["name"], item["content_type"]) for item in body["results"]] == [
        ("model.zip", "application/zip"),
        ("metrics.json", "application/json"),
        ("leaderboard.csv", "text/csv"),
    ]
    for item in body["results"]:
        assert item["url"] == f"http://testserver/api/v1/runs/{run.pk}/artifacts/{item['name']}/"
        download = api.get(item["url"])
        assert download.status_code == 200
        assert download["Content-Type"] == item["content_type"]
        assert download["Content-Disposition"] == (
            f'attachment; filename="run-{run.pk}-{item["name"]}"'
        )
        content = b"".join(download.streaming_content)
        assert len(content) == item["size"]
        if item["name"] == "model.zip":
            archive = zipfile.ZipFile(io.BytesIO(content))
            names = sorted(archive.namelist())
            assert names == [
                "output-1/model.joblib",
                "output-1/model.joblib.sig",
                "output-2/model.joblib",
                "output-2/model.joblib.sig",
                "version.json",
            ]
            for output in version.outputs:
                stored = model_local_path(output["artifact"])
                relative = output["artifact"].removeprefix(version.storage_dir + "/")
                assert archive.read(relative) == stored.read_bytes()
            manifest = json.loads(archive.read("version.json"))
            assert (manifest["model"], manifest["version"]) == (machine.pk, 1)
            assert [output["artifact"] for output in manifest["outputs"]] == [
                "output-1/model.joblib",
                "output-2/model.joblib",
            ]
        elif item["name"] == "metrics.json":
            document = json.loads(content)
            assert document["version"] == 1
            assert [
                (output["name"], output["metrics"], output["baseline"])
                for output in document["outputs"]
            ] == [
                (output["name"], output["metrics"], output["baseline"])
                for output in version.outputs
            ]
        else:
            rows = list(csv.DictReader(io.StringIO(content.decode())))
            assert [
                (row["output"], row["rank"], row["estimator"], row["score"], row["metric"])
                for row in rows
            ] == [("churned", "1", "lgbm", "0.8", "roc_auc"), ("spend", "1", "lgbm", "0.8", "rmse")]
            assert json.loads(rows[0]["config"]) == {"n_estimators": 4}

    assert api.get(f"/api/v1/runs/{run.pk}/artifacts/model.pkl/").status_code == 404
    assert api.get(f"/api/v1/runs/{run.pk}/artifacts/..%2Fmodel.zip/").status_code == 404


@pytest.mark.django_db
def test_a_run_without_version_has_no_artifacts(api, owner, make_dataset) -> None:
    run = services.training_start(
        caller=Caller.for_session(owner), machine=_machine(owner, make_dataset(owner))
    )
    for url in (
        f"/api/v1/runs/{run.pk}/artifacts/",
        f"/api/v1/runs/{run.pk}/artifacts/metrics.json/",
    ):
        response = api.get(url)
        assert (response.status_code, response.json()["error"]["code"]) == (409, "no_version")
    assert api.get(f"/api/v1/runs/{run.pk}/artifacts/nope.txt/").status_code == 404


@pytest.mark.django_db
def test_a_leaderboard_cell_that_looks_like_a_formula_is_escaped(api, owner, make_dataset) -> None:
    frame_dataset = make_dataset(owner)
    machine = _machine(owner, frame_dataset)
    run = _finished_run(owner, machine, version=1)
    version = run.version
    version.outputs = [{**version.outputs[0], "name": "=HYPERLINK(1)"}]
    version.save(update_fields=["outputs"])
    content = b"".join(
        api.get(f"/api/v1/runs/{run.pk}/artifacts/leaderboard.csv/").streaming_content
    )
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert rows[0]["output"] == "'=HYPERLINK(1)"


# --- another team's runs ---------------------------------------------------------------------

API_URLS = [
    ("get", "/api/v1/models/{machine}/runs/"),
    ("get", "/api/v1/runs/compare/?ids={run},{mine}"),
    ("post", "/api/v1/runs/{run}/rerun/"),
    ("get", "/api/v1/runs/{run}/artifacts/"),
    ("get", "/api/v1/runs/{run}/artifacts/model.zip/"),
]
PAGE_URLS = [
    ("get", "/models/{machine}/runs/"),
    ("get", "/models/runs/compare/?ids={run}&ids={mine}"),
    ("post", "/models/runs/{run}/rerun/"),
    ("get", "/models/runs/{run}/artifacts/metrics.json/"),
]


@pytest.fixture
def team_b_run(owner, make_dataset) -> dict[str, int]:
    owner_b = member("owner")
    machine = _machine(owner_b, make_dataset(owner_b, name="B's data"))
    run = _finished_run(owner_b, machine, version=1)
    mine = _finished_run(owner, _machine(owner, make_dataset(owner)))
    return {"machine": machine.pk, "run": run.pk, "mine": mine.pk}


@pytest.mark.parametrize(("method", "url"), API_URLS)
@pytest.mark.django_db
def test_api_of_other_teams_runs_is_404(api, team_b_run, method, url) -> None:
    response = getattr(api, method)(url.format(**team_b_run))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert TrainingRun.objects.filter(machine_id=team_b_run["machine"]).count() == 1


@pytest.mark.parametrize(("method", "url"), PAGE_URLS)
@pytest.mark.django_db
def test_pages_of_other_teams_runs_are_404(owner, team_b_run, method, url) -> None:
    client = Client()
    client.force_login(owner)
    assert getattr(client, method)(url.format(**team_b_run)).status_code == 404
    assert TrainingRun.objects.filter(machine_id=team_b_run["machine"]).count() == 1


@pytest.mark.django_db
def test_compare_result_matches_the_selector(owner, model_with_runs) -> None:
    runs = [model_with_runs["first"], model_with_runs["second"]]
    assert [entry["id"] for entry in compare_runs(runs)["runs"]] == [run.pk for run in runs]


# --- pages -----------------------------------------------------------------------------------


@pytest.fixture
def browser(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.mark.django_db
def test_model_page_links_to_its_runs(browser, model_with_runs) -> None:
    machine = model_with_runs["machine"]
    page = browser.get(f"/models/{machine.pk}/").content.decode()
    assert f'href="/models/{machine.pk}/runs/" data-testid="runs-link"' in page


@pytest.mark.django_db
def test_runs_page_lists_runs_with_compare_rerun_and_downloads(browser, model_with_runs) -> None:
    machine, first, second = (model_with_runs[key] for key in ("machine", "first", "second"))
    response = browser.get(f"/models/{machine.pk}/runs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.index(f'data-testid="run-row-{second.pk}"') < page.index(
        f'data-testid="run-row-{first.pk}"'
    )
    assert f'name="ids" value="{first.pk}" form="compare-form"' in page
    assert 'data-testid="compare-button"' in page
    assert f'action="/models/runs/{first.pk}/rerun/"' in page
    assert "csrfmiddlewaretoken" in page
    for name in ("model.zip", "metrics.json", "leaderboard.csv"):
        assert f'href="/models/runs/{first.pk}/artifacts/{name}/"' in page
    checksum = model_with_runs["dataset"].checksum
    assert f'data-testid="run-checksum">{checksum[:12]}</code>' in page
    assert 'href="/static/machines/runs.css"' in page or "machines/runs" in page
    assert "<script>" not in page and "style=" not in page


@pytest.mark.django_db
def test_a_viewer_sees_no_rerun_button(model_with_runs) -> None:
    viewer = member("viewer", team=model_with_runs["machine"].team)
    client = Client()
    client.force_login(viewer)
    page = client.get(f"/models/{model_with_runs['machine'].pk}/runs/").content.decode()
    assert "rerun-" not in page
    response = client.post(f"/models/runs/{model_with_runs['first'].pk}/rerun/")
    assert response.status_code == 403


@pytest.mark.django_db
def test_compare_page_shows_parameters_metrics_and_overlaid_curves(
    browser, model_with_runs
) -> None:
    first, second = model_with_runs["first"], model_with_runs["second"]
    response = browser.get(
        f"/models/runs/compare/?ids={first.pk}&ids={second.pk}&model={first.machine_id}"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="parameter-seed"' in page
    assert 'class="differs" data-testid="parameter-seed"' in page
    assert 'data-testid="metric-churned-roc_auc"' in page
    assert page.count('data-testid="compare-score-curve"') == 1
    assert 'class="chart-run-0"' in page and 'class="chart-run-1"' in page
    assert f"Run #{first.pk}" in page and f"Run #{second.pk}" in page
    # A comma-separated list (a link) works as well.
    assert browser.get(f"/models/runs/compare/?ids={first.pk},{second.pk}").status_code == 200


@pytest.mark.django_db
def test_compare_page_explains_a_bad_selection(browser, model_with_runs) -> None:
    machine = model_with_runs["machine"]
    response = browser.get(
        f"/models/runs/compare/?ids={model_with_runs['first'].pk}&model={machine.pk}"
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert 'data-testid="compare-error"' in page
    assert f'href="/models/{machine.pk}/runs/"' in page


@pytest.mark.django_db
def test_rerun_button_queues_a_run_or_says_why_not(browser, model_with_runs) -> None:
    first = model_with_runs["first"]
    response = browser.post(f"/models/runs/{first.pk}/rerun/", follow=True)
    assert response.redirect_chain[-1][0] == f"/models/{first.machine_id}/runs/"
    rerun = TrainingRun.objects.get(spec__rerun_of=first.pk)
    assert f"Run #{rerun.pk} queued: a re-run of run #{first.pk}." in response.content.decode()
    again = browser.post(f"/models/runs/{first.pk}/rerun/", follow=True)
    assert "This model is already training." in again.content.decode()
    assert browser.get(f"/models/runs/{first.pk}/rerun/").status_code == 405


def test_page_download_of_an_artifact(owner, make_dataset, run_jobs, fake_engine) -> None:
    machine = _machine(owner, make_dataset(owner))
    run = services.training_start(caller=Caller.for_session(owner), machine=machine)
    run_jobs()
    client = Client()
    client.force_login(owner)
    response = client.get(f"/models/runs/{run.pk}/artifacts/metrics.json/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}-metrics.json"'
    assert json.loads(b"".join(response.streaming_content))["run"] == run.pk
