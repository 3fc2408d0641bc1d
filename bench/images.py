"""Benchmark: image training and prediction of `mlmanager.engine.vision` (issue 16).

On data that ships inside a package or is generated (no download): scikit-learn's 8×8 digits
(1,797 images, 10 classes) and generated 32×32 shapes with masks (circles and squares,
`mlmanager.engine.vision.testing`). Goals:

- training throughput: images/s of `train_vision`'s training loop (augmentation, per-epoch
  validation, clock and cancel checks included) ≥ 0.8 × a plain PyTorch loop over the same
  network, batch size, images and thread count (no augmentation, no validation), same process,
  same number of epochs; also shown end to end (reading, holdout, saving included);
- digits accuracy at level 1 (60 s budget) ≥ 0.97 on the holdout;
- generated-shapes Dice at level 1 (60 s) ≥ 0.90 on the holdout;
- every run within the hard limit 1.05 × budget + 2 s;
- single-image predict p50 ≤ 20 ms per member, measured IN-PROCESS (`VisionModel.predict`, one
  image of the digits);
- and shown (the issue sets no goal): one image's predict p50 OVER HTTP, through the platform as a
  user meets it — `mlmanager web` and `mlmanager worker` on a fresh SQLite data folder, the demo
  digits zip uploaded to `POST /api/v1/datasets/`, a level-1 model created and trained through
  the API (epochs capped by MLMANAGER_VISION_MAX_EPOCHS: its accuracy is not what is measured
  here), then one PNG per `POST /api/v1/models/{id}/predict/` (multipart `image`), timed from
  the request's start to the whole answer, including the log row it writes.

Torch, MONAI and the engine are imported before the first run (`warm_up`, as a worker does at
start), so the budgets measure training, not imports.

Run from the repository root:

    make bench-images                                   # about 3 minutes on 2 cores
    .venv/bin/python bench/images.py --quick            # about 1 minute, throughput judged only

Exit codes: 0 the goals are met, 1 a goal is missed, 2 the benchmark could not run.
The figures move with the machine's load (the engine takes fewer threads on a busy machine);
the machine, its load and the threads used are printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from machine import cpu_model, total_memory_gb

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

KEY = b"bench-images-key"
LEVEL = 1
HARD_LIMIT_SHARE, HARD_LIMIT_EXTRA_S = 1.05, 2.0
GOAL_THROUGHPUT_RATIO = 0.8
GOAL_DIGITS_ACCURACY = 0.97
GOAL_SHAPES_DICE = 0.90
GOAL_PREDICT_MS_PER_MEMBER = 20.0
SHAPES_COUNT = 300
HTTP_SAMPLES = 200
HTTP_WARM_UP = 5
HTTP_MAX_EPOCHS = 3
HTTP_WAIT_S = 600


@dataclass
class Goal:
    name: str
    value: float | None
    goal: str
    met: bool | None  # None: reported, not judged (--quick)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs; judge throughput only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=None, help="seconds per run (level 1: 60)")
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs of the throughput runs (3; quick 1)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--port", type=int, default=8767, help="the web server's, for HTTP")
    arguments = parser.parse_args()
    try:
        goals, facts = run(arguments)
    except Exception:
        traceback.print_exc()
        print("\nThe benchmark could not run.", file=sys.stderr)
        return 2
    print_report(goals, facts)
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(
            json.dumps({"goals": [goal.__dict__ for goal in goals], "facts": facts}, indent=1)
        )
    return 0 if all(goal.met is not False for goal in goals) else 1


def run(arguments: argparse.Namespace) -> tuple[list[Goal], dict[str, Any]]:
    from mlmanager.engine.vision import LEVELS, VisionSpec, load_vision_model, train_vision, warm_up
    from mlmanager.engine.vision.testing import write_digits_dataset, write_shapes_dataset

    quick = arguments.quick
    budget = arguments.budget or (20.0 if quick else float(LEVELS[LEVEL].budget_s))
    epochs = arguments.epochs or (1 if quick else 3)
    started = time.monotonic()
    warm_up()
    facts: dict[str, Any] = {
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, {total_memory_gb()}",
        "python": platform.python_version(),
        "load_at_start": round(os.getloadavg()[0], 2),
        "warm_up_s": round(time.monotonic() - started, 1),
        "budget_s": budget,
        "quick": quick,
    }
    goals: list[Goal] = []
    hard_limit = budget * HARD_LIMIT_SHARE + HARD_LIMIT_EXTRA_S
    with tempfile.TemporaryDirectory(prefix="bench-images-") as folder:
        work = Path(folder)
        digits = write_digits_dataset(work / "digits.parquet")
        shapes = write_shapes_dataset(
            work / "shapes.parquet", count=SHAPES_COUNT // (3 if quick else 1), seed=arguments.seed
        )

        # 1. Throughput against a plain loop, alternating, same threads in each pair.
        ratios, loop_ratios = [], []
        for round_number in range(1 if quick else 2):
            outcome = train_vision(
                digits,
                VisionSpec("classification", LEVEL, 3600.0, seed=arguments.seed, max_epochs=epochs),
                workdir=work / f"throughput-{round_number}",
                artifact_key=KEY,
            )
            record = outcome.reproducibility
            [member] = record["members"]
            loop_rate = member["train_images"] / member["train_s"]
            end_to_end_rate = member["train_images"] / outcome.elapsed_s
            plain_rate = plain_loop_rate(
                digits, seed=arguments.seed, epochs=epochs, threads=record["threads"]
            )
            loop_ratios.append(loop_rate / plain_rate)
            ratios.append(end_to_end_rate / plain_rate)
            facts[f"throughput_round_{round_number}"] = {
                "threads": record["threads"],
                "train_vision_loop_images_per_s": round(loop_rate, 1),
                "train_vision_end_to_end_images_per_s": round(end_to_end_rate, 1),
                "plain_loop_images_per_s": round(plain_rate, 1),
                "load": round(os.getloadavg()[0], 2),
            }
        loop_ratio = statistics.median(loop_ratios)
        goals.append(
            Goal(
                "training images/s, train_vision ÷ plain loop",
                round(loop_ratio, 3),
                f"≥ {GOAL_THROUGHPUT_RATIO}",
                loop_ratio >= GOAL_THROUGHPUT_RATIO,
            )
        )
        goals.append(
            Goal(
                "  the same, train_vision end to end (read, holdout, save)",
                round(statistics.median(ratios), 3),
                "(shown)",
                None,
            )
        )

        # 2. Digits at level 1 within the level's budget.
        outcome = train_vision(
            digits,
            VisionSpec("classification", LEVEL, budget, seed=arguments.seed),
            workdir=work / "digits",
            artifact_key=KEY,
        )
        accuracy = outcome.metrics["accuracy"]
        facts["digits"] = run_facts(outcome)
        goals.append(
            Goal(
                f"digits accuracy, level {LEVEL} ({budget:g} s)",
                accuracy,
                f"≥ {GOAL_DIGITS_ACCURACY}",
                None if quick else accuracy >= GOAL_DIGITS_ACCURACY,
            )
        )
        goals.append(wall_goal("digits", outcome.elapsed_s, hard_limit))
        model = load_vision_model(outcome.artifact_dir, key=KEY, signatures=outcome.signatures)
        p50 = predict_p50_ms(model, digits)
        members = len(model.members)
        goals.append(
            Goal(
                f"predict p50, one digit, IN-PROCESS ({members} member), ms",
                round(p50, 2),
                f"≤ {GOAL_PREDICT_MS_PER_MEMBER:g} per member",
                p50 <= GOAL_PREDICT_MS_PER_MEMBER * members,
            )
        )

        # 3. Shapes at level 1.
        outcome = train_vision(
            shapes,
            VisionSpec("segmentation", LEVEL, budget, seed=arguments.seed),
            workdir=work / "shapes",
            artifact_key=KEY,
        )
        dice = outcome.metrics["dice"]
        facts["shapes"] = {**run_facts(outcome), "images": SHAPES_COUNT // (3 if quick else 1)}
        goals.append(
            Goal(
                f"shapes Dice, level {LEVEL} ({budget:g} s)",
                dice,
                f"≥ {GOAL_SHAPES_DICE}",
                None if quick else dice >= GOAL_SHAPES_DICE,
            )
        )
        goals.append(wall_goal("shapes", outcome.elapsed_s, hard_limit))
    http = predict_over_http(arguments.port, samples=40 if quick else HTTP_SAMPLES)
    facts["http"] = http
    goals.append(
        Goal(
            f"predict p50 over HTTP, one digit ({http['members']} member), ms",
            http["p50_ms"],
            "(shown)",
            None,
        )
    )
    facts["load_at_end"] = round(os.getloadavg()[0], 2)
    facts["total_s"] = round(time.monotonic() - started, 1)
    return goals, facts


def plain_loop_rate(digits: Path, *, seed: int, epochs: int, threads: int) -> float:
    """Images/s of a textbook PyTorch loop: the level's network, batch size and training images
    (decoded and resized by the engine's reader, normalised once), AdamW, cross-entropy;
    no augmentation, no validation, no checks."""
    import torch
    from torch.nn import functional

    from mlmanager.engine.vision import LEVELS
    from mlmanager.engine.vision.data import read_image_data, split
    from mlmanager.engine.vision.networks import build_network, network_parameters
    from mlmanager.engine.vision.training import BATCH_SIZE, LEARNING_RATE

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        level = LEVELS[LEVEL]
        data = read_image_data(digits, task="classification", image_size=level.image_size)
        train = split(data, seed=seed).train
        images = torch.from_numpy(data.images[train]).float() / 255.0
        images = (images - images.mean()) / images.std()
        targets = torch.from_numpy(data.targets[train]).long()
        torch.manual_seed(seed)
        member = level.members("classification")[0]
        network = build_network(
            network_parameters(member, channels=data.channels, classes=len(data.classes))
        )
        optimizer = torch.optim.AdamW(network.parameters(), lr=LEARNING_RATE["classification"])
        batch_size = BATCH_SIZE["classification"]
        batches = len(train) // batch_size
        started = time.monotonic()
        for _epoch in range(epochs):
            network.train()
            order = torch.randperm(len(train))
            for batch in range(batches):
                indices = order[batch * batch_size : (batch + 1) * batch_size]
                loss = functional.cross_entropy(network(images[indices]), targets[indices])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        return epochs * batches * batch_size / (time.monotonic() - started)
    finally:
        torch.set_num_threads(previous)


def predict_p50_ms(model: Any, digits: Path, repeats: int = 200) -> float:
    import io

    import pyarrow.parquet as pq
    from PIL import Image

    image = Image.open(io.BytesIO(pq.read_table(digits, columns=["image"]).column(0)[0].as_py()))
    for _ in range(10):
        model.predict([image])
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict([image])
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def predict_over_http(port: int, *, samples: int) -> dict[str, Any]:
    """One digit per predict request to a real web server (see the module docstring)."""
    import httpx
    import upload_profile as kit

    from mlmanager.datasets.demo.digits import write_digits_zip

    with tempfile.TemporaryDirectory(prefix="bench-images-http-") as folder:
        work = Path(folder)
        os.environ["MLMANAGER_VISION_MAX_EPOCHS"] = str(HTTP_MAX_EPOCHS)  # the servers inherit it
        if not kit.port_is_free(port):
            raise kit.BenchError(f"port {port} is in use; pass --port")
        with kit.servers(work, port, debug=False) as (web, _worker):
            base = f"http://127.0.0.1:{port}"
            kit.wait_for_web(f"{base}/api/v1/", web, kit.SERVER_START_TIMEOUT_S)
            api = kit.Api(base)
            account = {"email": "bench@example.com", "password": "bench-images-Pa55", "name": "B"}
            kit.sign_up(api, account, work / "data")
            headers = {"Authorization": f"Bearer {api.token}"}
            client = httpx.Client(base_url=base, headers=headers, timeout=60, trust_env=False)
            with client:
                archive = write_digits_zip(work / "digits.zip")
                with open(archive, "rb") as handle:
                    created = client.post("/api/v1/datasets/", files={"file": handle})
                if created.status_code != 202:
                    raise kit.BenchError(f"upload: HTTP {created.status_code}: {created.text}")
                dataset = _wait(client, f"/api/v1/datasets/{created.json()['id']}/", "status")
                model = client.post(
                    "/api/v1/models/",
                    json={"dataset": dataset["id"], "outputs": ["label"], "level": LEVEL},
                ).json()
                client.post(f"/api/v1/models/{model['id']}/start_training/").raise_for_status()
                _wait(client, f"/api/v1/models/{model['id']}/", "status", done=("ready", "failed"))
                with zipfile.ZipFile(archive) as opened:
                    image = opened.read(next(n for n in opened.namelist() if n.endswith(".png")))
                url = f"/api/v1/models/{model['id']}/predict/"
                timings, members = [], 0
                for index in range(HTTP_WARM_UP + samples):
                    started = time.perf_counter()
                    answer = client.post(url, files={"image": ("digit.png", image, "image/png")})
                    elapsed = (time.perf_counter() - started) * 1000
                    if answer.status_code != 200:
                        raise kit.BenchError(f"predict: HTTP {answer.status_code}: {answer.text}")
                    if index >= HTTP_WARM_UP:
                        timings.append(elapsed)
                    members = len(answer.json()["predictions"][0]["votes"])
    timings.sort()
    return {
        "samples": len(timings),
        "members": members,
        "p50_ms": round(statistics.median(timings), 2),
        "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 2),
        "epochs_capped_at": HTTP_MAX_EPOCHS,
    }


def _wait(
    client: Any, path: str, field: str, *, done: tuple[str, ...] = ("ready", "failed")
) -> dict[str, Any]:
    import upload_profile as kit

    deadline = time.monotonic() + HTTP_WAIT_S
    while time.monotonic() < deadline:
        body = client.get(path).json()
        if body.get(field) in done:
            if body[field] == "failed":
                raise kit.BenchError(f"{path} failed: {body}")
            return body
        time.sleep(0.5)
    raise kit.BenchError(f"{path} not {done[0]} after {HTTP_WAIT_S} s")


def run_facts(outcome: Any) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "elapsed_s": outcome.elapsed_s,
        "members": outcome.members,
        "threads": outcome.reproducibility["threads"],
        "split": outcome.reproducibility["split"],
        "metric": outcome.metrics.get(outcome.metric),
    }


def wall_goal(name: str, elapsed: float, hard_limit: float) -> Goal:
    return Goal(
        f"{name} run wall time, s", round(elapsed, 1), f"≤ {hard_limit:g}", elapsed <= hard_limit
    )


def print_report(goals: list[Goal], facts: dict[str, Any]) -> None:
    print("\nbench/images.py —", facts["machine"], "— Python", facts["python"])
    print(
        f"load {facts['load_at_start']} at start, {facts.get('load_at_end')} at end; "
        f"warm-up (imports) {facts['warm_up_s']} s; total {facts.get('total_s')} s"
    )
    for key, value in facts.items():
        if key.startswith("throughput_round_") or key in ("digits", "shapes"):
            print(f"  {key}: {json.dumps(value)}")
    print()
    width = max(len(goal.name) for goal in goals)
    for goal in goals:
        verdict = {True: "met", False: "MISSED", None: ""}[goal.met]
        print(f"{goal.name:<{width}}  {goal.value!s:>8}  {goal.goal:<20} {verdict}")


if __name__ == "__main__":
    sys.exit(main())
