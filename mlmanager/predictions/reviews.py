"""Reviewing an image prediction: a team member confirms it, corrects it with the true label,
or rejects it, with a note.

A review is the prediction's feedback, so live accuracy (selectors.live_accuracy) and the
monitoring's accuracy on feedback count it with no code of their own: a confirmation writes
the predicted label as the true value, a correction the reviewer's label; a rejection (the
image cannot be judged, or the case is out of scope) records no true value and clears one an
earlier review wrote. A later review replaces the earlier one.

Only a classification's answer is a label: a segmentation can be confirmed or rejected (no
feedback is written: live accuracy compares labels), and correcting a mask needs a mask, which
this review does not take.

Reviewing is a CHANGE action (editors and above): the team's existing roles already say who
may change a model's data, and a new role would be one more thing to give everyone who does.
Each review is audited in the same transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.audit.services import audit_record
from mlmanager.core.errors import ApplicationError, Conflict, NotFound
from mlmanager.engine.prediction import class_key
from mlmanager.predictions.models import Prediction, ReviewStatus

NOTE_MAX_LENGTH = 2000
# audit's AuditAction.PREDICTION_REVIEWED (audit_record checks the name against its catalogue).
PREDICTION_REVIEWED = "prediction.reviewed"


@transaction.atomic
def prediction_review(
    *, caller: Caller, prediction: Prediction, status: str, label: Any = None, note: str = ""
) -> Prediction:
    """Record the review of an image prediction (found with access_prediction, CHANGE)."""
    if not prediction.is_image:
        raise Conflict(
            _("Only predictions of image models are reviewed; send feedback for table rows."),
            code="not_reviewable",
        )
    if status not in ReviewStatus.values:
        raise _invalid(
            _("“status” must be one of: %(statuses)s.")
            % {"statuses": ", ".join(ReviewStatus.values)},
            field="status",
        )
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise _invalid(
            _("The note is longer than %(limit)s characters.") % {"limit": NOTE_MAX_LENGTH},
            field="note",
        )
    output = prediction.output_name()
    answer = prediction.answer()
    predicted = answer.get("value")
    classes = [str(name) for name in answer.get("probabilities") or {}]
    segmentation = "areas" in answer
    label = None if label in (None, "") else label
    if label is not None and not isinstance(label, str):
        raise _invalid(_("“label” must be text: one of the model's classes."), field="label")
    feedback: dict[str, Any] | None = None
    review_label = ""
    if status == ReviewStatus.CORRECTED:
        if segmentation:
            raise _invalid(
                _(
                    "A segmentation is not corrected with a label: confirm it, or reject it "
                    "with a note saying what is wrong."
                ),
                field="status",
            )
        if label is None:
            raise _invalid(_("A correction needs the true “label”."), field="label")
        if class_key(label) not in {class_key(name) for name in classes}:
            raise _invalid(
                _("“label” must be one of the model's classes: %(classes)s.")
                % {"classes": ", ".join(classes)},
                field="label",
                classes=classes,
            )
        review_label = label
        feedback = {output: label}
    elif label is not None and (status == ReviewStatus.REJECTED or label != predicted):
        raise _invalid(
            _("A label goes with a correction (status “corrected”)."),
            field="label",
        )
    elif status == ReviewStatus.CONFIRMED and not segmentation:
        review_label = str(predicted)
        feedback = {output: predicted}
    now = timezone.now()
    before = (prediction.review_status, prediction.review_label)
    fields = {
        "review_status": status,
        "review_label": review_label,
        "review_note": note,
        "reviewed_by": caller.user,
        "reviewed_at": now,
        "feedback": feedback,
        "feedback_at": now if feedback is not None else None,
        "feedback_by": caller.user if feedback is not None else None,
    }
    if not Prediction.objects.filter(pk=prediction.pk).update(**fields):
        raise NotFound()
    audit_record(
        caller=caller,
        team=prediction.machine.team,
        action=PREDICTION_REVIEWED,
        target=prediction.machine,
        changes={
            "review_status": (before[0], status),
            "review_label": (before[1], review_label),
        },
        details={"prediction": str(prediction.pk), "note": note[:200]},
    )
    prediction.refresh_from_db()
    return prediction


def _invalid(message: str, *, field: str, **details: Any) -> ApplicationError:
    return ApplicationError(message, code="invalid_review", details={"field": field, **details})
