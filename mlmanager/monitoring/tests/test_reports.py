"""Scheduled reports: the API, the slot in each recipient's time zone, the e-mail a real SMTP
server receives (charts as inline PNG images by cid, the period's unmuted alerts), once per
slot however many schedulers run, and send now."""

from __future__ import annotations

import struct
import threading
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from mlmanager.accounts.caller import Caller
from mlmanager.audit.models import AuditEvent
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.monitoring.models import Alert, Chart, Dashboard, Report, ReportDelivery
from mlmanager.monitoring.series import series_validate
from mlmanager.monitoring.services.reports import report_slot, reports_send_due
from mlmanager.monitoring.tests.notify_support import (
    Mailbox,
    firing_alert,
    mailbox,  # noqa: F401 - a fixture
    rule_of,
)
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.tests.factories import sensor_of, site_of, site_role

pytestmark = pytest.mark.django_db

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def plant() -> dict[str, Any]:
    """A team with a site, a sensor with a day of readings (one per 10 minutes), a chart of
    it; the owner (in Berlin) and an operator of the site (in UTC)."""
    owner = member("owner")
    owner.time_zone = "Europe/Berlin"
    owner.save(update_fields=["time_zone"])
    team = owner.current_team
    site = site_of(team, name="Bakery")
    sensor = sensor_of(site, name="Oven")
    operator = member("viewer", team=team)
    site_role(site, operator, "operator")
    now = timezone.now().replace(second=0, microsecond=0)
    readings_ingest(
        caller=Caller.for_session(owner),
        readings=[
            {
                "sensor": sensor.pk,
                "timestamp": (now - timedelta(minutes=10 * step)).isoformat(),
                "value": 60.0 + (step % 12) * 2,
            }
            for step in range(1, 145)
        ],
    )
    specs, _site = series_validate(
        caller=Caller.for_session(owner),
        team_id=team.pk,
        specs=[{"kind": "sensor", "sensor": sensor.pk, "aggregation": "last", "period_s": 0}],
    )
    chart = Chart.objects.create(team=team, name="Oven temperature", series=specs, site=site)
    return {
        "team": team,
        "site": site,
        "sensor": sensor,
        "chart": chart,
        "owner": owner,
        "operator": operator,
        "now": now,
    }


def _local_time(now: datetime, zone: str, minutes_before: int) -> str:
    return (now - timedelta(minutes=minutes_before)).astimezone(ZoneInfo(zone)).strftime("%H:%M")


def _parts(message: EmailMessage) -> tuple[str, str, list[EmailMessage]]:
    text = html = ""
    images = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "text/plain":
            text = part.get_content()
        elif kind == "text/html":
            html = part.get_content()
        elif kind == "image/png":
            images.append(part)
    return text, html, images  # type: ignore[return-value]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_MAGIC)
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_report_slots_follow_each_recipients_time_zone() -> None:
    report = Report(frequency="daily", time_of_day=time(8, 0), weekday=0)
    now = datetime(2026, 1, 14, 15, 0, tzinfo=UTC)  # a Wednesday
    assert report_slot(report=report, time_zone="America/New_York", now=now) == datetime(
        2026, 1, 14, 13, 0, tzinfo=UTC
    )
    assert report_slot(report=report, time_zone="Asia/Tokyo", now=now) == datetime(
        2026, 1, 13, 23, 0, tzinfo=UTC
    )
    # Before today's time: yesterday's slot.
    early = datetime(2026, 1, 14, 7, 59, tzinfo=UTC)
    assert report_slot(report=report, time_zone="UTC", now=early) == datetime(
        2026, 1, 13, 8, 0, tzinfo=UTC
    )
    weekly = Report(frequency="weekly", time_of_day=time(9, 30), weekday=0)  # Mondays
    assert report_slot(report=weekly, time_zone="Europe/Paris", now=now) == datetime(
        2026, 1, 12, 8, 30, tzinfo=UTC
    )
    monday_early = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)  # 09:00 in Paris
    assert report_slot(report=weekly, time_zone="Europe/Paris", now=monday_early) == datetime(
        2026, 1, 5, 8, 30, tzinfo=UTC
    )
    # Summer time moves the slot in UTC, not in the recipient's day.
    july = datetime(2026, 7, 15, 15, 0, tzinfo=UTC)
    assert report_slot(report=report, time_zone="America/New_York", now=july) == datetime(
        2026, 7, 15, 12, 0, tzinfo=UTC
    )


def test_the_report_email_carries_its_charts_as_inline_images_and_the_alerts(
    plant: dict[str, Any],
    mailbox: Mailbox,  # noqa: F811 - the fixture
) -> None:
    team, site, sensor, now = plant["team"], plant["site"], plant["sensor"], plant["now"]
    owner, operator = plant["owner"], plant["operator"]
    rule = rule_of(team, site=site, sensors=(sensor,), name="Oven hot")
    shown, _event = firing_alert(rule, title="Oven above 80", firing_at=now - timedelta(hours=5))
    Alert.objects.filter(pk=shown.pk).update(state="resolved", resolved_at=now - timedelta(hours=4))
    still_open, _event = firing_alert(
        rule, title="Oven above 80 again", firing_at=now - timedelta(hours=1)
    )
    # After the period's end (the slot): next report's.
    after_slot = rule_of(team, site=site, sensors=(sensor,), name="Late")
    firing_alert(after_slot, title="Too late for this one", firing_at=now - timedelta(minutes=5))
    noisy = rule_of(team, site=site, sensors=(sensor,), name="Noisy")
    firing_alert(noisy, title="Muted one", muted_at=now)
    old_rule = rule_of(team, site=site, sensors=(sensor,), name="Old")
    old, _event = firing_alert(old_rule, title="Last week's", firing_at=now - timedelta(days=3))
    Alert.objects.filter(pk=old.pk).update(state="resolved", resolved_at=now - timedelta(days=2))
    other_sensor = sensor_of(site, name="Door")
    unrelated = rule_of(team, site=site, sensors=(other_sensor,), name="Door open")
    firing_alert(unrelated, title="Door open")

    client = api_client_for(owner)
    created = client.post(
        "/api/v1/reports/",
        {
            "name": "Morning oven",
            "chart": plant["chart"].pk,
            "frequency": "daily",
            "time_of_day": _local_time(now, "Europe/Berlin", minutes_before=10),
            "recipients": [owner.pk, operator.pk],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["recipients"] == sorted([owner.pk, operator.pk])
    assert body["chart"] == plant["chart"].pk and body["dashboard"] is None
    assert body["last_sent_at"] is None

    # Only the owner's slot (08:xx in Berlin) has come; the operator's is that time in UTC.
    assert reports_send_due(now) == 1
    [message] = mailbox.messages
    assert message["To"] == owner.email
    assert message["Subject"].startswith("Morning oven: ")
    assert message.get_content_type() == "multipart/related"
    text, html, images = _parts(message)
    assert len(images) == 1
    cid = images[0]["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html
    assert images[0].get_content_disposition() == "inline"
    assert _png_size(images[0].get_content()) == (800, 300)
    for part in (text, html):
        assert "Oven above 80" in part and "Oven above 80 again" in part
        assert "Muted one" not in part and "Last week&#x27;s" not in part
        assert "Last week's" not in part and "Door open" not in part
        assert "Too late for this one" not in part
    assert "Oven temperature" in html
    assert f"/monitoring/alerts/{still_open.pk}/" in html

    delivery = ReportDelivery.objects.get()
    assert delivery.recipient == owner and delivery.sent_at is not None and delivery.error == ""
    assert client.get(f"/api/v1/reports/{body['id']}/").json()["last_sent_at"] is not None
    # Once per slot.
    assert reports_send_due(now + timedelta(minutes=1)) == 0
    assert len(mailbox.messages) == 1
    # The operator's slot (the same clock time in UTC) comes Berlin's UTC offset later.
    offset = now.astimezone(ZoneInfo("Europe/Berlin")).utcoffset()
    assert offset is not None
    assert reports_send_due(now + offset - timedelta(minutes=11)) == 0  # not yet
    later = now + offset
    assert reports_send_due(later) == 1
    assert [m["To"] for m in mailbox.messages] == [owner.email, operator.email]
    assert ReportDelivery.objects.count() == 2


def test_a_dashboard_report_has_the_charts_each_recipient_sees(
    plant: dict[str, Any],
    mailbox: Mailbox,  # noqa: F811 - the fixture
) -> None:
    team, owner, operator, now = plant["team"], plant["owner"], plant["operator"], plant["now"]
    other_site = site_of(team, name="Warehouse")
    other_sensor = sensor_of(other_site, name="Humidity")
    specs, _site = series_validate(
        caller=None,
        team_id=team.pk,
        specs=[{"kind": "sensor", "sensor": other_sensor.pk, "period_s": 0}],
    )
    warehouse_chart = Chart.objects.create(
        team=team, name="Warehouse humidity", series=specs, site=other_site
    )
    dashboard = Dashboard.objects.create(
        team=team,
        name="Everything",
        layout=[
            {"chart": warehouse_chart.pk, "x": 0, "y": 1, "w": 12, "h": 4},
            {"chart": plant["chart"].pk, "x": 0, "y": 0, "w": 12, "h": 4},
        ],
    )
    operator.time_zone = "Europe/Berlin"
    operator.save(update_fields=["time_zone"])
    client = api_client_for(owner)
    created = client.post(
        "/api/v1/reports/",
        {
            "name": "Daily overview",
            "dashboard": dashboard.pk,
            "time_of_day": _local_time(now, "Europe/Berlin", minutes_before=5),
            "recipients": [owner.pk, operator.pk],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert reports_send_due(now) == 2
    _text, owner_html, owner_images = _parts(mailbox.to(owner.email)[0])
    _text, operator_html, operator_images = _parts(mailbox.to(operator.email)[0])
    # In the layout's order (row, then column); the operator does not see the warehouse.
    assert owner_html.index("Oven temperature") < owner_html.index("Warehouse humidity")
    assert len(owner_images) == 2 and len(operator_images) == 1
    assert "Warehouse humidity" not in operator_html


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_send_one_report(
    plant: dict[str, Any],
    mailbox: Mailbox,  # noqa: F811 - the fixture
) -> None:
    owner, now = plant["owner"], plant["now"]
    report = Report.objects.create(
        team=plant["team"],
        name="Twice?",
        chart=plant["chart"],
        time_of_day=(now - timedelta(minutes=3)).astimezone(ZoneInfo("Europe/Berlin")).time(),
    )
    report.recipients.set([owner])
    if connection.vendor == "postgresql":
        sent: list[int] = []
        start = threading.Barrier(2)

        def scheduler() -> None:
            try:
                start.wait()
                sent.append(reports_send_due(now))
            finally:
                connection.close()

        threads = [threading.Thread(target=scheduler) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(sent) == [0, 1]
    else:
        assert reports_send_due(now) + reports_send_due(now) == 1
    assert len(mailbox.messages) == 1
    assert ReportDelivery.objects.filter(report=report).count() == 1


def test_a_slot_missed_by_more_than_an_hour_is_not_sent_late(
    plant: dict[str, Any],
    mailbox: Mailbox,  # noqa: F811 - the fixture
) -> None:
    now = plant["now"]
    report = Report.objects.create(
        team=plant["team"],
        name="Missed",
        chart=plant["chart"],
        time_of_day=(now - timedelta(minutes=61)).astimezone(ZoneInfo("Europe/Berlin")).time(),
    )
    report.recipients.set([plant["owner"]])
    inactive = Report.objects.create(
        team=plant["team"],
        name="Off",
        chart=plant["chart"],
        active=False,
        time_of_day=(now - timedelta(minutes=1)).astimezone(ZoneInfo("Europe/Berlin")).time(),
    )
    inactive.recipients.set([plant["owner"]])
    assert reports_send_due(now) == 0
    assert mailbox.messages == [] and ReportDelivery.objects.count() == 0


def test_a_failed_report_is_sent_again_later_once_and_not_for_ever(
    plant: dict[str, Any],
    mailbox: Mailbox,  # noqa: F811 - the fixture
) -> None:
    """The SMTP server refuses (a temporary 451): the delivery records the error and is tried
    again after REPORT_RETRY_AFTER, by one scheduler of two, with the slot's period; a
    recipient the server keeps refusing gets REPORT_MAX_ATTEMPTS tries, then the error
    stays."""
    from mlmanager.monitoring.services.reports import REPORT_MAX_ATTEMPTS, REPORT_RETRY_AFTER

    now = plant["now"]
    report = Report.objects.create(
        team=plant["team"],
        name="Morning",
        chart=plant["chart"],
        time_of_day=(now - timedelta(minutes=1)).astimezone(ZoneInfo("Europe/Berlin")).time(),
    )
    report.recipients.set([plant["owner"]])
    mailbox.refuse = 1
    assert reports_send_due(now) == 0
    delivery = ReportDelivery.objects.get(report=report)
    assert delivery.sent_at is None and "451" in delivery.error and delivery.attempts == 1
    assert delivery.next_attempt_at is not None
    assert reports_send_due(now + timedelta(seconds=30)) == 0  # not yet
    later = delivery.next_attempt_at + timedelta(seconds=1)
    assert reports_send_due(later) + reports_send_due(later) == 1  # two schedulers, one send
    delivery.refresh_from_db()
    assert delivery.sent_at is not None and delivery.error == "" and delivery.attempts == 2
    assert delivery.next_attempt_at is None
    [message] = mailbox.messages
    assert message["To"] == plant["owner"].email

    # A server that keeps refusing: REPORT_MAX_ATTEMPTS tries in all, then none.
    ReportDelivery.objects.all().delete()
    mailbox.messages.clear()
    mailbox.refuse = 100
    moment = now
    assert reports_send_due(moment) == 0
    for wait in REPORT_RETRY_AFTER:
        moment += wait + timedelta(seconds=1)
        assert reports_send_due(moment) == 0
    delivery = ReportDelivery.objects.get(report=report)
    assert delivery.attempts == REPORT_MAX_ATTEMPTS and delivery.next_attempt_at is None
    assert delivery.sent_at is None and "451" in delivery.error
    assert mailbox.refuse == 100 - REPORT_MAX_ATTEMPTS
    assert reports_send_due(moment + timedelta(days=1)) == 0  # a day later: the next slot
    assert mailbox.messages == []


def test_send_now_and_who_may_change_reports(
    plant: dict[str, Any],
    mailbox: Mailbox,  # noqa: F811 - the fixture
) -> None:
    team, owner, operator, chart = plant["team"], plant["owner"], plant["operator"], plant["chart"]
    client = api_client_for(owner)
    report = client.post(
        "/api/v1/reports/",
        {
            "name": "Weekly",
            "chart": chart.pk,
            "frequency": "weekly",
            "weekday": 4,
            "time_of_day": "07:30",
        },
        format="json",
    ).json()
    assert report["recipients"] == [owner.pk]  # the caller, when none are given
    assert report["time_of_day"] == "07:30:00"
    sent = client.post(f"/api/v1/reports/{report['id']}/send_now/")
    assert sent.status_code == 200
    [delivery] = sent.json()["deliveries"]
    assert delivery["recipient"] == owner.pk and delivery["sent_at"] and delivery["error"] == ""
    assert [m["To"] for m in mailbox.messages] == [owner.email]
    assert AuditEvent.objects.filter(action="report.sent").count() == 1

    # The operator sees the report but may not change or send it (site MAINTAIN is needed).
    as_operator = api_client_for(operator)
    assert as_operator.get(f"/api/v1/reports/{report['id']}/").status_code == 200
    assert as_operator.get("/api/v1/reports/").json()["count"] == 1
    assert as_operator.post(f"/api/v1/reports/{report['id']}/send_now/").status_code == 403
    assert (
        as_operator.patch(
            f"/api/v1/reports/{report['id']}/", {"active": False}, format="json"
        ).status_code
        == 403
    )
    # An editor without a role on the site does not see it at all.
    editor = member("editor", team=team)
    as_editor = api_client_for(editor)
    assert as_editor.get(f"/api/v1/reports/{report['id']}/").status_code == 404
    assert as_editor.get("/api/v1/reports/").json()["count"] == 0
    # Recipients must see the chart.
    refused = client.patch(
        f"/api/v1/reports/{report['id']}/", {"recipients": [owner.pk, editor.pk]}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["details"] == {"field": "recipients[1]"}
    changed = client.patch(
        f"/api/v1/reports/{report['id']}/",
        {"recipients": [operator.pk], "frequency": "daily"},
        format="json",
    )
    assert changed.status_code == 200
    assert changed.json()["recipients"] == [operator.pk]
    assert changed.json()["frequency"] == "daily"
    # Exactly one of chart and dashboard; another team's chart is not found.
    stranger_chart = Chart.objects.create(team=member("owner").current_team, name="Theirs")
    for payload, status in (
        ({"chart": stranger_chart.pk}, 404),
        ({}, 400),
        ({"chart": chart.pk, "dashboard": 1}, 400),
    ):
        answer = client.post(
            "/api/v1/reports/", {"name": "X", "time_of_day": "08:00", **payload}, format="json"
        )
        assert answer.status_code == status, payload
    assert client.delete(f"/api/v1/reports/{report['id']}/").status_code == 204
    assert sorted(
        AuditEvent.objects.filter(action__startswith="report.").values_list("action", flat=True)
    ) == ["report.changed", "report.created", "report.deleted", "report.sent"]
