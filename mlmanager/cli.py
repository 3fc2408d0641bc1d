"""The `mlmanager` console command.

`mlmanager run` is the embedded default in one command: migrate, create the admin once, load the
demo dataset, then run the web server, the live-update server, a background worker and the
scheduler together until Ctrl-C. `mlmanager web`, `mlmanager live` (the WebSocket server of the
live updates), `mlmanager worker` and `mlmanager scheduler` (the job reaper) start one of them
(for separate machines or processes). `mlmanager run` also starts `mlmanager mqtt` (the sensor
bridge) when MLMANAGER_MQTT_URL is set, and `mlmanager simulate` (the demo site's readings)
unless MLMANAGER_SIMULATE=off.
The client subcommands (upload, datasets, create-model, models, train, predict, batch,
feedback, predictions) call a server's API with `mlmanager.client.Client`; `mlmanager COMMAND
--help` describes each. Anything else is passed to Django's manage.py (`mlmanager migrate`,
`mlmanager createsuperuser`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from config.env import (
    DEFAULT_CLIENT_URL,
    Environment,
    read_client_environment,
    read_environment,
)
from mlmanager.client import Client, ClientError, predictions_frame

STOP_GRACE_SECONDS = 10


def _manage(arguments: Sequence[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["mlmanager", *arguments])


def _web_command(env: Environment) -> list[str]:
    # Imported here, as in _web_environment: the client subcommands need no gunicorn.
    from mlmanager.ops.webserver import JSON_LOGGER_CLASS, control_socket_path

    # MLMANAGER_LOG_FORMAT=json: gunicorn's own lines (access log included) as JSON too.
    logger_class = ["--logger-class", JSON_LOGGER_CLASS] if env.log_format == "json" else []
    # gthread workers: uploads stream in a thread while other requests are served; the long
    # timeout leaves room for a 200 MB upload over a slow link. --reuse-port: a listening socket
    # per worker, among which the kernel spreads new connections. On one shared socket, keep-alive
    # connections opened one after another all went to the same worker (16 of 16, measured), so
    # a client pool used one core: 360 requests/s instead of 900 with two workers.
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        f"{env.host}:{env.port}",
        "--workers",
        str(env.web_concurrency),
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--reuse-port",
        "--timeout",
        "300",
        "--access-logfile",
        "-",
        "--control-socket",
        str(control_socket_path(env.data_dir, env.port)),
        *logger_class,
    ]


def _require_free_port(host: str, port: int) -> None:
    """Refuse to start a second web server on a port one already listens on: with --reuse-port
    the kernel would let both bind it and split the connections between them, silently."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as error:
            raise SystemExit(
                f"mlmanager: {host}:{port} is in use ({error.strerror}): another server listens "
                "there. Stop it, or set PORT."
            ) from None


def _web_environment() -> dict[str, str]:
    """Native libraries predict on one thread in web workers: several workers each spreading
    a tree walk over every core was measured 7.7 times slower than one thread each.

    The workers count requests into one metrics folder (prometheus_client's multiprocess mode,
    read by /metrics), emptied here because this runs as the web server starts."""
    from mlmanager.ops.webserver import (
        METRICS_DIRECTORY_VARIABLE,
        metrics_directory,
        metrics_directory_reset,
    )

    folder = metrics_directory_reset(metrics_directory(read_environment().data_dir))
    return {**os.environ, "OMP_NUM_THREADS": "1", METRICS_DIRECTORY_VARIABLE: str(folder)}


def _live_command(env: Environment) -> list[str]:
    # The sockets of the live updates (mlmanager.live), apart from gunicorn so the predict
    # API keeps its WSGI workers. One process, no --workers: one event loop holds thousands
    # of mostly idle sockets, and each further process would load Django again.
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        env.host,
        "--port",
        str(env.live_port),
        "--lifespan",
        "off",
        "--timeout-graceful-shutdown",
        "5",
    ]


def _worker_command() -> list[str]:
    return [sys.executable, "-m", "mlmanager.cli", "worker"]


def _scheduler_command() -> list[str]:
    return [sys.executable, "-m", "mlmanager.cli", "scheduler"]


def _mqtt_command() -> list[str]:
    return [sys.executable, "-m", "mlmanager.cli", "mqtt"]


def _simulate_command() -> list[str]:
    return [sys.executable, "-m", "mlmanager.cli", "simulate"]


def run() -> int:
    env = read_environment()
    _require_free_port(env.host, env.port)
    _manage(["migrate", "--noinput", "--verbosity", "0"])
    _manage(["bootstrap"])
    # Each child in a session of its own: Ctrl-C in a terminal signals the whole foreground
    # process group, and gunicorn's workers, hit by SIGINT beside their master's own stop,
    # could hang in their quit handler and keep the port. Only this process hears the
    # terminal; it stops each child, and whatever that child started, below.
    processes = [
        subprocess.Popen(_web_command(env), env=_web_environment(), start_new_session=True),  # noqa: S603 - fixed command
        subprocess.Popen(_live_command(env), start_new_session=True),  # noqa: S603
        subprocess.Popen(_worker_command(), start_new_session=True),  # noqa: S603
        subprocess.Popen(_scheduler_command(), start_new_session=True),  # noqa: S603
    ]
    # The sensor bridge when a broker is configured; the demo site's feed unless switched off
    # (over MQTT with a broker, else through this server's REST ingest).
    if env.mqtt_url:
        processes.append(subprocess.Popen(_mqtt_command(), start_new_session=True))  # noqa: S603
    if env.simulate:
        processes.append(subprocess.Popen(_simulate_command(), start_new_session=True))  # noqa: S603
    shown_host = "127.0.0.1" if env.host in ("0.0.0.0", "") else env.host  # noqa: S104
    # Without an SMTP host, e-mails (sign-up activation links too) print in this terminal.
    mailed = "e-mailed" if env.email_host else "printed here"
    signup = f",\n  or sign up a new account (its activation link is {mailed})"
    demo = (
        f"\n  The demo site's live dashboard: http://{shown_host}:{env.port}/sites/"
        if env.simulate
        else ""
    )
    print(
        f"\n  MLManager is running at http://{shown_host}:{env.port}/  (Ctrl-C stops it)"
        f"{demo}"
        f"\n  Log in as {env.admin_email} with the password shown when it was created"
        f"{signup if env.signup_open else ''}.\n",
        flush=True,
    )

    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    # SIGHUP too: the children, in sessions of their own, no longer hear a closed terminal.
    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, stop)
    exit_code = 0
    while not stopping:
        for process in processes:
            if process.poll() is not None:
                print(f"A child process stopped (exit {process.returncode}); stopping.", flush=True)
                exit_code = process.returncode or 1
                stopping = True
        time.sleep(0.3)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # The child and what it started (a gunicorn worker, a training process). Not yet
            # reaped, so its process group id is still its own.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    print("Stopped.", flush=True)
    return exit_code


# --- client subcommands ------------------------------------------------------------------------
# These call a server's API (mlmanager.client); none of them needs Django or a database. Their
# names must never be those of manage.py commands, which would become unreachable
# (mlmanager/tests/test_client.py checks).

LIST_LIMIT = 50


def client_main(arguments: Sequence[str]) -> int:
    parser = _client_parser()
    options = parser.parse_args(arguments)
    # MLMANAGER_URL and MLMANAGER_TOKEN belong to this (the calling) process, not to the
    # server; config/env.py reads them apart from the server's settings.
    environment = read_client_environment()
    url = options.url or environment.url
    token = options.token or environment.token
    if not token:
        parser.error(
            "no API token: set MLMANAGER_TOKEN or pass --token "
            f"(create one on {url}/accounts/tokens/)"
        )
    try:
        with Client(url, token) as client:
            return int(options.handler(client, options))
    except BrokenPipeError:
        # The reader went away (`mlmanager predictions | head`): stop quietly, as Unix tools do;
        # stdout goes to /dev/null so Python's flush at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for such a command
    except (ClientError, OSError) as error:  # OSError: a file that cannot be read or written
        print(f"mlmanager: error: {error}", file=sys.stderr)
        return 1
    except UsageError as error:
        print(f"mlmanager: error: {error}", file=sys.stderr)
        return 2


class UsageError(Exception):
    """A command line the parser accepted but that cannot work (say, invalid JSON rows)."""


Handler = Callable[[Client, argparse.Namespace], int]


def _client_parser() -> argparse.ArgumentParser:
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument(
        "--url", help=f"the server (default: $MLMANAGER_URL, else {DEFAULT_CLIENT_URL})"
    )
    connection.add_argument(
        "--token", help="an API token (default: $MLMANAGER_TOKEN); create one on /accounts/tokens/"
    )
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--limit", type=int, default=LIST_LIMIT, help="at most this many")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")

    parser = argparse.ArgumentParser(prog="mlmanager", description="Call an MLManager server.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Handler, text: str, parents: Sequence[argparse.ArgumentParser] = ()
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[connection, *parents], help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    upload = command("upload", _upload, "Upload a CSV, Excel or Parquet file as a dataset.")
    upload.add_argument("file", type=Path, metavar="FILE")
    upload.add_argument("--name", help="the dataset's name (default: the file's)")
    upload.add_argument(
        "--no-wait", action="store_true", help="return at once instead of when it is profiled"
    )

    datasets = command("datasets", _datasets, "List datasets, newest first.", [listing])
    datasets.add_argument("--status", choices=["processing", "ready", "failed"])

    create = command("create-model", _create_model, "Create a model of a dataset.")
    create.add_argument("--dataset", type=int, required=True, metavar="ID")
    create.add_argument(
        "--output",
        action="append",
        required=True,
        metavar="COLUMN",
        help="a column to predict (repeat for several)",
    )
    create.add_argument(
        "--input",
        action="append",
        metavar="COLUMN",
        help="an input column (repeat; default: the dataset profile's suggestions)",
    )
    create.add_argument("--name", default="", help="default: '<outputs> from <dataset>'")
    budget = create.add_mutually_exclusive_group()
    budget.add_argument("--level", type=int, help="search effort, 1 (quick) to 5 (thorough)")
    budget.add_argument("--time-budget", type=int, metavar="SECONDS")
    create.add_argument("--metric", help="the metric to optimise (default: by task)")

    models = command("models", _models, "List models, newest first.", [listing])
    models.add_argument("--dataset", type=int, metavar="ID")
    models.add_argument("--status", choices=["untrained", "training", "ready", "failed"])

    train = command("train", _train, "Train a model and wait, with a progress bar, until done.")
    train.add_argument("model", type=int, metavar="MODEL_ID")
    train.add_argument("--seed", type=int)
    train.add_argument("--no-wait", action="store_true", help="return once the run is queued")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    predict = command("predict", _predict, "Predict rows with a model's active version.")
    predict.add_argument("model", type=int, metavar="MODEL_ID")
    rows = predict.add_mutually_exclusive_group(required=True)
    rows.add_argument("--json", metavar="JSON", help='a row {"column": value}, or a list of rows')
    rows.add_argument(
        "--file",
        type=Path,
        metavar="FILE",
        help="rows in a .csv, .jsonl, .json or .parquet file; columns that are not inputs of "
        "the model are left out",
    )
    predict.add_argument("--version", type=int, help="a version number instead of the active one")
    predict.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="write .csv (each row, then its predictions), .jsonl or .json instead of printing",
    )

    batch = command("batch", _batch, "Predict a whole file (or dataset) in a background job.")
    batch.add_argument("model", type=int, metavar="MODEL_ID")
    source = batch.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", type=Path, metavar="FILE", help="a file of rows")
    source.add_argument("--dataset", type=int, metavar="ID", help="the rows of a dataset")
    batch.add_argument("--format", choices=["csv", "parquet"], default="csv")
    batch.add_argument("--version", type=int)
    batch.add_argument(
        "--pass-through",
        action="append",
        default=[],
        metavar="COLUMN",
        help="with --dataset: a column of the dataset to copy into the result (repeatable)",
    )
    batch.add_argument("--download", type=Path, metavar="PATH", help="save the result here")
    batch.add_argument("--no-wait", action="store_true", help="return once the batch is queued")

    feedback = command("feedback", _feedback, "Record the true value of a prediction.")
    feedback.add_argument("prediction", metavar="PREDICTION_ID")
    feedback.add_argument(
        "value",
        metavar="VALUE",
        help='JSON (3.5, true, {"churned": "yes"} for several outputs) or plain text (yes)',
    )

    predictions = command("predictions", _predictions, "List logged predictions.", [listing])
    predictions.add_argument("--model", type=int, metavar="MODEL_ID")
    return parser


CLIENT_COMMANDS = frozenset(
    {
        "upload",
        "datasets",
        "create-model",
        "models",
        "train",
        "predict",
        "batch",
        "feedback",
        "predictions",
    }
)


def _upload(client: Client, options: argparse.Namespace) -> int:
    _print_json(client.upload_dataset(options.file, options.name, wait=not options.no_wait))
    return 0


def _datasets(client: Client, options: argparse.Namespace) -> int:
    items = client.datasets(limit=options.limit, status=options.status)
    columns = {
        "ID": "id",
        "NAME": "name",
        "STATUS": "status",
        "ROWS": "row_count",
        "COLUMNS": "column_count",
        "CREATED": "created_at",
    }
    _print_list(items, columns, as_json=options.json)
    return 0


def _create_model(client: Client, options: argparse.Namespace) -> int:
    model = client.create_model(
        options.name,
        options.dataset,
        outputs=options.output,
        inputs=options.input,
        level=options.level,
        time_budget_s=options.time_budget,
        metric=options.metric,
    )
    _print_json(model)
    return 0


def _models(client: Client, options: argparse.Namespace) -> int:
    items = client.models(limit=options.limit, dataset=options.dataset, status=options.status)
    for item in items:
        item["output_names"] = ", ".join(
            output["name"] if isinstance(output, dict) else str(output)
            for output in item["outputs"]
        )
    columns = {
        "ID": "id",
        "NAME": "name",
        "STATUS": "status",
        "DATASET": "dataset",
        "PREDICTS": "output_names",
        "VERSION": "active_version",
    }
    _print_list(items, columns, as_json=options.json)
    return 0


def _train(client: Client, options: argparse.Namespace) -> int:
    result = client.train(
        options.model, wait=not options.no_wait, progress=not options.quiet, seed=options.seed
    )
    _print_json(result)
    return 0


def _predict(client: Client, options: argparse.Namespace) -> int:
    output: Path | None = options.output
    suffix = output.suffix.lower() if output is not None else ""
    if output is not None and suffix not in (".csv", ".jsonl", ".ndjson", ".json"):
        raise UsageError(f"--output must end in .csv, .jsonl or .json, not {output.name!r}")
    rows = _read_rows(options.json, options.file)
    # A file's other columns (an id, the true value) are left out, and kept in a CSV output;
    # hand-typed --json stays strict, where an unknown name is most likely a typo.
    predictions = client.predict(
        options.model, rows, version=options.version, ignore_unknown=options.file is not None
    )
    if output is None:
        _print_json(predictions)
        return 0
    if suffix == ".csv":
        import pandas as pd

        table = pd.concat([pd.DataFrame(rows), predictions_frame(predictions)], axis=1)
        table.to_csv(output, index=False)
    elif suffix == ".json":
        output.write_text(json.dumps(predictions, indent=2))
    else:
        output.write_text("".join(json.dumps(item) + "\n" for item in predictions))
    print(f"{len(predictions)} predictions written to {output}", file=sys.stderr)
    return 0


def _read_rows(text: str | None, file: Path | None) -> list[dict[str, Any]]:
    """The rows to predict, from --json or --file."""
    if text is not None:
        return _json_rows(text, "--json")
    assert file is not None
    suffix = file.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        lines = file.read_text().splitlines()
        return [
            row
            for number, line in enumerate(lines, start=1)
            if line.strip()
            for row in _json_rows(line, f"{file.name}, line {number}", one=True)
        ]
    if suffix == ".json":
        return _json_rows(file.read_text(), file.name)
    if suffix in (".csv", ".parquet"):
        import pandas as pd

        frame = pd.read_csv(file) if suffix == ".csv" else pd.read_parquet(file)
        return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]
    raise UsageError(f"--file must end in .csv, .jsonl, .json or .parquet, not {file.name!r}")


def _json_rows(text: str, where: str, *, one: bool = False) -> list[dict[str, Any]]:
    """Rows from JSON text: an object, or (unless `one`) a list of objects."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise UsageError(f"{where} is not valid JSON: {error}") from None
    if isinstance(value, dict):
        return [value]
    if one:
        raise UsageError(f"{where} must be an object")
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise UsageError(f'{where} must be an object {{"column": value}} or a list of objects')
    return value


def _batch(client: Client, options: argparse.Namespace) -> int:
    batch = client.batch_predict(
        options.model,
        options.file if options.file is not None else options.dataset,
        format=options.format,
        version=options.version,
        pass_through=options.pass_through,
        wait=not options.no_wait,
        download_to=options.download,
    )
    _print_json(batch)
    if options.download is not None:
        print(f"{batch['row_count']} rows predicted, saved to {options.download}", file=sys.stderr)
    return 0


def _feedback(client: Client, options: argparse.Namespace) -> int:
    try:
        actual = json.loads(options.value)
    except ValueError:  # plain text: a class label such as yes
        actual = options.value
    _print_json(client.feedback(options.prediction, actual))
    return 0


def _predictions(client: Client, options: argparse.Namespace) -> int:
    items = client.predictions(model=options.model, limit=options.limit)
    if not options.json:  # the values only: probabilities would make lines too long to read
        for item in items:
            item["values"] = {
                name: output.get("value") if isinstance(output, dict) else output
                for name, output in item["outputs"].items()
            }
    columns = {
        "ID": "id",
        "MODEL": "model",
        "VERSION": "model_version",
        "CREATED": "created_at",
        "PREDICTED": "values",
        "FEEDBACK": "feedback",
    }
    _print_list(items, columns, as_json=options.json)
    return 0


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _print_list(items: list[dict[str, Any]], columns: dict[str, str], *, as_json: bool) -> None:
    """A table of `columns` (title: key) with one line per item, or the items as JSON."""
    if as_json:
        _print_json(items)
        return
    table = [list(columns)] + [[_cell(item.get(key)) for key in columns.values()] for item in items]
    widths = [max(len(row[index]) for row in table) for index in range(len(columns))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = arguments[0] if arguments else "help"
    if command == "run":
        return run()
    if command == "web":
        env = read_environment()
        _require_free_port(env.host, env.port)
        os.execve(sys.executable, _web_command(env), _web_environment())  # noqa: S606
    if command == "live":
        os.execv(sys.executable, _live_command(read_environment()))  # noqa: S606
    if command == "worker":
        _manage(["worker", *arguments[1:]])
        return 0
    if command in CLIENT_COMMANDS:
        return client_main(arguments)
    if command in ("help", "-h", "--help"):
        print(__doc__)
        print(
            "Commands: run, web, live, worker, scheduler; "
            f"{', '.join(sorted(CLIENT_COMMANDS))}; and any manage.py command."
        )
        return 0
    _manage(arguments)
    return 0


if __name__ == "__main__":
    sys.exit(main())
