"""The platform log: the handler (ops.platform_log), its writes and retention (ops.services),
and the staff's pages (/ops/platform-log/).

The handler under test replaces the root logger's own for each test and starts no writer
thread (`background=False`): `flush()` writes on the test's connection, inside its
transaction. One test runs the real writer thread, on a committed database.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mlmanager.core.tests.factories import UserFactory, member
from mlmanager.jobs import services as job_services
from mlmanager.jobs.models import Job
from mlmanager.jobs.runner import run_job
from mlmanager.ops import platform_log, services
from mlmanager.ops.models import PlatformLogEntry
from mlmanager.ops.platform_log import PlatformLogHandler, process_kind

URL = "/ops/platform-log/"
log = logging.getLogger("mlmanager.probe")


def _install(monkeypatch: pytest.MonkeyPatch, handler: PlatformLogHandler) -> None:
    """`handler` in place of the root logger's platform log handler, for this test."""
    root = logging.getLogger()
    kept = [each for each in root.handlers if not isinstance(each, PlatformLogHandler)]
    monkeypatch.setattr(root, "handlers", [*kept, handler])


@pytest.fixture
def handler(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlatformLogHandler]:
    settings.MLMANAGER_PLATFORM_LOG_ENABLED = True
    handler = PlatformLogHandler(background=False)
    handler.setLevel(logging.WARNING)
    _install(monkeypatch, handler)
    yield handler
    handler.close()


def _fails_to_divide() -> None:
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        log.warning("disk %s is %s", "media", "full", exc_info=True)


# --- the handler -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_warning_is_written_with_where_it_came_from(handler: PlatformLogHandler) -> None:
    before = timezone.now()
    _fails_to_divide()
    assert PlatformLogEntry.objects.count() == 0  # queued, not written by the logging call
    handler.flush()
    entry = PlatformLogEntry.objects.get()
    assert entry.level == logging.WARNING
    assert entry.logger == "mlmanager.probe"
    assert entry.module == "test_platform_log"
    assert entry.function == "_fails_to_divide"
    assert entry.line > 0
    assert entry.message == "disk media is full"
    assert entry.traceback.startswith("Traceback (most recent call last):")
    assert entry.traceback.endswith("ZeroDivisionError: division by zero")
    assert entry.process == "cli"  # pytest
    assert entry.host
    assert entry.pid > 0
    assert (entry.request_id, entry.address, entry.job_id) == ("", "", None)
    assert before - dt.timedelta(seconds=1) <= entry.created_at <= timezone.now()
    assert (handler.written, handler.dropped) == (1, 0)


@pytest.mark.django_db
def test_info_is_not_written_even_by_a_handler_set_lower(handler: PlatformLogHandler) -> None:
    handler.setLevel(logging.DEBUG)
    log.info("just so you know")
    log.error("it broke")
    handler.flush()
    assert list(PlatformLogEntry.objects.values_list("level", "message")) == [
        (logging.ERROR, "it broke")
    ]


@pytest.mark.django_db
def test_switched_off_nothing_is_queued(handler: PlatformLogHandler, settings: Any) -> None:
    settings.MLMANAGER_PLATFORM_LOG_ENABLED = False
    log.error("not recorded")
    handler.flush()
    assert PlatformLogEntry.objects.count() == 0


@pytest.mark.django_db
def test_a_full_queue_drops_and_counts_without_blocking(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.MLMANAGER_PLATFORM_LOG_ENABLED = True
    handler = PlatformLogHandler(capacity=3, background=False)
    _install(monkeypatch, handler)
    # In a thread: a put that waited for room (nothing is emptying the queue) would hang it,
    # and the assertion below would fail instead of the test run hanging.
    calls = threading.Thread(target=lambda: [log.warning("number %s", n) for n in range(5)])
    calls.start()
    calls.join(timeout=30)
    assert not calls.is_alive()
    assert handler.dropped == 2
    handler.flush()
    assert sorted(PlatformLogEntry.objects.values_list("message", flat=True)) == [
        "number 0",
        "number 1",
        "number 2",
    ]


@pytest.mark.django_db
def test_a_failing_write_never_reaches_the_caller(
    handler: PlatformLogHandler, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(**kwargs: Any) -> int:
        raise DatabaseError("the database is gone")

    monkeypatch.setattr(services, "platform_log_write", refuse)
    log.error("first")
    log.error("second")
    handler.flush()  # does not raise
    assert handler.dropped == 2
    assert PlatformLogEntry.objects.count() == 0
    complaints = [r for r in caplog.records if r.name == "mlmanager.ops.platform_log"]
    assert [r.getMessage() for r in complaints] == [
        "platform log: 2 entries not written: DatabaseError('the database is gone')"
    ]
    # The complaint went to the console only: nothing more was queued.
    handler.flush()
    assert handler.dropped == 2


@pytest.mark.django_db
def test_a_record_that_cannot_be_made_is_dropped_not_raised(
    handler: PlatformLogHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only this handler: the console's would complain about the bad format below.
    alone = logging.getLogger("mlmanager.probe.alone")
    monkeypatch.setattr(alone, "propagate", False)
    monkeypatch.setattr(alone, "handlers", [handler])
    alone.warning("%s and %s", "one argument")  # the format does not fit: kept as written

    def broken(record: logging.LogRecord) -> tuple[str, str]:
        raise RuntimeError("no request for you")

    monkeypatch.setattr(platform_log, "_request_fields", broken)
    alone.warning("lost")
    assert handler.dropped == 1
    handler.flush()
    assert list(PlatformLogEntry.objects.values_list("message", flat=True)) == ["%s and %s"]


@pytest.mark.django_db
def test_before_migrations_a_batch_is_dropped_silently(
    handler: PlatformLogHandler, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_table(**kwargs: Any) -> int:
        raise DatabaseError("no such table: ops_platformlogentry")

    monkeypatch.setattr(services, "platform_log_write", no_table)
    monkeypatch.setattr(services, "platform_log_table_exists", lambda: False)
    log.warning("during migrate")
    handler.flush()
    assert handler.dropped == 1
    assert not [r for r in caplog.records if r.name == "mlmanager.ops.platform_log"]


@pytest.mark.django_db
def test_what_is_logged_while_writing_is_not_queued_again(
    handler: PlatformLogHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = services.platform_log_write
    writes = []

    def chatty_write(**kwargs: Any) -> int:
        writes.append(len(kwargs["entries"]))
        # The database layer warning while a batch is written: were it queued, every write
        # would queue another.
        logging.getLogger("django.db.backends").warning("slow query")
        return real_write(**kwargs)

    monkeypatch.setattr(services, "platform_log_write", chatty_write)
    log.warning("the only one")
    logging.getLogger("mlmanager.ops.platform_log").warning("the handler's own trouble")
    handler.flush()
    handler.flush()
    assert writes == [1]
    assert list(PlatformLogEntry.objects.values_list("message", flat=True)) == ["the only one"]


@pytest.mark.django_db
def test_text_the_database_would_refuse_is_made_storable(handler: PlatformLogHandler) -> None:
    log.warning("a NUL\x00 byte and %s", "x" * 10_000)
    handler.flush()
    entry = PlatformLogEntry.objects.get()
    assert entry.message.startswith("a NUL\ufffd byte and xxx")
    assert len(entry.message) == platform_log.MESSAGE_MAX_CHARS
    assert entry.message.endswith("…")


@pytest.mark.django_db
def test_one_bad_entry_does_not_lose_the_others() -> None:
    good = {
        "created_at": timezone.now(),
        "level": logging.ERROR,
        "logger": "a",
        "message": "kept",
        "host": "h",
        "process": "web",
    }
    below_warning = {**good, "level": logging.INFO, "message": "refused by the constraint"}
    assert services.platform_log_write(entries=[good, below_warning, good]) == 2
    assert PlatformLogEntry.objects.filter(message="kept").count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_writer_thread_writes_on_its_own_connection(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.MLMANAGER_PLATFORM_LOG_ENABLED = True
    handler = PlatformLogHandler()  # background: a writer thread
    _install(monkeypatch, handler)
    log.error("from the %s", "thread")
    handler.flush(timeout=30)
    assert list(PlatformLogEntry.objects.values_list("message", flat=True)) == ["from the thread"]
    writer = handler._writer
    assert writer is not None and writer is not threading.current_thread()
    handler.close()
    writer.join(timeout=30)
    assert not writer.is_alive()
    log.error("after close")  # dropped quietly
    assert PlatformLogEntry.objects.count() == 1


@pytest.mark.django_db
def test_a_request_gives_its_id_and_address(handler: PlatformLogHandler) -> None:
    response = Client(REMOTE_ADDR="198.51.100.4").get("/no-such-page/")
    assert response.status_code == 404
    handler.flush()
    entry = PlatformLogEntry.objects.get(logger="django.request")
    assert entry.message == "Not Found: /no-such-page/"
    assert len(response["X-Request-ID"]) == 32
    assert (entry.request_id, entry.address) == (response["X-Request-ID"], "198.51.100.4")


@pytest.mark.django_db
def test_a_request_id_is_taken_from_a_trusted_proxy_only(
    handler: PlatformLogHandler, settings: Any
) -> None:
    sent = {"HTTP_X_REQUEST_ID": "edge-42", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    assert Client().get("/no-such-page/", **sent)["X-Request-ID"] != "edge-42"
    settings.MLMANAGER_TRUSTED_PROXIES = 1
    assert Client().get("/no-such-page/", **sent)["X-Request-ID"] == "edge-42"
    handler.flush()
    assert PlatformLogEntry.objects.filter(request_id="edge-42", address="203.0.113.9").exists()


@pytest.mark.django_db
def test_a_record_logged_inside_a_job_carries_its_id(handler: PlatformLogHandler) -> None:
    owner = member("owner")
    job = job_services.job_create(team=owner.current_team, created_by=owner, kind="dataset.process")

    def work(context: Any) -> dict[str, Any]:
        log.warning("a column was skipped")
        return {}

    run_job(job.pk, work)
    log.warning("outside any job")
    handler.flush()
    assert Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED
    assert dict(PlatformLogEntry.objects.values_list("message", "job_id")) == {
        "a column was skipped": job.pk,
        "outside any job": None,
    }


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["/venv/lib/python3.11/site-packages/gunicorn/__main__.py", "config.wsgi"], "web"),
        (["/venv/lib/python3.11/site-packages/uvicorn/__main__.py", "config.asgi"], "web"),
        (["manage.py", "runserver"], "web"),
        (["/srv/mlmanager/cli.py", "worker", "--queue", "training"], "worker"),
        (["/venv/bin/mlmanager", "worker"], "worker"),
        (["/venv/bin/celery", "-A", "mlmanager.jobs.celery_app", "worker"], "worker"),
        (["/venv/bin/celery", "-A", "mlmanager.jobs.celery_app", "inspect"], "cli"),
        (["manage.py", "scheduler"], "scheduler"),
        (["/venv/bin/mlmanager", "mqtt"], "bridge"),
        (["manage.py", "migrate"], "cli"),
        ([], "cli"),
    ],
)
def test_the_kind_of_process_comes_from_its_command_line(argv: list[str], kind: str) -> None:
    assert process_kind(argv) == kind


# --- retention ---------------------------------------------------------------------------------


def _entry(at: dt.datetime, **fields: Any) -> PlatformLogEntry:
    values = {
        "created_at": at,
        "level": logging.WARNING,
        "logger": "mlmanager.probe",
        "module": "probe",
        "function": "check",
        "message": "something",
        "host": "web-1",
        "process": "web",
        **fields,
    }
    return PlatformLogEntry.objects.create(**values)


@pytest.mark.django_db
def test_retention_deletes_old_entries_only_in_batches(settings: Any) -> None:
    settings.MLMANAGER_PLATFORM_LOG_RETENTION_DAYS = 30
    now = timezone.now()
    for days in (31, 40, 45, 90, 400):
        _entry(now - dt.timedelta(days=days), message=f"{days} days old")
    kept = [_entry(now - dt.timedelta(days=29)), _entry(now)]
    with CaptureQueriesContext(connection) as queries:
        assert services.platform_log_delete_expired(now=now, batch_size=2) == 5
    deletes = [q for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert sorted(PlatformLogEntry.objects.values_list("pk", flat=True)) == [e.pk for e in kept]


def test_retention_is_a_periodic_task() -> None:
    from mlmanager.core.registries import periodic_tasks

    task = periodic_tasks.get("ops.platform_log_retention")
    assert task.run is services.platform_log_delete_expired
    assert task.interval_s() == 3600.0


# --- the pages ---------------------------------------------------------------------------------


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff(db: None) -> Any:
    return UserFactory(is_staff=True)


START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_staff_see_entries_newest_first(staff: Any) -> None:
    _entry(START, message="older one")
    _entry(START + dt.timedelta(minutes=5), message="newer one", level=logging.ERROR)
    response = _client(staff).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="platform-log-entry"') == 2
    assert html.index("newer one") < html.index("older one")
    assert "2026-03-01 12:05:00" in html  # to the second, in the reader's format


@pytest.mark.django_db
def test_times_in_the_readers_zone(staff: Any) -> None:
    staff.time_zone = "Asia/Tokyo"
    staff.save()
    _entry(START)
    assert "2026-03-01 21:00:00" in _client(staff).get(URL).content.decode()


@pytest.mark.django_db
def test_others_get_404_and_strangers_the_login_page() -> None:
    entry = _entry(START)
    owner = member("owner")  # a team's owner, not staff
    assert _client(owner).get(URL).status_code == 404
    assert _client(owner).get(f"{URL}{entry.pk}/").status_code == 404
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_the_staff_link_is_in_the_menu_for_staff_only(staff: Any) -> None:
    assert 'data-testid="menu-platform-log"' in _client(staff).get("/jobs/").content.decode()
    owner = member("owner")
    assert 'data-testid="menu-platform-log"' not in _client(owner).get("/jobs/").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("level=error", {"job failed", "disk full"}),
        ("level=critical", {"disk full"}),
        ("logger=mlmanager.jobs", {"job failed", "job slow"}),
        ("logger=mlmanager.job", set()),  # a logger and its children, not any prefix
        ("process=worker", {"job failed", "job slow"}),
        ("q=ZeroDivision", {"job failed"}),
        ("q=DISK", {"disk full"}),
        ("since=2026-03-02", {"disk full", "job slow"}),
        ("until=2026-03-01", {"job failed", "not found"}),
        ("since=2026-03-02T00:00:00Z&until=2026-03-02T12:00:00Z", {"job slow"}),
        ("request_id=abc123", {"not found"}),
        ("job_id=7", {"job failed", "job slow"}),
        ("level=error&process=web&logger=&q=", {"disk full"}),  # empty fields mean any
        ("level=bogus", set()),  # an invalid filter shows nothing, not everything
    ],
)
def test_filters(staff: Any, query: str, expected: set[str]) -> None:
    _entry(START, message="not found", logger="django.request", request_id="abc123")
    _entry(
        START + dt.timedelta(hours=1),
        message="job failed",
        logger="mlmanager.jobs.runner",
        level=logging.ERROR,
        process="worker",
        job_id=7,
        traceback="Traceback ...\nZeroDivisionError: division by zero",
    )
    _entry(
        START + dt.timedelta(days=1),
        message="job slow",
        logger="mlmanager.jobs",
        process="worker",
        job_id=7,
    )
    _entry(START + dt.timedelta(days=2), message="disk full", level=logging.CRITICAL)
    response = _client(staff).get(f"{URL}?{query}", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith('<div id="platform-log-table">')  # the htmx partial
    shown = {m for m in ("not found", "job failed", "job slow", "disk full") if m in html}
    assert shown == expected


@pytest.mark.django_db
def test_an_entry_shows_its_traceback_and_links_to_its_request(staff: Any) -> None:
    entry = _entry(
        START,
        message="it <broke>",
        traceback='File "x.py", line 1\nValueError: <bad>',
        request_id="abc123",
        address="198.51.100.4",
    )
    html = _client(staff).get(f"{URL}{entry.pk}/").content.decode()
    assert "ValueError: &lt;bad&gt;" in html  # escaped
    assert "it &lt;broke&gt;" in html
    assert f'href="{URL}?request_id=abc123"' in html
    assert "198.51.100.4" in html
    assert _client(staff).get(f"{URL}999999/").status_code == 404


@pytest.mark.django_db
def test_the_list_costs_the_same_queries_for_few_or_many_entries(staff: Any) -> None:
    client = _client(staff)
    _entry(START, traceback="Traceback")
    client.get(URL)  # sessions, caches warm
    with CaptureQueriesContext(connection) as few:
        assert client.get(URL).status_code == 200
    for minute in range(40):
        _entry(START + dt.timedelta(minutes=minute), request_id=f"r{minute}", job_id=minute + 1)
    with CaptureQueriesContext(connection) as many:
        response = client.get(URL)
    assert response.content.decode().count('data-testid="platform-log-entry"') == 41
    # No query per row (a deferred traceback read by the template would be one each).
    assert len(many.captured_queries) == len(few.captured_queries)


@pytest.mark.django_db
def test_what_was_queued_before_switching_off_is_dropped(
    handler: PlatformLogHandler, settings: Any
) -> None:
    log.warning("queued while on")
    settings.MLMANAGER_PLATFORM_LOG_ENABLED = False
    handler.flush()
    assert (PlatformLogEntry.objects.count(), handler.dropped) == (0, 1)
