"""Consulting: a team asks the platform's consultants for help, and pays through the ledger.

A request moves open → approved → contract → accepted → finished, or to cancelled from any
step before finished:

- the team submits it (`open`: in every consultant's queue, waiting for a consultant's approval);
- a consultant approves it, taking it on (`approved`: the request is theirs from now on);
- the consultant proposes the contract: amount, budget estimate and delay in days (`contract`);
- the team accepts the contract (`accepted`): the amount is held from the team's balance;
- the consultant finishes the work (`finished`): the hold is paid out to the platform;
- either side cancels before that (`cancelled`): any hold is released.

Each move is one conditional UPDATE from the state it was read in (services), so two clicks
at once move a request once and an action in the wrong state is refused (409).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mlmanager.billing.money import MAX_DIGITS, PLACES
from mlmanager.core.models import TeamOwnedModel, TimeStampedModel


class Consultant(TimeStampedModel):
    """A staff user who may take consulting requests (managed in the admin). Being staff is
    not enough: only an active Consultant row of an active staff user sees the queue and acts."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="consultant",
        limit_choices_to={"is_staff": True},
    )
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return str(self.user)

    def clean(self) -> None:
        if self.user_id is not None and not self.user.is_staff:
            raise ValidationError({"user": _("A consultant must be a staff user.")})


class ConsultingRequest(TeamOwnedModel):
    """A team's request for a consultant's help, and its contract (see the module docstring)."""

    class Category(models.TextChoices):
        DATA_ENGINEERING = "data_engineering", _("Data engineering")
        MODEL_PERFORMANCE = "model_performance", _("Model performance")
        API_INTEGRATION = "api_integration", _("API integration")
        OTHER = "other", _("Other")

    class State(models.TextChoices):
        OPEN = "open", _("Open: waiting for a consultant's approval")
        APPROVED = "approved", _("Approved: waiting for the consultant's contract")
        CONTRACT = "contract", _("Contract proposed: waiting for the team's acceptance")
        ACCEPTED = "accepted", _("Accepted: work in progress")
        FINISHED = "finished", _("Finished")
        CANCELLED = "cancelled", _("Cancelled")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    category = models.CharField(max_length=20, choices=Category.choices)
    description = models.TextField(max_length=5000)
    model = models.ForeignKey(
        "machines.Machine",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The team's model the request is about, if any."),
    )
    # The attachment: stored under a server-chosen name (`storage_name`, through core.storage);
    # `attachment_filename` is the client's name, sanitised, shown and used for downloads only.
    attachment_name = models.CharField(max_length=300, blank=True)
    attachment_filename = models.CharField(max_length=120, blank=True)
    attachment_size = models.PositiveBigIntegerField(default=0)
    consultant = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="consulting_requests",
    )
    state = models.CharField(max_length=12, choices=State.choices, default=State.OPEN)
    amount = models.DecimalField(
        null=True, blank=True, max_digits=MAX_DIGITS, decimal_places=PLACES
    )
    budget_estimate = models.DecimalField(
        null=True, blank=True, max_digits=MAX_DIGITS, decimal_places=PLACES
    )
    delay_days = models.PositiveIntegerField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    contract_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    state__in=[
                        "open",
                        "approved",
                        "contract",
                        "accepted",
                        "finished",
                        "cancelled",
                    ]
                ),
                name="consulting_state_known",
            ),
            models.CheckConstraint(
                condition=Q(
                    category__in=[
                        "data_engineering",
                        "model_performance",
                        "api_integration",
                        "other",
                    ]
                ),
                name="consulting_category_known",
            ),
            # Past `approved`, a request has its consultant (a cancel may come before one).
            models.CheckConstraint(
                condition=Q(state__in=["open", "cancelled"]) | Q(consultant__isnull=False),
                name="consulting_consultant_when_taken",
            ),
            # A contract names its figures, and they are never negative.
            models.CheckConstraint(
                condition=~Q(state__in=["contract", "accepted", "finished"])
                | Q(amount__isnull=False, budget_estimate__isnull=False, delay_days__isnull=False),
                name="consulting_contract_complete",
            ),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=0),
                name="consulting_amount_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(budget_estimate__isnull=True) | Q(budget_estimate__gte=0),
                name="consulting_budget_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["state", "created_at"], name="consulting_state_created")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_category_display()}"

    @property
    def reservation_key(self) -> str:
        """The ledger's key of the hold made at acceptance (one per request)."""
        return f"consulting:{self.pk}"

    @property
    def is_closed(self) -> bool:
        return self.state in (self.State.FINISHED, self.State.CANCELLED)
