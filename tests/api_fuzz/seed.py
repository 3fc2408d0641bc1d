"""Real objects for the fuzzer to work on, made through the API itself: a dataset, a trained
model with a version, a prediction and a finished batch prediction, all in the caller's team.

Kept apart from the conftest so the same seeding can run against any server (a test's
`live_server` or a development server) given its URL, a token and a way to run queued jobs.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SeededIds:
    """Ids of real objects, by the path parameter names of the API."""

    team_id: int
    dataset_id: int
    machine_id: int
    run_id: int
    job_id: int
    batch_id: int
    prediction_id: str
    version_number: int
    # Objects only DELETE operations get, so deleting them leaves the others to work on.
    spare_dataset_id: int
    spare_machine_id: int

    def dictionaries(self) -> dict[str, list[int | str]]:
        """Real values by path parameter name, for every operation but DELETE."""
        return {
            "team_id": [self.team_id],
            "dataset_id": [self.dataset_id],
            "machine_id": [self.machine_id],
            "run_id": [self.run_id],
            "job_id": [self.job_id],
            "batch_id": [self.batch_id],
            "prediction_id": [self.prediction_id],
            "number": [self.version_number],
        }

    def spare_dictionaries(self) -> dict[str, list[int | str]]:
        """Real values by path parameter name, for DELETE operations."""
        return {"dataset_id": [self.spare_dataset_id], "machine_id": [self.spare_machine_id]}


def _churn_csv(rows: int = 120) -> bytes:
    generator = np.random.default_rng(7)
    tenure = generator.integers(1, 60, rows)
    frame = pd.DataFrame(
        {
            "plan": generator.choice(["basic", "plus", "pro"], rows),
            "monthly_fee": generator.normal(50, 15, rows).round(2),
            "tenure_months": tenure,
            "churned": np.where((tenure < 20) ^ (generator.random(rows) < 0.1), "yes", "no"),
        }
    )
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def _ok(response: httpx.Response) -> dict:
    assert response.is_success, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


def seed(*, base_url: str, token: str, run_jobs: Callable[[], None]) -> SeededIds:
    """Upload, train, predict and batch-predict once; `run_jobs` runs every queued job."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{base_url}/api/v1", headers=headers, timeout=60) as api:
        team_id = _ok(api.get("/me/"))["current_team"]["id"]
        dataset = _ok(
            api.post("/datasets/", files={"file": ("churn.csv", _churn_csv(), "text/csv")})
        )
        run_jobs()
        machine = _ok(
            api.post(
                "/models/",
                # Generous: the candidate cap (conftest) ends the search, however slow the machine.
                json={
                    "dataset": dataset["id"],
                    "outputs": ["churned"],
                    "name": "churn",
                    "time_budget_s": 600,
                },
            )
        )
        run = _ok(api.post(f"/models/{machine['id']}/start_training/", json={"seed": 1}))
        run_jobs()
        run = _ok(api.get(f"/runs/{run['id']}/"))
        assert run["status"] == "succeeded", run
        answer = _ok(
            api.post(
                f"/models/{machine['id']}/predict/",
                json={"rows": [{"plan": "pro", "monthly_fee": 42.5, "tenure_months": 3}]},
            )
        )
        batch = _ok(
            api.post(f"/models/{machine['id']}/batch_predictions/", json={"dataset": dataset["id"]})
        )
        spare_dataset = _ok(
            api.post("/datasets/", files={"file": ("spare.csv", _churn_csv(), "text/csv")})
        )
        run_jobs()
        spare_machine = _ok(
            api.post("/models/", json={"dataset": spare_dataset["id"], "outputs": ["churned"]})
        )
        return SeededIds(
            team_id=team_id,
            dataset_id=dataset["id"],
            machine_id=machine["id"],
            run_id=run["id"],
            job_id=run["job"],
            batch_id=batch["id"],
            prediction_id=answer["predictions"][0]["id"],
            version_number=run["version"],
            spare_dataset_id=spare_dataset["id"],
            spare_machine_id=spare_machine["id"],
        )
