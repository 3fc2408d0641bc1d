"""The `mlmanager` console command.

`mlmanager run` is the embedded default in one command: migrate, create the admin once, load the
demo dataset, then run the web server and a background worker together until Ctrl-C.
`mlmanager web` and `mlmanager worker` start one of them (for separate machines or processes);
anything else is passed to Django's manage.py (`mlmanager migrate`, `mlmanager createsuperuser`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from config.env import Environment, read_environment

STOP_GRACE_SECONDS = 10


def _manage(arguments: Sequence[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["mlmanager", *arguments])


def _web_command(env: Environment) -> list[str]:
    # gthread workers: uploads stream in a thread while other requests are served; the long
    # timeout leaves room for a 200 MB upload over a slow link.
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
        "--timeout",
        "300",
        "--access-logfile",
        "-",
    ]


def _web_environment() -> dict[str, str]:
    """Native libraries predict on one thread in web workers: several workers each spreading
    a tree walk over every core was measured 7.7 times slower than one thread each."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _worker_command() -> list[str]:
    return [sys.executable, "-m", "mlmanager.cli", "worker"]


def run() -> int:
    env = read_environment()
    _manage(["migrate", "--noinput", "--verbosity", "0"])
    _manage(["bootstrap"])
    processes = [
        subprocess.Popen(_web_command(env), env=_web_environment()),  # noqa: S603 - fixed command
        subprocess.Popen(_worker_command()),  # noqa: S603
    ]
    shown_host = "127.0.0.1" if env.host in ("0.0.0.0", "") else env.host  # noqa: S104
    print(
        f"\n  MLManager is running at http://{shown_host}:{env.port}/  (Ctrl-C stops it)"
        f"\n  Log in as {env.admin_email} with the password shown when it was created,"
        "\n  or sign up a new account.\n",
        flush=True,
    )

    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
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
            process.kill()
            process.wait()
    print("Stopped.", flush=True)
    return exit_code


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = arguments[0] if arguments else "help"
    if command == "run":
        return run()
    if command == "web":
        os.execve(sys.executable, _web_command(read_environment()), _web_environment())  # noqa: S606
    if command == "worker":
        _manage(["worker", *arguments[1:]])
        return 0
    if command in ("help", "-h", "--help"):
        print(__doc__)
        print("Commands: run, web, worker, and any manage.py command.")
        return 0
    _manage(arguments)
    return 0


if __name__ == "__main__":
    sys.exit(main())
