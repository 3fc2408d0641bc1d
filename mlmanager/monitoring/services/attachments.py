"""Models attached to a site's sensors: each new set of readings becomes a prediction.

The ingest calls `attachments_on_readings` in its transaction with the sensors that received
new values; each due attachment (enabled, its interval passed) is claimed there with one
conditional UPDATE (two ingests at once claim it once), and predicts once the readings commit,
on the sensors' latest calibrated values, through the predictions app like any caller (the
answer is logged with source "site"), so rules on the model's signals see it. A failed
prediction (no active version, a sensor with no value yet) is kept on the attachment as
`last_error` and never fails the ingest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError, Conflict
from mlmanager.machines.selectors import access_machine
from mlmanager.monitoring.models import ModelAttachment
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.services import predictions_make, version_for_prediction
from mlmanager.sites.access import SiteAction
from mlmanager.sites.selectors import access_site, sensors_of_site

logger = logging.getLogger(__name__)


def _invalid(message: str, **details: Any) -> ApplicationError:
    return ApplicationError(message, code="invalid_attachment", details=details or None)


def _checked_inputs(*, site_id: int, machine: Any, inputs: Any) -> dict[str, int]:
    """`inputs` as {model input: sensor id}: every input of the model's active version named
    once, each a sensor of the site."""
    if not isinstance(inputs, dict) or not inputs:
        raise _invalid(_("“inputs” must map each of the model's inputs to a sensor id."))
    version = version_for_prediction(machine=machine)
    expected = {item["name"] for item in version.inputs}
    unknown = sorted(set(inputs) - expected)
    missing = sorted(expected - set(inputs))
    if unknown:
        raise _invalid(
            _("The model has no input(s) %(names)s.") % {"names": ", ".join(unknown)},
            unknown=unknown,
        )
    if missing:
        raise _invalid(
            _("Give a sensor for each of the model's inputs; missing: %(names)s.")
            % {"names": ", ".join(missing)},
            missing=missing,
        )
    site_sensors = set(sensors_of_site(site_id=site_id).values_list("pk", flat=True))
    checked: dict[str, int] = {}
    for name, sensor_id in inputs.items():
        if isinstance(sensor_id, bool) or not isinstance(sensor_id, int):
            raise _invalid(_("inputs.%(name)s must be a sensor id.") % {"name": name})
        if sensor_id not in site_sensors:
            raise _invalid(
                _("inputs.%(name)s: sensor %(id)s is not a sensor of this site.")
                % {"name": name, "id": sensor_id}
            )
        checked[name] = sensor_id
    return checked


@transaction.atomic
def attachment_create(
    *, caller: Caller, site_id: Any, machine_id: Any, inputs: Any, min_interval_s: int = 60
) -> ModelAttachment:
    """Attach a model to a site (the site's technicians and admins may; the model must be of
    the same team and visible to the caller)."""
    site = access_site(caller=caller, id=site_id, action=SiteAction.MAINTAIN)
    machine = access_machine(caller=caller, id=machine_id, action=Action.VIEW)
    if machine.team_id != site.team_id:
        raise _invalid(_("The model and the site belong to different teams."))
    if not isinstance(min_interval_s, int) or isinstance(min_interval_s, bool):
        raise _invalid(_("“min_interval_s” must be a whole number of seconds."))
    if min_interval_s < 1:
        raise _invalid(_("“min_interval_s” must be at least 1 second."))
    checked = _checked_inputs(site_id=site.pk, machine=machine, inputs=inputs)
    attachment = ModelAttachment(
        team_id=site.team_id,
        site=site,
        machine=machine,
        inputs=checked,
        min_interval_s=min_interval_s,
        created_by=caller.user,
    )
    try:
        with transaction.atomic():
            attachment.save()
    except IntegrityError:
        raise Conflict(
            _("This model is attached to this site already."), code="attachment_exists"
        ) from None
    attachment.sensors.set(sorted(set(checked.values())))
    audit_record(
        caller=caller,
        team=site.team,
        action=AuditAction.MODEL_ATTACHED,
        target=attachment,
        details={"site": site.name, "model": machine.name, "inputs": checked},
    )
    return attachment


@transaction.atomic
def attachment_delete(*, caller: Caller, attachment: ModelAttachment) -> None:
    """Detach (found with `access_attachment(action=CHANGE)`); the logged predictions stay."""
    audit_record(
        caller=caller,
        team=attachment.site.team,
        action=AuditAction.MODEL_DETACHED,
        target=attachment,
        details={"site": attachment.site.name, "model": attachment.machine.name},
    )
    attachment.delete()


def attachments_on_readings(*, team_id: int, sensor_ids: Iterable[int]) -> None:
    """Claim the due attachments fed by these sensors (in the ingest's transaction) and
    predict with each once it commits."""
    ids = sorted(set(sensor_ids))
    if not ids:
        return
    now = timezone.now()
    candidates = list(
        ModelAttachment.objects.filter(team_id=team_id, enabled=True, sensors__in=ids)
        .distinct()
        .values_list("pk", "min_interval_s", "last_predicted_at")
    )
    claimed = []
    for pk, interval_s, last in candidates:
        if last is not None and now - last < timedelta(seconds=interval_s):
            continue
        # The conditional update is the claim: of two ingests at once, one matches.
        still_due = Q(last_predicted_at__isnull=True) | Q(
            last_predicted_at__lte=now - timedelta(seconds=interval_s)
        )
        if ModelAttachment.objects.filter(still_due, pk=pk).update(last_predicted_at=now):
            claimed.append(pk)
    if claimed:
        transaction.on_commit(lambda: attachments_predict(claimed))


def attachments_predict(attachment_ids: Iterable[int]) -> None:
    for attachment in ModelAttachment.objects.filter(pk__in=list(attachment_ids)).select_related(
        "machine"
    ):
        try:
            attachment_predict(attachment)
        except ApplicationError as error:
            ModelAttachment.objects.filter(pk=attachment.pk).update(last_error=str(error.message))
        except Exception:  # a broken model must not stop the other attachments
            logger.exception("attached model %s failed to predict", attachment.machine_id)
            ModelAttachment.objects.filter(pk=attachment.pk).update(
                last_error=_("The prediction failed; the server log has the details.")
            )


def attachment_predict(attachment: ModelAttachment) -> Mapping[str, Any]:
    """One prediction on the attached sensors' latest values, logged with source "site"."""
    values = dict(
        sensors_of_site(site_id=attachment.site_id)
        .filter(pk__in=list(attachment.inputs.values()))
        .values_list("pk", "last_value")
    )
    row = {name: values.get(sensor_id) for name, sensor_id in attachment.inputs.items()}
    silent = sorted(name for name, value in row.items() if value is None)
    if silent:
        raise ApplicationError(
            _("No reading yet for the sensor(s) of %(names)s.") % {"names": ", ".join(silent)},
            code="no_readings",
        )
    machine = attachment.machine
    body = predictions_make(
        machine=machine,
        version=version_for_prediction(machine=machine),
        payload={"rows": [row]},
        caller=Caller.system(),
        source=Prediction.Source.SITE,
    )
    ModelAttachment.objects.filter(pk=attachment.pk).update(last_error="")
    return body
