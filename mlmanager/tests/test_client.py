"""The Python client and the `mlmanager` client subcommands, over real HTTP against a live
server with a real background worker, authenticated with a real API token."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from mlmanager import cli
from mlmanager.accounts.caller import Caller
from mlmanager.accounts.services import api_token_create
from mlmanager.client import Client, ClientError, predictions_frame, raise_for_error
from mlmanager.core.tests.factories import member
from mlmanager.core.tests.live import BackgroundWorker
from mlmanager.engine.training import TrainingError
from mlmanager.machines.models import Machine
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.tests.conftest import INPUTS, customers

ROW = {
    "plan": "pro",
    "monthly_fee": 42.5,
    "tenure_months": 3,
    "member": True,
    "signup": "2023-04-01",
}


@pytest.fixture
def token(owner: Any) -> str:
    _token, raw = api_token_create(caller=Caller.for_session(owner), name="client tests")
    return raw


@pytest.fixture
def client(live_server: Any, token: str, transactional_db: None) -> Iterator[Client]:
    with Client(live_server.url, token, poll_interval=0.1, timeout=30) as client:
        yield client


@pytest.fixture
def running_worker(worker: BackgroundWorker) -> BackgroundWorker:
    worker.start()
    return worker


def _csv(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


# --- the client ---------------------------------------------------------------------------------


def test_upload_create_train_predict_feedback_and_batch(
    client: Client, running_worker: BackgroundWorker, tmp_path: Path
) -> None:
    """The whole loop with the real engine (two candidates): a CSV in, predictions out."""
    dataset = client.upload_dataset(_csv(tmp_path / "customers.csv", customers(200)), "Customers")
    assert (dataset["name"], dataset["status"], dataset["row_count"]) == ("Customers", "ready", 200)
    assert [column["name"] for column in dataset["columns"]][:3] == [
        "customer_id",
        "plan",
        "monthly_fee",
    ]

    model = client.create_model("Churn", dataset["id"], outputs=["churned"], inputs=INPUTS)
    assert (model["name"], model["status"], model["active_version"]) == ("Churn", "untrained", None)
    assert model["outputs"] == [{"name": "churned", "task": "binary", "metric": "roc_auc"}]
    assert [item["id"] for item in client.models()] == [model["id"]]

    bar = io.StringIO()
    status = client.train(model["id"], progress_file=bar)
    assert (status["status"], status["run"]["status"], status["run"]["progress"]) == (
        "ready",
        "succeeded",
        100,
    )
    assert status["active_version"]["number"] == 1
    assert status["run"]["candidates"] == 2
    assert 0.5 <= status["best_score"] <= 1
    shown = bar.getvalue()
    assert "Training 100%" in shown and "best score=" in shown, shown

    # Rows as a list: the API's answer, with an id per row for feedback.
    answers = client.predict(model["id"], [ROW, {**ROW, "tenure_months": 55, "member": None}])
    assert len(answers) == 2
    for answer in answers:
        assert set(answer) == {"id", "churned", "probabilities"}
        assert set(answer["probabilities"]) == {"no", "yes"}
        assert answer["churned"] == max(answer["probabilities"], key=answer["probabilities"].get)

    # A DataFrame (NaN, NaT, numpy and pandas types, columns that are not inputs): a
    # DataFrame with the same index.
    frame = customers(5, seed=3).set_index(pd.Index([10, 11, 12, 13, 14]))
    frame.loc[11, "monthly_fee"] = np.nan
    frame.loc[12, "signup"] = pd.NaT
    frame["member"] = frame["member"].astype("boolean")
    frame.loc[13, "member"] = pd.NA
    table = client.predict(model["id"], frame, ignore_unknown=True)
    assert list(table.index) == [10, 11, 12, 13, 14]
    assert list(table.columns) == [
        "prediction_id",
        "predicted_churned",
        "probability_churned_no",
        "probability_churned_yes",
    ]
    assert set(table["predicted_churned"]) <= {"yes", "no"}
    sums = table["probability_churned_no"] + table["probability_churned_yes"]
    assert np.allclose(sums, 1.0)
    logged = {
        index: Prediction.objects.get(pk=table.loc[index, "prediction_id"]).inputs
        for index in table.index
    }
    assert logged[11]["monthly_fee"] is None
    assert logged[12]["signup"] is None
    assert logged[13]["member"] is None
    assert logged[10]["signup"] == frame.loc[10, "signup"].isoformat()
    assert logged[10]["member"] is bool(frame.loc[10, "member"])
    assert set(logged[10]) == set(INPUTS)

    # Feedback on one answer, then found in the log by it.
    given = client.feedback(answers[0]["id"], "yes")
    assert (given["id"], given["feedback"]) == (answers[0]["id"], {"churned": "yes"})
    with_feedback = client.predictions(model["id"], has_feedback=True)
    assert [item["id"] for item in with_feedback] == [answers[0]["id"]]
    assert len(client.predictions(model["id"])) == 7

    # A batch of a file, downloaded.
    rows = customers(40, seed=4)
    result = tmp_path / "out" / "predicted.csv"
    result.parent.mkdir()
    batch = client.batch_predict(model["id"], _csv(tmp_path / "more.csv", rows), download_to=result)
    assert (batch["status"], batch["row_count"], batch["model_version"]) == ("succeeded", 40, 1)
    downloaded = pd.read_csv(result)
    assert list(downloaded["customer_id"]) == list(rows["customer_id"])
    assert {"predicted_churned", "probability_churned_yes"} <= set(downloaded.columns)
    assert set(downloaded["predicted_churned"]) <= {"yes", "no"}
    assert [path.name for path in result.parent.iterdir()] == ["predicted.csv"]  # no .part left


def test_predict_chunks_large_requests_on_one_version(
    client: Client,
    binary_model: Machine,
    live_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("mlmanager.client.PREDICT_MAX_ROWS", 2)
    sent: list[httpx.Request] = []
    client._http.event_hooks["request"].append(sent.append)
    rows = customers(5, seed=5)[INPUTS].to_dict(orient="records")  # Timestamps, numpy bools

    answers = client.predict(binary_model.pk, rows)

    assert len(answers) == 5
    assert len({answer["id"] for answer in answers}) == 5
    assert [str(request.url.params) for request in sent] == ["", "version=1", "version=1"]
    assert [len(json.loads(request.content)["rows"]) for request in sent] == [2, 2, 1]
    logged = Prediction.objects.filter(machine=binary_model).order_by("created_at", "id")
    assert logged.count() == 5


def test_batch_of_a_dataset_as_parquet(
    client: Client, binary_model: Machine, running_worker: BackgroundWorker, tmp_path: Path
) -> None:
    result = tmp_path / "result.parquet"
    batch = client.batch_predict(
        binary_model.pk,
        binary_model.dataset_id,
        format="parquet",
        pass_through=["customer_id"],
        download_to=result,
    )
    assert (batch["status"], batch["format"], batch["dataset"]) == (
        "succeeded",
        "parquet",
        binary_model.dataset_id,
    )
    table = pd.read_parquet(result)
    assert len(table) == batch["row_count"] == 300
    assert list(table["customer_id"][:2]) == ["C00000", "C00001"]
    # The named column, the model's inputs, the predictions: nothing else of the dataset.
    assert "churned" not in table.columns
    assert table["probability_churned_yes"].between(0, 1).all()


def test_failed_dataset_raises_with_the_reason(
    client: Client, running_worker: BackgroundWorker, write_file: Callable[..., Path]
) -> None:
    with pytest.raises(ClientError) as raised:
        client.upload_dataset(write_file("header-only.csv", "a,b,c\n"))
    assert (raised.value.status, raised.value.code) == (None, "dataset_failed")
    assert raised.value.message == "The file has column names but no data rows."


def test_failed_training_raises_with_the_runs_error(
    client: Client,
    owner: Any,
    make_dataset: Callable[..., Any],
    fake_engine: Any,
    running_worker: BackgroundWorker,
) -> None:
    fake_engine.error = TrainingError("Every value of “churned” is the same.")
    model = client.create_model("Churn", make_dataset(owner).pk, outputs=["churned"])

    with pytest.raises(ClientError) as raised:
        client.train(model["id"], progress=False)

    assert (raised.value.status, raised.value.code) == (None, "training_failed")
    assert raised.value.message == "Every value of “churned” is the same."
    assert client.training_status(model["id"])["status"] == "failed"


def test_train_without_waiting_returns_the_queued_run(
    client: Client, owner: Any, make_dataset: Callable[..., Any]
) -> None:
    model = client.create_model("", make_dataset(owner).pk, outputs=["spend"])
    run = client.train(model["id"], wait=False)
    assert (run["status"], run["machine"], run["version"]) == ("queued", model["id"], None)
    assert model["name"] == "spend from Churn"  # the API's default name


def test_a_bad_token_is_refused(live_server: Any, transactional_db: None) -> None:
    with (
        Client(live_server.url, "mlm_not-a-real-token") as client,
        pytest.raises(ClientError) as raised,
    ):
        client.models()
    error = raised.value
    assert (error.status, error.code) == (401, "authentication_failed")
    assert error.message == "Invalid, revoked or expired token."
    assert str(error) == "Invalid, revoked or expired token. (HTTP 401, authentication_failed)"


def test_another_teams_model_is_not_found(
    client: Client, make_model: Callable[..., Machine], trained_binary: Any
) -> None:
    stranger = member("owner")
    theirs = make_model(stranger, trained_binary, name="Theirs")
    for call in (
        lambda: client.model(theirs.pk),
        lambda: client.predict(theirs.pk, [ROW]),
        lambda: client.batch_predict(theirs.pk, theirs.dataset_id, wait=False),
    ):
        with pytest.raises(ClientError) as raised:
            call()
        assert (raised.value.status, raised.value.code) == (404, "not_found")
    assert not Prediction.objects.exists()


def test_bad_payloads_raise_the_apis_message(
    client: Client, binary_model: Machine, owner: Any, make_dataset: Callable[..., Any]
) -> None:
    with pytest.raises(ClientError) as raised:
        client.predict(binary_model.pk, [{**ROW, "monthly_fee": "cheap"}])
    assert (raised.value.status, raised.value.code) == (400, "wrong_type")
    assert raised.value.message == ('Row 0, field “monthly_fee”: expected a number, got "cheap".')
    assert raised.value.details == {"row": 0, "field": "monthly_fee", "expected": "a number"}

    extra = [{**ROW, "customer_id": "C1", "churned": "no"}]
    with pytest.raises(ClientError) as raised:
        client.predict(binary_model.pk, extra)
    assert (raised.value.status, raised.value.code) == (400, "unknown_fields")
    assert raised.value.details["fields"] == ["churned", "customer_id"]
    assert len(client.predict(binary_model.pk, extra, ignore_unknown=True)) == 1

    with pytest.raises(ClientError) as raised:
        client.predict(binary_model.pk, [])
    assert (raised.value.status, raised.value.code) == (400, "no_rows")

    with pytest.raises(ClientError) as raised:
        client.predict(binary_model.pk, [ROW], version=9)
    assert (raised.value.status, raised.value.message) == (404, "This model has no version 9.")

    with pytest.raises(ClientError) as raised:
        client.create_model("X", make_dataset(owner).pk, outputs=["no_such_column"])
    assert raised.value.status == 400
    assert "no_such_column" in raised.value.message

    with pytest.raises(ClientError) as raised:
        client.feedback("not-a-uuid", "yes")
    assert (raised.value.status, raised.value.code) == (404, "not_found")


def test_an_unreachable_server_is_a_network_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        Client(f"http://127.0.0.1:{port}", "token") as client,
        pytest.raises(ClientError) as raised,
    ):
        client.models()
    assert (raised.value.status, raised.value.code) == (None, "network_error")
    assert raised.value.message.startswith(f"Could not reach http://127.0.0.1:{port}: ")


def test_an_answer_that_is_not_the_apis_error_shape() -> None:
    page = httpx.Response(502, text="<html><body>\n  Bad gateway </body></html>")
    with pytest.raises(ClientError) as raised:
        raise_for_error(page)
    assert (raised.value.status, raised.value.code) == (502, "http_error")
    assert raised.value.message == "HTTP 502 Bad Gateway: <html><body> Bad gateway </body></html>"
    raise_for_error(httpx.Response(200, json={"ok": True}))  # no error: nothing raised


def test_predictions_frame_names_columns_like_a_batch_result() -> None:
    two_outputs = [
        {
            "id": "p1",
            "churned": "yes",
            "spend": 12.5,
            "probabilities": {"churned": {"no": 0.25, "yes": 0.75}},
        }
    ]
    table = predictions_frame(two_outputs, index=[7])
    assert table.to_dict(orient="index") == {
        7: {
            "prediction_id": "p1",
            "predicted_churned": "yes",
            "predicted_spend": 12.5,
            "probability_churned_no": 0.25,
            "probability_churned_yes": 0.75,
        }
    }


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def connection(live_server: Any, token: str, transactional_db: None) -> list[str]:
    return ["--url", live_server.url, "--token", token]


def _run(capsys: pytest.CaptureFixture[str], *arguments: Any) -> tuple[int, str, str]:
    code = cli.main([str(argument) for argument in arguments])
    out, err = capsys.readouterr()
    return code, out, err


def test_client_commands_do_not_hide_manage_py_commands() -> None:
    from django.core.management import get_commands

    assert not cli.CLIENT_COMMANDS & set(get_commands())
    assert {"migrate", "createsuperuser", "bootstrap", "shell", "worker", "check"} <= set(
        get_commands()
    )


def test_help_lists_the_client_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = _run(capsys, "help")
    assert code == 0
    assert "create-model, datasets, feedback, models, predict, predictions, train, upload" in out
    with pytest.raises(SystemExit) as exited:
        cli.main(["predict", "--help"])
    assert exited.value.code == 0
    assert "--json JSON" in capsys.readouterr().out


def test_cli_upload_with_the_environment_then_list(
    capsys: pytest.CaptureFixture[str],
    live_server: Any,
    token: str,
    running_worker: BackgroundWorker,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("MLMANAGER_URL", live_server.url + "/")
    monkeypatch.setenv("MLMANAGER_TOKEN", token)
    code, out, err = _run(
        capsys, "upload", _csv(tmp_path / "c.csv", customers(30)), "--name", "Thirty"
    )
    assert code == 0, err
    dataset = json.loads(out)
    assert (dataset["name"], dataset["status"], dataset["row_count"]) == ("Thirty", "ready", 30)

    code, out, err = _run(capsys, "datasets")
    assert code == 0, err
    header, line = out.splitlines()
    assert header.split() == ["ID", "NAME", "STATUS", "ROWS", "COLUMNS", "CREATED"]
    assert line.split()[:5] == [str(dataset["id"]), "Thirty", "ready", "30", "8"]


def test_cli_create_model_list_and_train(
    capsys: pytest.CaptureFixture[str],
    connection: list[str],
    owner: Any,
    make_dataset: Callable[..., Any],
    fake_engine: Any,
    running_worker: BackgroundWorker,
) -> None:
    dataset = make_dataset(owner)
    code, out, err = _run(
        capsys, "create-model", "--dataset", dataset.pk, "--output", "churned",
        "--input", "plan", "--input", "tenure_months", "--level", 1, "--name", "Churn", *connection,
    )  # fmt: skip
    assert code == 0, err
    model = json.loads(out)
    assert (model["name"], model["inputs"], model["level"]) == (
        "Churn",
        ["plan", "tenure_months"],
        1,
    )

    code, out, err = _run(capsys, "models", *connection)
    assert code == 0, err
    assert out.splitlines()[1].split() == [str(model["id"]), "Churn", "untrained", str(dataset.pk),
                                           "churned", "-"]  # fmt: skip

    code, out, err = _run(capsys, "train", model["id"], *connection)
    assert code == 0, err
    status = json.loads(out)
    assert (status["status"], status["active_version"]["number"]) == ("ready", 1)
    assert "100%" in err  # the progress bar, on stderr

    code, out, err = _run(capsys, "models", "--json", "--status", "ready", *connection)
    assert [(item["id"], item["active_version"]) for item in json.loads(out)] == [(model["id"], 1)]


def test_cli_predict_json_and_files(
    capsys: pytest.CaptureFixture[str],
    connection: list[str],
    binary_model: Machine,
    tmp_path: Path,
) -> None:
    code, out, err = _run(
        capsys, "predict", binary_model.pk, "--json", json.dumps(ROW), *connection
    )
    assert code == 0, err
    (answer,) = json.loads(out)
    assert set(answer) == {"id", "churned", "probabilities"}

    rows = customers(4, seed=6)
    rows.loc[1, "monthly_fee"] = np.nan
    source = _csv(tmp_path / "rows.csv", rows)
    output = tmp_path / "predicted.csv"
    code, out, err = _run(
        capsys, "predict", binary_model.pk, "--file", source, "--output", output, *connection
    )
    assert code == 0, err
    assert err == f"4 predictions written to {output}\n"
    written = pd.read_csv(output)
    assert list(written.columns) == [
        *rows.columns,
        "prediction_id",
        "predicted_churned",
        "probability_churned_no",
        "probability_churned_yes",
    ]
    assert list(written["customer_id"]) == list(rows["customer_id"])
    assert (
        Prediction.objects.filter(pk=written["prediction_id"][1]).get().inputs["monthly_fee"]
        is None
    )

    lines = tmp_path / "rows.jsonl"
    lines.write_text(json.dumps(ROW) + "\n\n" + json.dumps({**ROW, "plan": "basic"}) + "\n")
    code, out, err = _run(capsys, "predict", binary_model.pk, "--file", lines, *connection)
    assert code == 0, err
    from_lines = json.loads(out)
    assert len(from_lines) == 2
    logged = Prediction.objects.filter(pk__in=[answer["id"] for answer in from_lines])
    assert sorted(row.inputs["plan"] for row in logged) == ["basic", "pro"]

    listed = tmp_path / "rows.json"
    listed.write_text(json.dumps([ROW, ROW, ROW]))
    answers = tmp_path / "answers.jsonl"
    code, out, err = _run(
        capsys, "predict", binary_model.pk, "--file", listed, "--output", answers, *connection
    )
    assert (code, out) == (0, "")
    written_answers = [json.loads(line) for line in answers.read_text().splitlines()]
    assert [set(answer) for answer in written_answers] == [{"id", "churned", "probabilities"}] * 3

    before = Prediction.objects.count()
    lines.write_text(json.dumps(ROW) + "\n" + json.dumps([ROW]) + "\n")
    code, out, err = _run(capsys, "predict", binary_model.pk, "--file", lines, *connection)
    assert (code, err) == (2, "mlmanager: error: rows.jsonl, line 2 must be an object\n")
    code, out, err = _run(
        capsys, "predict", binary_model.pk, "--file", listed, "--output", "x.txt", *connection
    )
    assert (code, err) == (
        2,
        "mlmanager: error: --output must end in .csv, .jsonl or .json, not 'x.txt'\n",
    )
    assert Prediction.objects.count() == before  # refused before anything was predicted


def test_cli_batch_with_download_and_feedback(
    capsys: pytest.CaptureFixture[str],
    connection: list[str],
    binary_model: Machine,
    running_worker: BackgroundWorker,
    tmp_path: Path,
) -> None:
    rows = customers(25, seed=7)
    download = tmp_path / "result.csv"
    code, out, err = _run(
        capsys, "batch", binary_model.pk, _csv(tmp_path / "in.csv", rows), "--download", download,
        *connection,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["row_count"] == 25
    assert err == f"25 rows predicted, saved to {download}\n"
    assert list(pd.read_csv(download)["customer_id"]) == list(rows["customer_id"])

    code, out, err = _run(
        capsys, "predict", binary_model.pk, "--json", json.dumps(ROW), *connection
    )
    predicted = json.loads(out)[0]
    prediction_id = predicted["id"]
    code, out, err = _run(capsys, "feedback", prediction_id, "no", *connection)
    assert code == 0, err
    assert json.loads(out)["feedback"] == {"churned": "no"}
    code, out, err = _run(capsys, "predictions", "--model", binary_model.pk, *connection)
    assert code == 0, err
    assert out.splitlines()[0].split() == [
        "ID",
        "MODEL",
        "VERSION",
        "CREATED",
        "PREDICTED",
        "FEEDBACK",
    ]
    (line,) = [line for line in out.splitlines() if line.startswith(prediction_id)]
    values = json.dumps({"churned": predicted["churned"]})
    assert line.endswith(f'{values}  {{"churned": "no"}}'), line


def test_cli_errors_say_what_the_api_said(
    capsys: pytest.CaptureFixture[str],
    connection: list[str],
    live_server: Any,
    binary_model: Machine,
    make_model: Callable[..., Machine],
    trained_binary: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, err = _run(capsys, "models", "--url", live_server.url, "--token", "mlm_wrong")
    assert (code, out) == (1, "")
    assert err == (
        "mlmanager: error: Invalid, revoked or expired token. (HTTP 401, authentication_failed)\n"
    )

    theirs = make_model(member("owner"), trained_binary, name="Theirs")
    code, out, err = _run(capsys, "predict", theirs.pk, "--json", json.dumps(ROW), *connection)
    assert (code, err) == (1, "mlmanager: error: Not found. (HTTP 404, not_found)\n")

    bad = json.dumps({**ROW, "tenure_months": [1]})
    code, out, err = _run(capsys, "predict", binary_model.pk, "--json", bad, *connection)
    assert code == 1
    assert err == (
        "mlmanager: error: Row 0, field “tenure_months”: expected a number, got [1]. "
        "(HTTP 400, wrong_type)\n"
    )

    code, out, err = _run(capsys, "predict", binary_model.pk, "--json", "{plan: pro}", *connection)
    assert code == 2
    assert err.startswith("mlmanager: error: --json is not valid JSON: ")

    monkeypatch.delenv("MLMANAGER_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli.main(["models", "--url", live_server.url])
    assert exited.value.code == 2
    assert "no API token: set MLMANAGER_TOKEN or pass --token" in capsys.readouterr().err


def test_cli_output_into_a_closed_pipe_stops_quietly() -> None:
    """`mlmanager predictions | head -1`: once head has its line and leaves, the command stops
    without an error message, as Unix tools do."""
    import subprocess
    import sys
    import textwrap

    program = textwrap.dedent(
        """
        import sys
        from mlmanager import cli

        class Offline:
            def __init__(self, *args): pass
            def __enter__(self): return self
            def __exit__(self, *args): return False

        def endless(client, options):
            while True:
                print("a logged prediction")

        cli.Client = Offline
        cli._predictions = endless
        sys.exit(cli.main(["predictions", "--url", "http://127.0.0.1:9", "--token", "t"]))
        """
    )
    shell = f"{sys.executable} -c '{program}' | head -1"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, timeout=60
    )
    assert done.stdout == "a logged prediction\n"
    assert done.stderr == ""
    assert done.returncode == 141


def test_feedback_on_an_entry_not_logged_yet_is_sent_again_after_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server refuses at once (409) rather than wait for another process's log buffer;
    the client waits Retry-After and sends the same feedback again."""
    answers = [
        httpx.Response(
            409,
            json={
                "error": {
                    "code": "prediction_not_logged_yet",
                    "message": "Not logged yet.",
                    "details": {"retry_after_s": 2},
                }
            },
        ),
        httpx.Response(200, json={"id": "p1", "feedback": {"churned": "yes"}}),
    ]
    bodies: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return answers.pop(0)

    sleeps: list[float] = []
    monkeypatch.setattr("mlmanager.client.time.sleep", sleeps.append)
    client = Client("http://testserver", "mlm_x")
    client._http = httpx.Client(
        base_url="http://testserver/api/v1/", transport=httpx.MockTransport(answer)
    )
    assert client.feedback("p1", "yes") == {"id": "p1", "feedback": {"churned": "yes"}}
    assert bodies == [{"actual": "yes"}, {"actual": "yes"}]
    assert sleeps == [2.0]
