"""What the parent knows about a running search, read from the files it writes (see `status`)."""

from __future__ import annotations

import dataclasses
import math
import os

from mlmanager.engine.training.status import OutputFolder, read_json
from mlmanager.engine.training.trials import Trial, TrialFollower, score_from_loss


@dataclasses.dataclass
class SearchWatch:
    """What the parent knows about the running search, from its files."""

    folder: OutputFolder
    metric: str
    status: dict = dataclasses.field(default_factory=dict)
    chunk: int = -1
    follower: TrialFollower | None = None
    live_candidates: int = 0
    live_best_loss: float = math.inf
    live_best_estimator: str | None = None
    unreported: list[Trial] = dataclasses.field(default_factory=list)
    _status_mtime: float = -1.0

    def refresh(self, *, final: bool = False) -> None:
        """Read what the search wrote since the last call; `final` once it has ended."""
        try:
            mtime = os.stat(self.folder.status).st_mtime
        except OSError:
            return
        if mtime != self._status_mtime:
            self.status = read_json(self.folder.status) or self.status
            self._status_mtime = mtime
        chunk = int(self.status.get("chunk", -1))
        if chunk != self.chunk:
            if self.follower is not None:  # the end of the chunk before, unread until now
                self._follow(self.follower, final=True)
            self.chunk = chunk
            self.follower = TrialFollower(self.folder.path / f"trials-{chunk}.jsonl")
            self.live_candidates = 0
        if self.follower is not None:
            self.live_candidates += self._follow(self.follower, final=final)

    def _follow(self, follower: TrialFollower, *, final: bool = False) -> int:
        trials = follower.new_trials(final=final)
        for trial in trials:
            self.unreported.append(trial)
            if trial.loss < self.live_best_loss:
                self.live_best_loss = trial.loss
                self.live_best_estimator = trial.estimator
        return len(trials)

    def take_unreported(self) -> list[Trial]:
        """The candidates read since the last call (for a log line each)."""
        trials, self.unreported = self.unreported, []
        return trials

    @property
    def candidates(self) -> int:
        done = int(self.status.get("candidates", 0))
        # status.json counts finished chunks; the running chunk's log is counted live.
        return done if self.status.get("state") == "done" else done + self.live_candidates

    def best(self) -> tuple[float | None, str | None]:
        loss = self.status.get("best_loss")
        estimator = self.status.get("best_estimator")
        if loss is None or self.live_best_loss < loss:
            loss, estimator = self.live_best_loss, self.live_best_estimator
        if loss is None or not math.isfinite(loss):
            return None, None
        return score_from_loss(self.metric, loss), estimator
