"""A team's monthly statement: opening balances, each operation that moved its account with
its amount for the team and the running balances, and the closing balances; bought credit and
promotional credit apart. As a page (the view renders `Statement`), a CSV file and a PDF.

Built from the team's ledger entries only (the other sides of an operation are named by kind,
never by team: `selectors.counterparty_label`), in the reader's current time zone.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.models import Team
from mlmanager.billing.models import LedgerEntry, Operation
from mlmanager.billing.money import ZERO, amount_text
from mlmanager.billing.selectors import account_balances_before, team_account_or_empty
from mlmanager.core import formatting
from mlmanager.core.errors import ApplicationError

# 1970-01 to 2999-12: statements of months the ledger can hold, and a following month that
# exists (9999-12 has none).
MONTH_PATTERN = re.compile(r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class StatementLine:
    operation_id: int
    created_at: datetime
    kind: str
    kind_label: str
    description: str
    credits: Decimal  # the operation's amount on bought credit for the team (signed)
    promotional: Decimal  # and on promotional credit
    balance: Decimal  # the running balances after it
    promotional_balance: Decimal

    @property
    def amount(self) -> Decimal:
        return self.credits + self.promotional


@dataclass
class Statement:
    team: Team
    month: date  # the first day
    currency: str
    opening_balance: Decimal
    opening_promotional: Decimal
    lines: list[StatementLine] = field(default_factory=list)

    @property
    def closing_balance(self) -> Decimal:
        return self.lines[-1].balance if self.lines else self.opening_balance

    @property
    def closing_promotional(self) -> Decimal:
        return self.lines[-1].promotional_balance if self.lines else self.opening_promotional

    @property
    def month_text(self) -> str:
        return f"{self.month:%Y-%m}"

    @property
    def total_in(self) -> Decimal:
        return sum((line.amount for line in self.lines if line.amount > 0), ZERO)

    @property
    def total_out(self) -> Decimal:
        return sum((line.amount for line in self.lines if line.amount < 0), ZERO)


def statement_month(raw: str) -> date:
    """ "2026-03" as the month's first day; 400 `invalid_month` for anything else."""
    found = MONTH_PATTERN.fullmatch(raw or "")
    if found is not None:
        year, month = int(found.group(1)), int(found.group(2))
        return date(year, month, 1)
    raise ApplicationError(
        _("A month is written YYYY-MM, e.g. 2026-03."),
        code="invalid_month",
        details={"month": str(raw)[:20]},
    )


def _month_bounds(month: date) -> tuple[datetime, datetime]:
    first = timezone.make_aware(datetime.combine(month, time.min))
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, timezone.make_aware(datetime.combine(following, time.min))


def statement_build(*, team: Team, month: date) -> Statement:
    """The team's statement for `month` (its first day), in the current time zone. The team
    was checked by the caller (a viewer of it may read its statements)."""
    account = team_account_or_empty(team=team)
    start, end = _month_bounds(month)
    opening, opening_promotional = account_balances_before(account=account, moment=start)
    statement = Statement(
        team=team,
        month=month,
        currency=account.currency or settings.MLMANAGER_BILLING_CURRENCY,
        opening_balance=opening,
        opening_promotional=opening_promotional,
    )
    if account.pk is None:
        return statement
    entries = (
        LedgerEntry.objects.filter(
            account_id=account.pk,
            operation__created_at__gte=start,
            operation__created_at__lt=end,
        )
        .select_related("operation")
        .order_by("operation__created_at", "operation_id", "id")
    )
    balance, promotional_balance = opening, opening_promotional
    current: Operation | None = None
    credits = promotional = ZERO

    def close() -> None:
        nonlocal balance, promotional_balance
        if current is None:
            return
        balance += credits
        promotional_balance += promotional
        own = current.team_id == team.pk
        statement.lines.append(
            StatementLine(
                operation_id=current.pk,
                created_at=current.created_at,
                kind=current.kind,
                kind_label=str(current.get_kind_display()),
                description=current.description if own else _("Paid by another team"),
                credits=credits,
                promotional=promotional,
                balance=balance,
                promotional_balance=promotional_balance,
            )
        )

    for entry in entries.iterator(chunk_size=2000):
        if current is None or entry.operation_id != current.pk:
            close()
            current, credits, promotional = entry.operation, ZERO, ZERO
        if entry.bucket == LedgerEntry.Bucket.PROMOTIONAL:
            promotional += entry.amount
        else:
            credits += entry.amount
    close()
    return statement


CSV_COLUMNS = [
    "time",
    "operation",
    "kind",
    "description",
    "credits",
    "promotional",
    "amount",
    "balance",
    "promotional_balance",
]


def _cell(value: Any) -> Any:
    """As the audit log's CSV export: text a spreadsheet would run as a formula (a
    description starting with = + - @) gets a leading apostrophe. Amounts are written by us
    and stay numbers, a leading minus included."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return f"'{value}"
    return value


def statement_csv(statement: Statement) -> str:
    """The statement as CSV: an opening row, one row per operation, a closing row."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    start, end = _month_bounds(statement.month)
    writer.writerow(
        [
            timezone.localtime(start).isoformat(),
            "",
            "opening",
            _cell(_("Opening balance")),
            "",
            "",
            "",
            amount_text(statement.opening_balance),
            amount_text(statement.opening_promotional),
        ]
    )
    for line in statement.lines:
        writer.writerow(
            [
                timezone.localtime(line.created_at).isoformat(),
                line.operation_id,
                line.kind,
                _cell(line.description),
                amount_text(line.credits),
                amount_text(line.promotional),
                amount_text(line.amount),
                amount_text(line.balance),
                amount_text(line.promotional_balance),
            ]
        )
    writer.writerow(
        [
            timezone.localtime(end).isoformat(),
            "",
            "closing",
            _cell(_("Closing balance")),
            "",
            "",
            "",
            amount_text(statement.closing_balance),
            amount_text(statement.closing_promotional),
        ]
    )
    return out.getvalue()


def statement_file_name(statement: Statement, extension: str) -> str:
    """Built from ids and the month, safe in a header."""
    return f"statement-team-{statement.team.pk}-{statement.month_text}.{extension}"


def _font_path() -> Path | None:
    """DejaVu Sans, which matplotlib (a dependency) ships: any European script prints."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "mpl-data/fonts/ttf/DejaVuSans.ttf"
    return path if path.is_file() else None


def _latin1(value: Any) -> str:
    """Without the DejaVu font, what Helvetica cannot print becomes "?"."""
    return str(value).encode("latin-1", "replace").decode("latin-1")


def statement_pdf(statement: Statement) -> bytes:
    """The statement as a PDF (fpdf2, set in DejaVu Sans as predictions' reports are)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creator("MLManager")
    pdf.set_title(_("Statement"))
    font = _font_path()
    family = "Helvetica"
    if font is not None:
        pdf.add_font("DejaVu", "", str(font))
        family = "DejaVu"
    text = str if family == "DejaVu" else _latin1
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font(family, size=16)
    pdf.cell(
        0,
        10,
        text(
            _("Statement for %(team)s, %(month)s")
            % {"team": statement.team.name, "month": statement.month_text}
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font(family, size=10)
    currency = statement.currency
    for label, credits, promotional in (
        (_("Opening balance"), statement.opening_balance, statement.opening_promotional),
        (_("Closing balance"), statement.closing_balance, statement.closing_promotional),
    ):
        pdf.cell(
            0,
            6,
            text(
                _("%(label)s: %(credits)s %(currency)s (promotional %(promotional)s)")
                % {
                    "label": label,
                    "credits": amount_text(credits),
                    "currency": currency,
                    "promotional": amount_text(promotional),
                }
            ),
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.ln(3)
    widths = (34, 30, 62, 30, 30)
    headers = (_("When"), _("Kind"), _("Description"), _("Amount"), _("Balance"))
    pdf.set_font(family, size=9)
    for width, header in zip(widths, headers, strict=True):
        pdf.cell(width, 6, text(header), border="B")
    pdf.ln(6)
    for line in statement.lines:
        cells = (
            formatting.format_datetime(timezone.localtime(line.created_at)),
            line.kind_label,
            line.description[:40],
            amount_text(line.amount),
            amount_text(line.balance + line.promotional_balance),
        )
        for width, cell in zip(widths, cells, strict=True):
            pdf.cell(width, 5, text(cell))
        pdf.ln(5)
    if not statement.lines:
        pdf.cell(0, 6, text(_("No operations this month.")), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
