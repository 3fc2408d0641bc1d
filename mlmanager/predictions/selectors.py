"""Reads about predictions and batches, always team-scoped from the caller's point of view."""

from __future__ import annotations

import dataclasses
import math
import uuid
from typing import Any, TypeVar

from django.db import connection, models
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.models import ApiToken, Membership, User, hash_token
from mlmanager.accounts.services import TOKEN_LAST_USED_RESOLUTION
from mlmanager.core.access import (
    Action,
    access_team_object,
    parse_id,
    require_role_action,
    require_team_action,
)
from mlmanager.core.errors import Conflict, NotFound
from mlmanager.machines.models import Machine, ModelVersion
from mlmanager.predictions.log import prediction_log, seconds_until_written
from mlmanager.predictions.models import BatchPrediction, Prediction
from mlmanager.predictions.serving import class_key

_ModelT = TypeVar("_ModelT", bound=models.Model)

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


@dataclasses.dataclass(frozen=True)
class PredictGrant:
    """What one query found for a bearer token on the predict path: the token's user, and the
    model when the token may predict with it (None: not found, for this caller)."""

    token_id: int
    user: User
    machine: Machine | None
    token_last_used_is_stale: bool


def _predict_grant_sql() -> str:
    """The token (valid, of an active user), and the model with its active version when the
    token's user is a member of the model's team and the token is not limited to another team.
    Built from the models' table and column names; values are always bound parameters."""
    token, user, machine = ApiToken._meta, User._meta, Machine._meta
    membership, version = Membership._meta, ModelVersion._meta
    return f"""
        SELECT t.id, t.user_id, t.team_id,
               CASE WHEN t.last_used_at IS NULL OR t.last_used_at < %s THEN 1 ELSE 0 END,
               m.id, m.team_id, v.id, v.number, v.threshold, ms.role
        FROM {token.db_table} t
        JOIN {user.db_table} u ON u.id = t.user_id AND u.is_active = %s
        LEFT JOIN {machine.db_table} m
            ON m.id = %s AND (t.team_id IS NULL OR m.team_id = t.team_id)
        LEFT JOIN {membership.db_table} ms ON ms.team_id = m.team_id AND ms.user_id = t.user_id
        LEFT JOIN {version.db_table} v ON v.id = m.active_version_id
        WHERE t.token_hash = %s AND t.revoked_at IS NULL
            AND (t.expires_at IS NULL OR t.expires_at > %s)
    """  # noqa: S608 - table names from the models' metadata; every value is a parameter


def predict_grant_for_token(*, raw_token: str, machine_id: Any) -> PredictGrant | None:
    """The bearer token check and `access_machine_to_predict` in one query, or None when the
    token is unknown, revoked, expired or its user deactivated (401).

    Every API call of a client that predicts one row at a time pays for this lookup: as two
    ORM queries (the token with its user, then the model with the caller's role), compiling
    them took ~0.7 ms of a ~2 ms request; this SQL runs in ~0.05 ms. It keeps the rules of
    `api_token_authenticate` and `access_team_object`: a test puts every case to both paths.
    The user and the model are deferred instances: any other field loads on first use.
    """
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            _predict_grant_sql(),
            [
                adapt(now - TOKEN_LAST_USED_RESOLUTION),
                True,
                _row_id_or_none(machine_id),
                hash_token(raw_token),
                adapt(now),
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    (
        token_id,
        user_id,
        token_team_id,
        stale,
        found_id,
        team_id,
        version_id,
        number,
        threshold,
        role,
    ) = row
    user = _deferred(User, id=user_id, is_active=True)
    # Team-scoped querysets and access checks read this to keep the token in its team.
    user.restricted_team_id = token_team_id  # type: ignore[attr-defined]
    machine = None
    if found_id is not None and role is not None:
        require_role_action(role, Action.VIEW)
        machine = _deferred(Machine, id=found_id, team_id=team_id, active_version_id=version_id)
        if version_id is not None:
            machine.active_version = _deferred(
                # The threshold too: serving reads it on every answer (served_version).
                ModelVersion,
                id=version_id,
                machine_id=found_id,
                number=number,
                threshold=threshold,
            )
    return PredictGrant(
        token_id=token_id, user=user, machine=machine, token_last_used_is_stale=bool(stale)
    )


def _row_id_or_none(raw: Any) -> int | None:
    """A client-supplied id as the database can compare it; None (matches nothing, as the ORM
    answers) when it is not a positive id or past the column's range (SQLite's driver raises
    OverflowError on integers it cannot bind)."""
    try:
        value = parse_id(raw)
    except NotFound:
        return None
    _lowest, highest = connection.ops.integer_field_range("BigIntegerField")
    return value if highest is None or value <= highest else None


def _deferred(model: type[_ModelT], **values: Any) -> _ModelT:
    """An instance of `model` as if loaded with only these fields (by attribute name, e.g.
    `team_id`); the others load from the database on first use. `from_db` takes the values in
    the model's field order, which this builds."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    if len(names) != len(values):
        raise ValueError(f"not fields of {model.__name__}: {sorted(set(values) - set(names))}")
    return model.from_db(connection.alias, names, [values[name] for name in names])


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


def access_prediction(*, user: Any, id: Any, action: Action = Action.VIEW) -> Prediction:
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
    found = Prediction.objects.for_user(user).select_related("machine").filter(pk=key)
    prediction = found.first()
    if prediction is None and prediction_log.flush():
        prediction = found.first()
    if prediction is None and (wait := seconds_until_written(key)):
        raise PredictionNotLoggedYet(retry_after_s=math.ceil(wait))
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
