"""The candidates tried, read from FLAML's trial log, and the leaderboard built from them.

FLAML appends one JSON line per candidate (and flushes it), so the parent can follow the log
of the running chunk to show live progress without asking the search process anything.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from mlmanager.engine.training.spec import higher_is_better

LEADERBOARD_ROWS = 50


@dataclasses.dataclass(frozen=True)
class Trial:
    estimator: str
    config: dict
    loss: float  # FLAML's validation loss: the metric, or 1 - metric for higher-is-better ones
    fit_time_s: float


def score_from_loss(metric: str, loss: float) -> float:
    """FLAML minimises 1 - metric for metrics where higher is better, the metric otherwise."""
    return 1.0 - loss if higher_is_better(metric) else loss


def loss_from_score(metric: str, score: float) -> float:
    return 1.0 - score if higher_is_better(metric) else score


def parse_trial(line: str) -> Trial | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or "learner" not in record:
        return None  # FLAML's closing checkpoint line
    loss = float(record.get("validation_loss", math.inf))
    config = {key: value for key, value in (record.get("config") or {}).items()}
    config.pop("FLAML_sample_size", None)
    return Trial(
        estimator=str(record["learner"]),
        config=config,
        loss=loss if math.isfinite(loss) else math.inf,
        fit_time_s=float(record.get("trial_time") or 0.0),
    )


def read_trials(path: Path) -> list[Trial]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    return [trial for line in text.splitlines() if (trial := parse_trial(line)) is not None]


class TrialFollower:
    """Reads the trials appended to a log since the last call; a partial last line waits."""

    def __init__(self, path: Path):
        self.path = path
        self._offset = 0
        self._pending = b""

    def new_trials(self, *, final: bool = False) -> list[Trial]:
        """`final` once the writer has ended: a last line without its newline (the search
        stopped between FLAML's record and its newline) is complete then."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            return []
        self._offset += len(data)
        data = self._pending + data
        complete, _, self._pending = data.rpartition(b"\n")
        if final and self._pending:
            complete, self._pending = complete + b"\n" + self._pending, b""
        lines = complete.decode("utf-8", errors="replace").splitlines()
        return [trial for line in lines if (trial := parse_trial(line)) is not None]


def leaderboard(
    trials: list[Trial], metric: str, *, chosen: str | None = None, limit: int = LEADERBOARD_ROWS
) -> list[dict]:
    """Best first: the best candidate of every estimator, then the next best overall.

    An ensemble, when `chosen`, leads: its score comes from other folds than FLAML's, so
    sorting alone could rank it below the member it was measured to beat.
    """
    ranked = []
    seen_configs: set[tuple[str, str]] = set()
    # A chunk starts from the best configurations so far: each appears again, once is enough.
    for trial in sorted(trials, key=lambda trial: trial.loss):
        key = (trial.estimator, json.dumps(trial.config, sort_keys=True, default=str))
        if math.isfinite(trial.loss) and key not in seen_configs:
            seen_configs.add(key)
            ranked.append(trial)
    rows: list[Trial] = []
    seen: set[str] = set()
    for trial in ranked:
        if trial.estimator not in seen:
            seen.add(trial.estimator)
            rows.append(trial)
    for trial in ranked:
        if len(rows) >= max(limit, len(seen)):
            break
        if not any(trial is other for other in rows):
            rows.append(trial)
    rows.sort(key=lambda trial: (trial.estimator != chosen or chosen != "ensemble", trial.loss))
    return [leaderboard_row(trial, metric) for trial in rows]


def leaderboard_row(trial: Trial, metric: str) -> dict[str, Any]:
    return {
        "estimator": trial.estimator,
        "config": trial.config,
        "score": score_from_loss(metric, trial.loss),
        "fit_time_s": round(trial.fit_time_s, 4),
    }
