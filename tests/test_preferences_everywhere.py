"""Every page shows numbers, dates and times in the signed-in user's format (issue 12, item 9).

A user who reads a decimal comma, day/month/year with '/', a 12-hour clock and the Asia/Kolkata
zone (UTC+05:30, so a time left in UTC shows) opens every page of the product with real objects
behind it — a dataset with a profile (numbers with float noise, dates), a trained classifier
and a regression model whose versions show every chart, a run in progress with its log, a
prediction in the log, a finished batch, an invitation, an API token, and for images (issue 16)
an image dataset of each task with its gallery and an image's page, an image model trained
through its job, an image prediction with its review — and the text of each
page (not its attributes, scripts or form values) holds no point decimal, no year-first (ISO)
date, no 24-hour time and no float noise.

A page added later fails the test until it is visited here too: every named URL of the apps'
pages is either scanned or listed in NOT_PAGES.
"""

from __future__ import annotations

import io
import re
import zipfile
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone
from PIL import Image

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.services import api_token_create, invitation_create
from mlmanager.core import formatting
from mlmanager.datasets.models import Dataset
from mlmanager.engine.vision.testing import generate_shape_image
from mlmanager.jobs import services as jobs
from mlmanager.jobs.models import Job
from mlmanager.machines import services as machines
from mlmanager.machines.models import Machine, TrainingRun
from mlmanager.machines.tests.conftest import make_dataset  # noqa: F401 - fixture
from mlmanager.machines.tests.showcase import regression_model, show_every_chart
from mlmanager.predictions.models import BatchPrediction, Prediction
from mlmanager.predictions.tests.conftest import (  # noqa: F401 - fixtures
    binary_model,
    customers,
    make_model,
    trained_binary,
)

ZONE = "Asia/Kolkata"
PREFERENCES = {
    "decimal_separator": ",",
    "date_order": "DMY",
    "date_separator": "/",
    "time_format": "12",
    "time_zone": ZONE,
}

# The apps whose pages a signed-in user sees (Django's admin and the API's Swagger UI are the
# libraries' own pages, in their own formats).
PAGE_NAMESPACES = ("accounts", "datasets", "machines", "jobs", "predictions")
# Named URLs that are not pages shown to a signed-in user: actions that only take a POST and
# redirect, files, and pages for signed-out visitors (who have no preferences).
NOT_PAGES = {
    "accounts:login",
    "accounts:logout",
    "accounts:signup",
    "accounts:signup_done",
    "accounts:activate",
    "accounts:activate_choose_password",
    "accounts:password_reset",
    "accounts:password_reset_done",
    "accounts:password_reset_confirm",
    "accounts:password_reset_complete",
    "accounts:team_switch",
    "accounts:team_leave",
    "accounts:membership_update",
    "accounts:invitation_revoke",
    "accounts:api_token_revoke",
    "datasets:rename",
    "datasets:column_type",
    "datasets:delete",
    "datasets:confirm",
    "datasets:image_file",
    "jobs:cancel",
    "machines:train",
    "machines:edit",
    "machines:delete",
    "machines:version_activate",
    "machines:run_cancel",
    "machines:version_threshold",
    "predictions:feedback_dataset",
    "predictions:batch_download",
    "predictions:feedback",
    "predictions:batch_masks",
    "predictions:review",
    "predictions:image",
    "predictions:overlay",
    "predictions:report",
    # Forms' POST targets and a file download (issue 18)
    "datasets:append_rows",
    "datasets:graph_delete",
    "machines:dataset_change",
    "machines:experimenter",
    "machines:aliases",
    "machines:retraining",
    "machines:run_rerun",
    "machines:run_artifact",
}


class _PageText(HTMLParser):
    """The text a reader sees: no attributes, and not what <script>, <style>, a <textarea>
    (a form's value) or a <select> hold — a choice's label may show the other formats on
    purpose ("24-hour (17:30)" beside "12-hour (5:30 PM)")."""

    SKIPPED = frozenset({"script", "style", "textarea", "select"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self._skipping.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def page_text(html: str) -> str:
    parser = _PageText()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


# A number in the text, with its separators. With a decimal comma, "1.234" is one thousand
# two hundred and thirty-four, so a dot followed by exactly three digits cannot be told from a
# leaked point decimal: the objects below use values whose decimals are not three digits long.
_NUMBER = re.compile(r"\d[\d.,]*\d")
_COMMA_LOCALE_NUMBER = re.compile(r"^(?:[1-9]\d{0,2}(?:\.\d{3})+|\d+)(?:,\d+)?$")
# ISO dates, and year-first dates with any separator (the reader's order is day first).
_YEAR_FIRST_DATE = re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b")
_TIME = re.compile(r"(?<![\d:])\d{1,2}:\d{2}(?::\d{2})?(?![\d:])(?!\s?[AP]M)")
_FLOAT_NOISE = re.compile(r"\d[.,]\d*(?:0{6,}|9{6,})\d")


def format_problems(text: str) -> list[str]:
    """What in `text` ignores the preferences above."""
    problems = [
        f"point decimal {token!r}"
        for token in _NUMBER.findall(text)
        if "." in token and not _COMMA_LOCALE_NUMBER.match(token)
    ]
    problems += [f"year-first date {match!r}" for match in _YEAR_FIRST_DATE.findall(text)]
    problems += [f"24-hour time {match!r}" for match in _TIME.findall(text)]
    problems += [f"float noise {match.group()!r}" for match in _FLOAT_NOISE.finditer(text)]
    return problems


def test_the_scanner_finds_what_it_is_for() -> None:
    """The check itself: each kind of leak is found, a correct page passes."""
    assert format_problems("best rmse 2.0508 · 1.234.567,89 · 06/12/2026 5:30:12 PM") == [
        "point decimal '2.0508'"
    ]
    assert format_problems("uploaded 2026-12-06 at 17:30, read 18:45:30") == [
        "year-first date '2026-12-06'",
        "24-hour time '17:30'",
        "24-hour time '18:45:30'",
    ]
    assert format_problems("0,30000000000000004") == ["float noise '0,30000000000000004'"]
    assert format_problems("0.3") == ["point decimal '0.3'"]


# -- the objects behind every page -----------------------------------------------------------


def _noisy_frame() -> pd.DataFrame:
    """Customers with values as computations leave them (0.1 + 0.2) and dates with times."""
    frame = customers(rows=60)
    frame["ratio"] = [0.1 + 0.2, 13.690000000000001, 0.29999999999999993] * 20
    frame["visited"] = pd.to_datetime("2023-04-05 18:45:30") + pd.to_timedelta(range(60), unit="h")
    return frame


# The engine's own words (engine/training/runner.py) while a run searches.
RUN_MESSAGE = "Trying models: 1,254 tried, best rmse 0.7512 (enet)"
LOG_LINE = "Read 1,000 rows in 0.35 s"


def _ended_run(owner: Any, machine: Machine) -> TrainingRun:
    """A run of `machine` that is over (a second run to compare with the one training)."""
    job = jobs.job_create(
        team=owner.current_team, created_by=owner, kind="machine.train", description="Train"
    )
    return TrainingRun.objects.create(
        team=owner.current_team,
        machine=machine,
        job=job,
        created_by=owner,
        time_budget_s=60,
        is_active=False,
        candidates=1254,
        best_score=0.7512,
    )


def _running_training(owner: Any, machine: Machine) -> TrainingRun:
    job = jobs.job_create(
        team=owner.current_team, created_by=owner, kind="machine.train", description="Train"
    )
    jobs.job_claim(job_id=job.pk, worker="preferences-test:1")
    jobs.job_report_progress(job_id=job.pk, progress=40, message=RUN_MESSAGE)
    jobs.job_append_log(job_id=job.pk, line=LOG_LINE)
    return TrainingRun.objects.create(
        team=owner.current_team,
        machine=machine,
        job=job,
        created_by=owner,
        time_budget_s=60,
        candidates=1254,
        best_score=0.7512,
        best_estimator="enet",
    )


# -- image objects (issue 16) -----------------------------------------------------------------

# Digits of three classes, half of them stored larger, so the profile's median side is not a
# whole number (9.5, a decimal to format); four per class leave a holdout image of each.
IMAGE_CLASSES = 3
IMAGES_PER_CLASS = 4
IMAGE_SIDES = (8, 11)
SHAPE_IMAGES = 6


def _png(array: np.ndarray, side: int | None = None) -> bytes:
    image = Image.fromarray(array, mode="L")
    if side is not None and image.size != (side, side):
        image = image.resize((side, side), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _zip_upload(name: str, entries: dict[str, bytes]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, content in entries.items():
            archive.writestr(entry, content)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def _digit_pngs() -> tuple[dict[str, bytes], bytes]:
    """`<label>/<n>.png` of scikit-learn's digits, and one more digit (to predict)."""
    from sklearn.datasets import load_digits

    digits = load_digits(n_class=IMAGE_CLASSES)
    entries: dict[str, bytes] = {}
    kept: dict[int, int] = {}
    unseen = b""
    for index, (pixels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        array = np.clip(pixels * (255.0 / 16.0), 0, 255).astype(np.uint8)
        if kept.get(int(target), 0) >= IMAGES_PER_CLASS:
            unseen = unseen or _png(array)
            continue
        side = IMAGE_SIDES[kept.get(int(target), 0) % len(IMAGE_SIDES)]
        kept[int(target)] = kept.get(int(target), 0) + 1
        entries[f"digits/{target}/{index}.png"] = _png(array, side)
    entries["digits/0/broken.png"] = b"\x89PNG\r\n\x1a\n not really"  # listed as skipped
    return entries, unseen


def _shape_pngs() -> dict[str, bytes]:
    generator = np.random.default_rng(3)
    entries = {}
    for index in range(SHAPE_IMAGES):
        image, mask = generate_shape_image(generator, 16)
        entries[f"images/{index}.png"] = _png(image)
        entries[f"masks/{index}.png"] = _png(mask)
    return entries


def _upload_images(client: Client, name: str, entries: dict[str, bytes]) -> Dataset:
    response = client.post(
        reverse("datasets:list"), {"file": _zip_upload(f"{name}.zip", entries), "name": name}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return Dataset.objects.get(name=name)


def _image_pages(owner: Any, client: Client, run_jobs: Callable[[], None]) -> dict[str, str]:
    """An image dataset of each task (uploaded and processed), a digits model trained by its
    job (the real vision engine, two epochs, recorded by versions.vision_version_create), and
    a prediction of it, reviewed."""
    entries, unseen = _digit_pngs()
    digits = _upload_images(client, "Digits", entries)
    shapes = _upload_images(client, "Shapes", _shape_pngs())
    run_jobs()
    for dataset in (digits, shapes):
        dataset.refresh_from_db()
        assert dataset.status == Dataset.Status.READY, dataset.error
    caller = Caller.for_session(owner)
    model = machines.machine_create(caller=caller, dataset=digits, outputs=["label"], level=1)
    run = machines.training_start(caller=caller, machine=model)
    run_jobs()
    run.refresh_from_db()
    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    predicted = client.post(
        reverse("predictions:predict", args=[model.pk]),
        {"image": SimpleUploadedFile("scan.png", unseen, content_type="image/png")},
    )
    assert predicted.status_code == 200
    prediction = Prediction.objects.get(machine=model)
    reviewed = client.post(
        reverse("predictions:review", args=[prediction.pk]),
        {"status": "corrected", "label": "2", "note": "A two, checked by hand."},
    )
    assert reviewed.status_code == 302
    prediction.refresh_from_db()
    assert prediction.review_status == "corrected"
    return {
        "image dataset": reverse("datasets:detail", args=[digits.pk]),
        "image gallery": reverse("datasets:gallery", args=[digits.pk]),
        "image gallery of a class": f"{reverse('datasets:gallery', args=[digits.pk])}?label=1",
        "image": reverse("datasets:image", args=[digits.pk, 1]),
        "segmentation dataset": reverse("datasets:detail", args=[shapes.pk]),
        "segmentation gallery": reverse("datasets:gallery", args=[shapes.pk]),
        "segmentation image": reverse("datasets:image", args=[shapes.pk, 0]),
        "create image model": f"{reverse('machines:create')}?dataset={digits.pk}",
        "image model": reverse("machines:detail", args=[model.pk]),
        "image training job": reverse("jobs:detail", args=[run.job_id]),
        "predict image": reverse("predictions:predict", args=[model.pk]),
        "image prediction": reverse("predictions:detail", args=[prediction.pk]),
        "image prediction log": reverse("predictions:log", args=[model.pk]),
    }


@pytest.fixture
def pages(
    owner: Any,
    binary_model: Machine,  # noqa: F811 - the fixture imported above
    make_dataset: Callable[..., Any],  # noqa: F811
    run_jobs: Callable[[], None],
    settings: Any,
) -> dict[str, str]:
    """Every page's path, with real objects behind it, for `owner` with the preferences."""
    import torch

    torch.set_num_threads(2)  # the image model trains in this process (run_jobs)
    settings.MLMANAGER_VISION_MAX_EPOCHS = 2
    for name, value in PREFERENCES.items():
        setattr(owner, name, value)
    owner.save()
    machine = binary_model
    show_every_chart(machine)
    dataset = make_dataset(owner, _noisy_frame(), name="Noisy customers")
    regression = regression_model(owner, machine.dataset_id)
    training = _running_training(owner, regression)
    invitation = invitation_create(caller=Caller.for_session(owner), team_id=owner.current_team_id)
    api_token_create(
        caller=Caller.for_session(owner),
        name="CI",
        expires_at=timezone.now() + timezone.timedelta(days=9),
    )

    client = Client()
    client.force_login(owner)
    predicted = client.post(reverse("predictions:predict", args=[machine.pk]), PREDICT_FORM)
    assert predicted.status_code == 200
    started = client.post(
        reverse("predictions:batches", args=[machine.pk]),
        {"dataset": str(dataset.pk), "format": "csv"},
    )
    assert started.status_code == 302, started.content.decode()[:2000]
    run_jobs()
    batch = BatchPrediction.objects.get(machine=machine)
    assert batch.job.status == Job.Status.SUCCEEDED, batch.job.error

    return {
        "datasets": reverse("datasets:list"),
        "dataset": reverse("datasets:detail", args=[dataset.pk]),
        "preview": reverse("datasets:preview", args=[dataset.pk]),
        "models": reverse("machines:list"),
        "create": f"{reverse('machines:create')}?dataset={dataset.pk}",
        "create outputs": f"{reverse('machines:create')}?dataset={dataset.pk}&outputs=churned",
        "classifier": reverse("machines:detail", args=[machine.pk]),
        "regression in training": reverse("machines:detail", args=[regression.pk]),
        "predict": reverse("predictions:predict", args=[machine.pk]),
        "prediction log": reverse("predictions:log", args=[machine.pk]),
        "team prediction log": reverse("predictions:team_log"),
        "batches": reverse("predictions:batches", args=[machine.pk]),
        "jobs": reverse("jobs:list"),
        "training job": reverse("jobs:detail", args=[training.job_id]),
        "batch job": reverse("jobs:detail", args=[batch.job_id]),
        "team": reverse("accounts:team", args=[owner.current_team_id]),
        "team create": reverse("accounts:team_create"),
        "tokens": reverse("accounts:api_tokens"),
        "profile": reverse("accounts:profile"),
        "password change": reverse("accounts:password_change"),
        "password changed": reverse("accounts:password_change_done"),
        "invitation": reverse("accounts:invitation_accept", args=[invitation.token]),
        "dataset versions": reverse("datasets:versions", args=[dataset.pk]),
        "dataset relations": f"{reverse('datasets:relations', args=[dataset.pk])}?output=churned",
        "dataset graphs": reverse("datasets:graphs", args=[dataset.pk]),
        "model dataset": reverse("machines:dataset", args=[machine.pk]),
        "runs": reverse("machines:runs", args=[machine.pk]),
        "runs compare": (
            f"{reverse('machines:runs_compare')}?ids={_ended_run(owner, machine).pk},{training.pk}"
        ),
        **_image_pages(owner, client, run_jobs),
    }


PREDICT_FORM = {"plan": "pro", "monthly_fee": "49", "tenure_months": "2", "member": "true"}


def _render(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return page_text(response.content.decode())


def _page_names(resolver: URLResolver, namespace: str = "") -> set[str]:
    names = set()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            names |= _page_names(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            names.add(f"{namespace}{entry.name}")
    return {name for name in names if name.split(":")[0] in PAGE_NAMESPACES}


@pytest.mark.django_db(transaction=True)
def test_every_page_follows_the_users_number_date_and_time_preferences(
    owner: Any, pages: dict[str, str]
) -> None:
    scanned = {resolve(path.split("?")[0]).view_name for path in pages.values()}
    assert _page_names(get_resolver()) - NOT_PAGES - scanned == set()
    client = Client()
    client.force_login(owner)
    texts = {name: _render(client, path) for name, path in pages.items()}
    # The htmx partials the pages load and swap in (the rows preview, the live parts), and
    # an answer of the prediction form.
    texts["classifier (htmx)"] = page_text(
        client.get(pages["classifier"], headers={"HX-Request": "true"}).content.decode()
    )
    answer = client.post(pages["predict"], PREDICT_FORM, headers={"HX-Request": "true"})
    texts["prediction answer"] = page_text(answer.content.decode())
    assert "Answered in" in texts["prediction answer"]

    # The preferences lived as long as each request, no longer (the test client runs the
    # requests in this thread).
    assert formatting.active() == formatting.DEFAULT
    found = {name: problems for name, text in texts.items() if (problems := format_problems(text))}
    assert found == {}, "\n".join(f"{name}: {problems}" for name, problems in found.items())

    # The run's progress text and its log, in the reader's separators, zone and clock.
    run = texts["regression in training"]
    assert "1.254 tried, best rmse 0,7512 (enet)" in run
    assert "Read 1.000 rows in 0,35 s" in run
    job = Job.objects.get(training_run__isnull=False, status=Job.Status.RUNNING)
    stamp = job.log.split(" ", 1)[0]
    written = datetime.combine(
        job.created_at.astimezone(UTC).date(),
        datetime.strptime(stamp, "%H:%M:%S").time(),
        tzinfo=UTC,
    )
    shown = written.astimezone(zoneinfo.ZoneInfo(ZONE)).strftime("%I:%M:%S %p").lstrip("0")
    assert f"{shown} Read 1.000 rows" in texts["training job"]
    # Dates and times of records in the reader's zone (Kolkata is 5:30 ahead of UTC).
    created = job.created_at.astimezone(zoneinfo.ZoneInfo(ZONE))
    hour = created.strftime("%I").lstrip("0")
    assert f"{created:%d/%m/%Y} {hour}:{created:%M %p}" in texts["training job"]
    # The image pages' own numbers: the profile's median side, holdout metrics, a confidence.
    assert "(median 9,5)" in texts["image dataset"]
    assert re.search(r"label: accuracy [01],\d{4}", texts["image model"])
    assert re.search(r"Confidence \d{1,3},\d %", texts["image prediction"])
    # The float noise in the data is shown as the value it stands for.
    assert "13,69" in texts["preview"] and "0,3 " in texts["preview"] + " "


class _Options(HTMLParser):
    """The time-zone picker's option groups: label → [(value, text, selected)]."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.groups: dict[str, list[tuple[str, str, bool]]] = {}
        self._inside = False
        self._group = ""
        self._option: tuple[str, bool] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "select":
            self._inside = named.get("name") == "time_zone"
        elif self._inside and tag == "optgroup":
            self._group = named.get("label") or ""
            self.groups[self._group] = []
        elif self._inside and tag == "option":
            self._option = (named.get("value") or "", "selected" in named)

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            value, selected = self._option
            self.groups[self._group].append((value, data.strip(), selected))
            self._option = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._inside = False


def _time_zone_options(client: Client) -> dict[str, list[tuple[str, str, bool]]]:
    parser = _Options()
    parser.feed(client.get(reverse("accounts:profile")).content.decode())
    return parser.groups


@pytest.mark.django_db
def test_the_time_zone_picker_lists_common_zones_first_then_regions(owner: Any) -> None:
    owner.time_zone = ZONE
    owner.save(update_fields=["time_zone"])
    client = Client()
    client.force_login(owner)
    groups = _time_zone_options(client)

    assert list(groups)[:2] == ["Common", "Africa"]
    assert list(groups)[-1] == "Pacific"
    common = groups["Common"]
    assert common[0] == ("UTC", "UTC", False)
    assert ("Asia/Kolkata", "Asia/Kolkata", True) in common
    assert ("America/New_York", "America/New York", False) in common
    assert ("America/Argentina/Buenos_Aires", "Argentina/Buenos Aires", False) in groups["America"]
    values = {value for options in groups.values() for value, _text, _selected in options}
    assert not values & {"Factory", "localtime", "US/Eastern", "Etc/GMT+5", "EST"}
    # Selected once, where the user looks first.
    assert [v for options in groups.values() for v, _t, chosen in options if chosen] == [ZONE]


@pytest.mark.django_db
def test_a_zone_no_longer_offered_stays_selected_and_saves(owner: Any) -> None:
    owner.time_zone = "US/Eastern"
    owner.save(update_fields=["time_zone"])
    client = Client()
    client.force_login(owner)

    assert _time_zone_options(client)["Other"] == [("US/Eastern", "US/Eastern", True)]
    form = {name: getattr(owner, name) for name in ("first_name", "last_name")}
    saved = client.post(
        reverse("accounts:profile"), {**form, **PREFERENCES, "time_zone": "US/Eastern"}
    )
    assert saved.status_code == 302
    refused = client.post(
        reverse("accounts:profile"), {**form, **PREFERENCES, "time_zone": "Factory"}
    )
    assert refused.status_code == 200
    owner.refresh_from_db()
    assert (owner.time_zone, owner.decimal_separator) == ("US/Eastern", ",")
