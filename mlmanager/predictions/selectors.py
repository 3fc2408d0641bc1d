"""Reads about predictions and batches, always team-scoped from the caller's point of view."""

from __future__ import annotations

import math
import uuid
from typing import Any

from django.db.models import QuerySet

from mlmanager.core.access import Action, access_team_object, require_team_action
from mlmanager.core.errors import NotFound
from mlmanager.machines.models import Machine
from mlmanager.predictions.log import prediction_log
from mlmanager.predictions.models import BatchPrediction, Prediction
from mlmanager.predictions.serving import class_key

# Live accuracy looks at this many of the latest rows with feedback.
LIVE_ACCURACY_ROWS = 10_000


def predictions_for_user(
    *,
    user: Any,
    machine: Any = None,
    source: str | None = None,
    version: int | None = None,
    has_feedback: bool | None = None,
) -> QuerySet[Prediction]:
    predictions = Prediction.objects.for_user(user).select_related("machine", "user")
    if machine is not None:
        predictions = predictions.filter(machine=machine)
    if source:
        predictions = predictions.filter(source=source)
    if version is not None:
        predictions = predictions.filter(version_number=version)
    if has_feedback is not None:
        predictions = predictions.filter(feedback__isnull=not has_feedback)
    return predictions  # type: ignore[return-value]


def access_machine_to_predict(*, user: Any, id: Any) -> Machine:
    """A model the caller may predict with, and its active version, reading only the columns
    the predict path needs (one query of a few columns on every API call; anything else
    loads on first use, e.g. a version's outputs when it is not in the serving cache yet)."""
    return access_team_object(
        Machine.objects.select_related("active_version").only(
            "id", "team_id", "active_version__id", "active_version__number"
        ),
        user=user,
        id=id,
        action=Action.VIEW,
    )


def access_prediction(*, user: Any, id: Any, action: Action = Action.VIEW) -> Prediction:
    """A logged prediction by its UUID; one answered a moment ago may still be in this
    process's log buffer, which is then written first."""
    try:
        key = uuid.UUID(str(id))
    except ValueError:
        raise NotFound() from None
    found = Prediction.objects.for_user(user).select_related("machine").filter(pk=key)
    prediction = found.first()
    if prediction is None and prediction_log.flush():
        prediction = found.first()
    if prediction is None:
        raise NotFound()
    require_team_action(user=user, team_id=prediction.team_id, action=action)
    return prediction


def access_batch(*, user: Any, id: Any, action: Action = Action.VIEW) -> BatchPrediction:
    return access_team_object(
        BatchPrediction.objects.select_related("job", "machine"), user=user, id=id, action=action
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
