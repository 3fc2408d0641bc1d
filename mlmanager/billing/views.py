"""Billing's pages: the team's account (balances, last operations, redeeming a coupon, prices),
its ledger, its monthly statements (page, CSV, PDF), and staff's page to credit a team or
record a payment.

Every member of the team may see them; redeeming is for editors and up (the service checks);
the staff page for staff. They answer with billing off too (an empty account).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mlmanager.accounts.access import team_role
from mlmanager.accounts.requests import AuthenticatedHttpRequest
from mlmanager.billing import selectors
from mlmanager.billing.filters import OperationFilter
from mlmanager.billing.forms import AccountCreditForm, CouponRedeemForm, PaymentRecordForm
from mlmanager.billing.providers import ManualProvider
from mlmanager.billing.services import coupons, credits, prices, statements
from mlmanager.billing.services.ledger import billing_enabled
from mlmanager.core.access import ROLE_ACTIONS, Action
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.core.filters import page_filter
from mlmanager.core.htmx import render_page_or_partial
from mlmanager.core.pagination import page_of


def _team(request: AuthenticatedHttpRequest) -> Any:
    """The current team (the middleware checked the caller is a member)."""
    if request.team is None:
        raise NotFound()
    return request.team


def _can_change(request: AuthenticatedHttpRequest, team: Any) -> bool:
    role = team_role(caller=request.caller, team_id=team.pk)
    return role is not None and Action.CHANGE in ROLE_ACTIONS[role]


def _account_context(request: AuthenticatedHttpRequest, team: Any) -> dict[str, object]:
    return {
        "team": team,
        "account": selectors.team_account_or_empty(team=team),
        "can_redeem": _can_change(request, team),
        "billing_on": billing_enabled(),
    }


@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = _team(request)
    context = _account_context(request, team)
    account = context["account"]
    return render(
        request,
        "billing/index.html",
        {
            **context,
            "redeem_form": CouponRedeemForm(),
            "operations": selectors.recent_operations(team=team, account=account),  # type: ignore[arg-type]
            "months": selectors.statement_months(team=team)[:12],
            "prices": prices.prices_current(),
        },
    )


@login_required
@require_POST
def coupon_redeem(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The redeem form (htmx swaps the account card; without script, the whole page)."""
    team = _team(request)
    form = CouponRedeemForm(request.POST)
    redeemed = None
    if form.is_valid():
        try:
            redeemed = coupons.coupon_redeem(
                caller=request.caller, team=team, code=form.cleaned_data["code"]
            )
        except coupons.CouponRefused as error:
            form.add_error("code", error.message)
    if not request.htmx:  # type: ignore[attr-defined]
        if redeemed is not None:
            messages.success(request, _("Coupon redeemed: promotional credit added."))
        else:
            for message in form.errors.get("code", []):
                messages.error(request, str(message))
        return redirect("billing:index")
    return render(
        request,
        "billing/partials/_account.html",
        {
            **_account_context(request, team),
            "redeem_form": CouponRedeemForm() if redeemed else form,
            "redeemed": redeemed,
        },
    )


@login_required
def ledger(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = _team(request)
    account = selectors.team_account_or_empty(team=team)
    operation_filter = page_filter(
        request=request,
        queryset=selectors.team_operations(team=team, account=account),
        filterset_class=OperationFilter,
    )
    page = page_of(request, operation_filter.qs)
    return render_page_or_partial(
        request,
        page="billing/ledger.html",
        partial="billing/partials/_ledger_table.html",
        context={
            "team": team,
            "account": account,
            "page": page,
            "operations": [selectors.operation_view(op, team=team) for op in page],
            "filter_form": operation_filter.form,
        },
    )


@login_required
def statement_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = _team(request)
    return render(
        request,
        "billing/statement_list.html",
        {"team": team, "months": selectors.statement_months(team=team)},
    )


@login_required
def statement_detail(request: AuthenticatedHttpRequest, month: str) -> HttpResponse:
    """A month's statement; `?format=csv` or `pdf` downloads it."""
    team = _team(request)
    statement = statements.statement_build(team=team, month=statements.statement_month(month))
    wanted = request.GET.get("format")
    if wanted in ("csv", "pdf"):
        content = (
            statements.statement_csv(statement).encode()
            if wanted == "csv"
            else statements.statement_pdf(statement)
        )
        response = HttpResponse(
            content,
            content_type="text/csv; charset=utf-8" if wanted == "csv" else "application/pdf",
        )
        name = statements.statement_file_name(statement, wanted)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    # A busy team's month holds thousands of predictions: the page shows them a page at a
    # time (the files hold them all); the balances above and below are the month's.
    page = page_of(request, statement.lines, long_list=True)
    return render(
        request, "billing/statement.html", {"team": team, "statement": statement, "page": page}
    )


@login_required
def staff(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Staff: credit a team (with a reason) or record a payment received (manual provider)."""
    teams = list(selectors.teams_for_staff(caller=request.caller))
    credit_form = AccountCreditForm(teams=teams)
    payment_form = PaymentRecordForm(teams=teams)
    if request.method == "POST":
        if request.POST.get("action") == "payment":
            payment_form = PaymentRecordForm(request.POST, teams=teams)
            if payment_form.is_valid() and _record_payment(request, payment_form):
                return redirect("billing:staff")
        else:
            credit_form = AccountCreditForm(request.POST, teams=teams)
            if credit_form.is_valid() and _credit(request, credit_form):
                return redirect("billing:staff")
    return render(
        request,
        "billing/staff.html",
        {"credit_form": credit_form, "payment_form": payment_form},
    )


def _credit(request: AuthenticatedHttpRequest, form: AccountCreditForm) -> bool:
    values = form.cleaned_data
    try:
        team = selectors.access_team_for_staff(caller=request.caller, id=values["team"])
        booked = credits.account_credit(
            caller=request.caller,
            team=team,
            amount=values["amount"],
            reason=values["reason"],
            idempotency_key=values["idempotency_key"],
        )
    except ApplicationError as error:
        form.add_error(None, error.message)
        return False
    if booked.created:
        messages.success(
            request,
            _("%(team)s credited %(amount)s.") % {"team": team.name, "amount": values["amount"]},
        )
    else:
        messages.info(request, _("This credit was already made (sent twice); nothing was added."))
    return True


def _record_payment(request: AuthenticatedHttpRequest, form: PaymentRecordForm) -> bool:
    values = form.cleaned_data
    try:
        team = selectors.access_team_for_staff(caller=request.caller, id=values["team"])
        recorded = ManualProvider().record(
            team=team,
            amount=values["amount"],
            reference=values["reference"].strip(),
            recorded_by=request.user,
        )
    except ApplicationError as error:
        form.add_error(None, error.message)
        return False
    if recorded.created:
        messages.success(
            request,
            _("Payment %(reference)s recorded for %(team)s.")
            % {"reference": recorded.payment.reference, "team": team.name},
        )
    else:
        messages.info(request, _("This payment was already recorded; nothing was added."))
    return True
