"""A small Python client for the MLManager API (v1).

    from mlmanager.client import Client

    with Client("http://127.0.0.1:8000", token) as client:
        dataset = client.upload_dataset("customers.csv")          # waits until profiled
        model = client.create_model("Churn", dataset["id"], outputs=["churned"])
        client.train(model["id"])                                  # progress bar until done
        client.predict(model["id"], [{"plan": "pro", "tenure_months": 3}])
        client.batch_predict(model["id"], "more.csv", download_to="more-predicted.csv")

Every failure is a `ClientError`: an API error carries the HTTP status and the API's error code,
message and details; a network failure, or a job that ends without a result, has `status` None.

No Django here: the client runs wherever the server can be reached (a notebook, a CI job), and
pandas is only imported when the caller passes a DataFrame (which means it is loaded already).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TypeGuard, overload

import httpx
from tqdm import tqdm

if TYPE_CHECKING:
    import pandas as pd

USER_AGENT = "mlmanager-client/1"
# The API refuses larger predict requests (predictions.schema.MAX_ROWS).
PREDICT_MAX_ROWS = 10_000
# Job states (jobs.models.Job.Status) after which nothing changes any more.
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
DOWNLOAD_CHUNK_BYTES = 1 << 20
# Feedback on an answer whose log entry is still buffered (409 prediction_not_logged_yet) is
# sent again after Retry-After; the buffer is written every MLMANAGER_PREDICTION_LOG_FLUSH_S.
FEEDBACK_ATTEMPTS = 4


class ClientError(Exception):
    """An API error (`status` is the HTTP status; `code`, `message` and `details` are the
    API's), a network failure (`status` None, code `network_error` or `timeout`), or a job that
    ended without a result (`status` None, code `dataset_failed`, `training_failed`, ...)."""

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        where = f"HTTP {self.status}, " if self.status is not None else ""
        return f"{self.message} ({where}{self.code})"


class Client:
    """The API of one MLManager server, called with one API token over one keep-alive
    connection pool.

    `timeout` (seconds) bounds each network step (connect, send, wait for the answer), not a
    training: the waiting methods poll every `poll_interval` seconds until the work ends.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 60.0,
        poll_interval: float = 1.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.poll_interval = poll_interval
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v1/",
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            },
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- datasets ----------------------------------------------------------------------------

    def upload_dataset(
        self, path: str | Path, name: str | None = None, *, wait: bool = True
    ) -> dict[str, Any]:
        """Upload a CSV, Excel or Parquet file (streamed). With `wait`, return the dataset
        once profiled (status `ready`), or raise `ClientError` `dataset_failed` with the
        reason; without, return it at once (status `processing`)."""
        path = Path(path)
        with path.open("rb") as stream:
            dataset = self._request(
                "POST",
                "datasets/",
                files={"file": (path.name, stream)},
                data={"name": name} if name else None,
            )
        return self.wait_for_dataset(dataset["id"]) if wait else dataset

    def dataset(self, dataset_id: int) -> dict[str, Any]:
        return self._request("GET", f"datasets/{dataset_id}/")

    def datasets(self, *, limit: int = 100, **filters: Any) -> list[dict[str, Any]]:
        """The caller's datasets, newest first (filters: `team`, `status`)."""
        return self._list("datasets/", limit=limit, params=filters)

    def wait_for_dataset(self, dataset_id: int) -> dict[str, Any]:
        while True:
            dataset = self.dataset(dataset_id)
            if dataset["status"] == "ready":
                return dataset
            if dataset["status"] == "failed":
                raise ClientError(
                    None,
                    "dataset_failed",
                    dataset["error"] or "The file could not be processed.",
                    {"dataset": dataset_id},
                )
            time.sleep(self.poll_interval)

    # --- models and training -----------------------------------------------------------------

    def create_model(
        self,
        name: str,
        dataset: int,
        outputs: Sequence[str | Mapping[str, Any]],
        inputs: Sequence[str] | None = None,
        *,
        level: int | None = None,
        time_budget_s: int | None = None,
        metric: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """A model of a ready dataset predicting `outputs` (column names, or objects {name,
        task, metric}). Without `inputs`, the dataset profile's suggested inputs are used."""
        body: dict[str, Any] = {"name": name, "dataset": dataset, "outputs": list(outputs)}
        optional = {
            "inputs": None if inputs is None else list(inputs),
            "level": level,
            "time_budget_s": time_budget_s,
            "metric": metric,
            "description": description,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return self._request("POST", "models/", json=body)

    def model(self, model_id: int) -> dict[str, Any]:
        return self._request("GET", f"models/{model_id}/")

    def models(self, *, limit: int = 100, **filters: Any) -> list[dict[str, Any]]:
        """The caller's models, newest first (filters: `team`, `dataset`, `status`)."""
        return self._list("models/", limit=limit, params=filters)

    def training_status(self, model_id: int) -> dict[str, Any]:
        return self._request("GET", f"models/{model_id}/training_status/")

    def train(
        self,
        model_id: int,
        *,
        wait: bool = True,
        progress: bool = True,
        seed: int | None = None,
        progress_file: IO[str] | None = None,
    ) -> dict[str, Any]:
        """Start a training run.

        Without `wait`, return the queued run. With it, poll until the run ends, showing a
        progress bar (progress, best score so far and the run's message) on stderr or
        `progress_file` unless `progress` is False, and return the model's final training
        status (`status`, `run`, `active_version` with its metrics). A run that fails or is
        cancelled raises `ClientError` (`training_failed`, `training_cancelled`) with the run's
        error.
        """
        run = self._request(
            "POST",
            f"models/{model_id}/start_training/",
            json={} if seed is None else {"seed": seed},
        )
        if not wait:
            return run
        with tqdm(
            total=100,
            desc="Queued",
            disable=not progress,
            file=progress_file or sys.stderr,
            # The run's message goes last: it changes length, the bar should not move.
            bar_format="Training {percentage:3.0f}%|{bar:20}| {elapsed}{postfix}  {desc}",
        ) as bar:
            while True:
                status = self.training_status(model_id)
                current = status["run"] or {}
                if current.get("id") != run["id"]:
                    # Another run started, so ours has ended; its own endpoint says how.
                    current = self._request("GET", f"runs/{run['id']}/")
                _show_progress(bar, current)
                if current["status"] in FINISHED:
                    break
                time.sleep(self.poll_interval)
        if current["status"] != "succeeded":
            raise ClientError(
                None,
                f"training_{current['status']}",
                current["error"] or f"The training run was {current['status']}.",
                {"run": current["id"]},
            )
        return status

    # --- predictions -------------------------------------------------------------------------

    @overload
    def predict(
        self,
        model_id: int,
        rows: pd.DataFrame,
        *,
        version: int | None = None,
        ignore_unknown: bool = False,
    ) -> pd.DataFrame: ...

    @overload
    def predict(
        self,
        model_id: int,
        rows: Sequence[Mapping[str, Any]],
        *,
        version: int | None = None,
        ignore_unknown: bool = False,
    ) -> list[dict[str, Any]]: ...

    def predict(
        self,
        model_id: int,
        rows: Sequence[Mapping[str, Any]] | pd.DataFrame,
        *,
        version: int | None = None,
        ignore_unknown: bool = False,
    ) -> list[dict[str, Any]] | pd.DataFrame:
        """Predict rows with the model's active version, or version number `version`.

        `rows` is a list of {input: value} or a pandas DataFrame; missing values (None, NaN,
        NaT) are sent as null and dates as ISO 8601 text. Each answer has the prediction's `id`
        (for feedback), the value of each output and, for classification, `probabilities`.

        The API refuses fields that are not inputs of the model (a misspelt name would
        otherwise be a silently missing value); with `ignore_unknown`, such fields (an id
        column, the true value) are left out of the request instead.

        A list gives a list of dicts, as the API answers. A DataFrame gives a DataFrame with
        the same index and the columns of a batch result (see `predictions_frame`), ready for
        `frame.join(...)`. Requests carry at most 10 000 rows each, all answered by the version
        that answered the first.
        """
        frame: pd.DataFrame | None = None
        given: Sequence[Mapping[Any, Any]]
        if _is_data_frame(rows):
            frame, given = rows, rows.to_dict(orient="records")
        else:
            given = rows  # type: ignore[assignment]  # not a DataFrame, so the sequence
        records = [{str(key): _json_value(value) for key, value in row.items()} for row in given]
        predictions: list[dict[str, Any]] = []
        inputs: set[str] | None = None  # once known, with ignore_unknown: what is sent
        # An empty list is still sent once, so the API's own message explains the refusal.
        for start in range(0, max(len(records), 1), PREDICT_MAX_ROWS):
            chunk = records[start : start + PREDICT_MAX_ROWS]
            while True:
                if inputs is not None:
                    chunk = [{k: v for k, v in row.items() if k in inputs} for row in chunk]
                try:
                    answer = self._request(
                        "POST",
                        f"models/{model_id}/predict/",
                        json={"rows": chunk},
                        params=None if version is None else {"version": version},
                    )
                    break
                except ClientError as error:
                    if not ignore_unknown or error.code != "unknown_fields" or inputs is not None:
                        raise
                    inputs = set(error.details["inputs"])  # the version's inputs
            version = answer["model_version"]
            predictions.extend(answer["predictions"])
        if frame is None:
            return predictions
        return predictions_frame(predictions, frame.index)

    def feedback(self, prediction_id: str, actual: Any) -> dict[str, Any]:
        """Record the true value of a prediction ({output: value} for a model with several
        outputs); a later call corrects an earlier one. Returns the logged prediction.

        Right after an answer, its log entry may still be in another web process's buffer:
        the server then answers 409 `prediction_not_logged_yet` with `Retry-After` rather than
        hold a thread, and this waits that long and asks again (a few times at most)."""
        path = f"predictions/{prediction_id}/feedback/"
        body = {"actual": _json_value(actual)}
        for _attempt in range(FEEDBACK_ATTEMPTS - 1):
            try:
                return self._request("POST", path, json=body)
            except ClientError as error:
                if error.code != "prediction_not_logged_yet":
                    raise
                time.sleep(float(error.details.get("retry_after_s") or 1))
        return self._request("POST", path, json=body)

    def predictions(
        self,
        model: int | None = None,
        *,
        version: int | None = None,
        source: str | None = None,
        has_feedback: bool | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The prediction log, newest first: inputs, outputs, latency and feedback."""
        params: dict[str, Any] = {"model": model, "version": version, "source": source}
        if has_feedback is not None:
            params["has_feedback"] = "true" if has_feedback else "false"
        return self._list("predictions/", limit=limit, params=params)

    # --- batches ------------------------------------------------------------------------------

    def batch_predict(
        self,
        model_id: int,
        source: str | Path | int,
        *,
        format: str = "csv",
        version: int | None = None,
        pass_through: Sequence[str] = (),
        wait: bool = True,
        download_to: str | Path | None = None,
    ) -> dict[str, Any]:
        """Predict every row of a file (a path, uploaded) or of a dataset (its id) in a job.

        Without `wait`, return the queued batch. With it, return the batch once it succeeded,
        after streaming its result to `download_to` when given (as `format` csv or parquet); a
        batch that fails raises `ClientError` `batch_failed` with the reason. The result of a
        file holds the file's columns, then the predictions; the result of a dataset holds the
        `pass_through` columns named (an id to join on, say), the model's inputs, then the
        predictions.
        """
        if download_to is not None and not wait:
            raise ValueError("download_to needs wait=True: the result does not exist yet")
        path = f"models/{model_id}/batch_predictions/"
        fields: dict[str, Any] = {"format": format}
        if version is not None:
            fields["version"] = str(version)
        if isinstance(source, int):
            body = {**fields, "dataset": source}
            if pass_through:
                body["pass_through"] = list(pass_through)
            batch = self._request("POST", path, json=body)
        else:
            file = Path(source)
            with file.open("rb") as stream:
                batch = self._request(
                    "POST", path, files={"file": (file.name, stream)}, data=fields
                )
        if not wait:
            return batch
        batch = self.wait_for_batch(batch["id"])
        if download_to is not None:
            self.download_batch(batch, download_to)
        return batch

    def batch(self, batch_id: int) -> dict[str, Any]:
        return self._request("GET", f"batch_predictions/{batch_id}/")

    def wait_for_batch(self, batch_id: int) -> dict[str, Any]:
        while True:
            batch = self.batch(batch_id)
            if batch["status"] == "succeeded":
                return batch
            if batch["status"] in FINISHED:
                raise ClientError(
                    None,
                    f"batch_{batch['status']}",
                    batch["error"] or f"The batch was {batch['status']}.",
                    {"batch": batch_id},
                )
            time.sleep(self.poll_interval)

    def download_batch(self, batch: Mapping[str, Any] | int, path: str | Path) -> Path:
        """Stream a succeeded batch's result to `path`. The file appears only when complete
        (written as `<path>.part`, then renamed)."""
        if isinstance(batch, int):
            batch = self.batch(batch)
        if not batch["download_url"]:
            raise ClientError(
                None, "not_ready", f"Batch {batch['id']} has no result ({batch['status']})."
            )
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        try:
            url = self._on_this_server(batch["download_url"])
            with self._stream("GET", url) as response, partial.open("wb") as output:
                for chunk in response.iter_bytes(DOWNLOAD_CHUNK_BYTES):
                    output.write(chunk)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    # --- transport ----------------------------------------------------------------------------

    def _on_this_server(self, url: str) -> httpx.URL:
        """The path of a URL the API returned, on the server this client was given: the API
        builds absolute URLs from the Host it was asked for, which behind a proxy may be an
        internal name (and the token should go nowhere else anyway)."""
        return httpx.URL(self.url).join(httpx.URL(url).raw_path.decode("ascii"))

    def _list(self, path: str, *, limit: int, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Up to `limit` items of a paginated list, following `next`."""
        query = {key: value for key, value in params.items() if value is not None}
        answer = self._request("GET", path, params={**query, "limit": min(limit, 500)})
        items: list[dict[str, Any]] = answer["results"]
        while len(items) < limit and answer["next"]:
            answer = self._request("GET", self._on_this_server(answer["next"]))
            items.extend(answer["results"])
        return items[:limit]

    def _request(self, method: str, url: str | httpx.URL, **options: Any) -> Any:
        """The decoded JSON answer (None for an empty one), or `ClientError`."""
        with self._network_errors():
            response = self._http.request(method, url, **options)
        raise_for_error(response)
        return response.json() if response.content else None

    @contextlib.contextmanager
    def _stream(self, method: str, url: str | httpx.URL) -> Iterator[httpx.Response]:
        """A response whose body the caller reads in chunks; errors as in `_request`,
        including a connection lost halfway through."""
        with self._network_errors(), self._http.stream(method, url) as response:
            if response.is_error:
                response.read()
                raise_for_error(response)
            yield response

    @contextlib.contextmanager
    def _network_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as error:
            raise ClientError(
                None,
                "timeout",
                f"{self.url} did not answer in time ({error or type(error).__name__}).",
            ) from error
        except httpx.TransportError as error:
            raise ClientError(
                None, "network_error", f"Could not reach {self.url}: {error}."
            ) from error


def raise_for_error(response: httpx.Response) -> None:
    """`ClientError` from the API's error shape {"error": {code, message, details}}, or from
    the status alone when the answer is not the API's (a proxy's page, a server crash)."""
    if not response.is_error:
        return
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details = error.get("details") or {}
    except (ValueError, KeyError, TypeError):
        snippet = " ".join(response.text.split())[:200]
        code = "http_error"
        message = f"HTTP {response.status_code} {response.reason_phrase}"
        message += f": {snippet}" if snippet else ""
        details = {}
    raise ClientError(response.status_code, code, message, details)


# --- values -------------------------------------------------------------------------------------


def _is_data_frame(value: Any) -> TypeGuard[pd.DataFrame]:
    pandas = sys.modules.get("pandas")  # a caller with a DataFrame has imported pandas
    return pandas is not None and isinstance(value, pandas.DataFrame)


def _json_value(value: Any) -> Any:
    """`value` as JSON can carry it: NaN, NaT and pandas' NA become null (the API refuses NaN),
    numpy scalars Python ones, dates and timestamps ISO 8601 text."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):  # numpy's float64 too
        return value if math.isfinite(value) else None
    if isinstance(value, dt.date):  # datetime and pandas' Timestamp too; NaT differs from itself
        return value.isoformat() if value == value else None
    if isinstance(value, Mapping):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if type(value).__name__ == "NAType":
        return None
    if callable(getattr(value, "item", None)):  # a numpy scalar
        return _json_value(value.item())
    return value


def _show_progress(bar: tqdm, run: Mapping[str, Any]) -> None:
    bar.n = int(run.get("progress") or 0)
    bar.set_description_str(str(run.get("message") or run["status"]), refresh=False)
    if run.get("best_score") is not None:
        bar.set_postfix({"best score": f"{run['best_score']:.4g}"}, refresh=False)
    bar.refresh()


def predictions_frame(predictions: Sequence[Mapping[str, Any]], index: Any = None) -> pd.DataFrame:
    """Predictions as the API answers them, as a table named like a batch result's columns:
    `prediction_id`, `predicted_<output>` per output and `probability_<output>_<label>` per
    class of each classification output."""
    import pandas as pd

    rows = []
    for prediction in predictions:
        outputs = [key for key in prediction if key not in ("id", "probabilities")]
        row = {"prediction_id": prediction["id"]}
        row.update({f"predicted_{output}": prediction[output] for output in outputs})
        probabilities = prediction.get("probabilities") or {}
        # One output: {label: p}; several: {output: {label: p}} (classification outputs only).
        by_output = {outputs[0]: probabilities} if len(outputs) == 1 else probabilities
        for output, by_label in by_output.items():
            row.update({f"probability_{output}_{label}": p for label, p in by_label.items()})
        rows.append(row)
    return pd.DataFrame(rows, index=index)
