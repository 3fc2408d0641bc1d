"""Reads about predictions and batches, always team-scoped from the caller's point of view."""

from __future__ import annotations

import math
import uuid
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from mlmanager.accounts.access import access_team_object, require_team_action
from mlmanager.accounts.caller import Caller
from mlmanager.core.access import Action
from mlmanager.core.errors import Conflict, NotFound
from mlmanager.engine.prediction import class_key
from mlmanager.machines.models import Machine
from mlmanager.predictions.log import prediction_log, seconds_until_written
from mlmanager.predictions.models import BatchPrediction, Prediction

# Live accuracy looks at this many of the latest rows with feedback.
LIVE_ACCURACY_ROWS = 10_000


def predictions_for_caller(*, caller: Caller, machine: Any = None) -> QuerySet[Prediction]:
    """The caller's predictions (of one model); the lists narrow them by predictions.filters."""
    predictions = Prediction.objects.for_caller(caller).select_related(
        "machine", "user", "reviewed_by"
    )
    if machine is not None:
        predictions = predictions.filter(machine=machine)
    return predictions  # type: ignore[return-value]


class PredictionNotLoggedYet(Conflict):
    """The id was made so recently that its entry may still be in a web process's log buffer:
    ask again after `retry_after_s` (the API sends it as Retry-After)."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            _(
                "This prediction is not in the log yet: it was answered a moment ago. "
                "Send the feedback again in %(seconds)s s."
            )
            % {"seconds": retry_after_s},
            code="prediction_not_logged_yet",
            details={"retry_after_s": retry_after_s},
            retry_after_s=retry_after_s,
        )


def access_prediction(*, caller: Caller, id: Any, action: Action = Action.VIEW) -> Prediction:
    """A logged prediction by its UUID. One answered a moment ago may still be in a log
    buffer: this process's is written first; for one that may be in another process's buffer
    (its id is younger than the log's interval and a margin) PredictionNotLoggedYet says when
    to ask again. No request waits for another process: a client sending made-up fresh ids
    would hold a web thread per request.

    Whether an id is "not logged yet" depends on its time alone, not on whether another team
    has such a prediction, so the answer tells nothing about other teams."""
    try:
        key = uuid.UUID(str(id))
    except ValueError:
        raise NotFound() from None
    found = Prediction.objects.for_caller(caller).select_related("machine").filter(pk=key)
    prediction = found.first()
    if prediction is None and prediction_log.flush():
        prediction = found.first()
    if prediction is None and (wait := seconds_until_written(key)):
        raise PredictionNotLoggedYet(retry_after_s=math.ceil(wait))
    if prediction is None:
        raise NotFound()
    require_team_action(caller=caller, team_id=prediction.team_id, action=action)
    return prediction


def access_batch(*, caller: Caller, id: Any, action: Action = Action.VIEW) -> BatchPrediction:
    return access_team_object(
        BatchPrediction.objects.select_related("job", "machine"),
        caller=caller,
        id=id,
        action=action,
    )


def batches_for_machine(*, machine: Machine) -> QuerySet[BatchPrediction]:
    return BatchPrediction.objects.filter(machine=machine).select_related("job", "created_by")


def live_accuracy(*, machine: Machine) -> list[dict[str, Any]]:
    """Per output of the active version, how its answers compare with the feedback so far:
    accuracy for classes, MAE and RMSE for amounts, over the latest LIVE_ACCURACY_ROWS."""
    version = machine.active_version
    if version is None:
        return []
    latest = (
        Prediction.objects.filter(machine=machine, version=version, feedback__isnull=False)
        .order_by("-feedback_at")
        .values_list("outputs", "feedback")[:LIVE_ACCURACY_ROWS]
    )
    rows: list[tuple[dict, dict]] = [(answer or {}, truth or {}) for answer, truth in latest]
    summary = []
    for output in version.outputs:
        name, task = output["name"], output["task"]
        pairs = [
            (answer[name]["value"], truth[name])
            for answer, truth in rows
            if name in truth and name in answer
        ]
        item: dict[str, Any] = {"name": name, "task": task, "count": len(pairs)}
        if pairs and task == "regression":
            errors = [float(predicted) - float(actual) for predicted, actual in pairs]
            item["mae"] = sum(abs(error) for error in errors) / len(errors)
            item["rmse"] = math.sqrt(sum(error * error for error in errors) / len(errors))
        elif pairs:
            hits = sum(class_key(p) == class_key(a) for p, a in pairs)
            item["accuracy"] = hits / len(pairs)
        summary.append(item)
    return summary
