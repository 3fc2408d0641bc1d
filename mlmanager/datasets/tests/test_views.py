from __future__ import annotations

import pytest
from django.test import Client

from mlmanager.core.tests.factories import member
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.tests.conftest import DEMO_CSV


@pytest.fixture
def browser(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def test_upload_page_to_profile_with_charts(browser, owner, run_jobs) -> None:
    with DEMO_CSV.open("rb") as handle:
        response = browser.post("/datasets/", {"file": handle, "name": "Demo"})
    dataset = Dataset.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/datasets/{dataset.pk}/"
    processing = browser.get(f"/datasets/{dataset.pk}/").content.decode()
    # The page refreshes on its job's live events while the job works.
    assert f'data-job-dataset-id="{dataset.pk}"' in processing
    assert "mlmanager:poll from:body" in processing  # the fallback while no socket is open

    run_jobs()

    page = browser.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "mlmanager:poll" not in page
    assert "1,000 rows × 9 columns" in page
    assert page.count('<svg class="chart') >= 7  # a drawn chart for each informative column
    assert "<rect " in page
    preview = browser.get(f"/datasets/{dataset.pk}/preview/?page=40").content.decode()
    assert "C100999" in preview
    assert "Page 40 of 40" in preview


def test_user_number_format_applies(browser, owner, run_jobs) -> None:
    owner.decimal_separator = ","
    owner.save()
    with DEMO_CSV.open("rb") as handle:
        browser.post("/datasets/", {"file": handle})
    run_jobs()
    page = browser.get(f"/datasets/{Dataset.objects.get().pk}/").content.decode()
    assert "1.000 rows × 9 columns" in page


def test_html_in_column_names_and_cells_is_escaped(browser, write_file, run_jobs) -> None:
    payload = "<script>alert(1)</script>"
    path = write_file("xss.csv", f'"{payload}",b\n"<img src=x onerror=alert(2)>",1\nz,2\n')
    with path.open("rb") as handle:
        browser.post("/datasets/", {"file": handle})
    run_jobs()
    dataset = Dataset.objects.get()
    assert dataset.status == "ready", dataset.error
    page = browser.get(f"/datasets/{dataset.pk}/").content.decode()
    preview = browser.get(f"/datasets/{dataset.pk}/preview/").content.decode()
    for html in (page, preview):
        assert "<script>alert(1)" not in html
        assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in preview


@pytest.mark.django_db
def test_upload_too_large_shows_message(browser, settings, write_file) -> None:
    settings.MLMANAGER_MAX_UPLOAD_BYTES = 1024
    with write_file("big.csv", "a\n" + "1\n" * 100_000).open("rb") as handle:
        response = browser.post("/datasets/", {"file": handle})
    assert response.status_code == 200
    assert "larger than the upload limit of 1.0\xa0KB" in response.content.decode()
    assert not Dataset.objects.exists()


@pytest.mark.django_db
def test_viewer_sees_no_upload_form_and_cannot_post(owner, write_file) -> None:
    viewer = member("viewer", team=owner.current_team)
    client = Client()
    client.force_login(viewer)
    assert 'enctype="multipart/form-data"' not in client.get("/datasets/").content.decode()
    with write_file("a.csv", "a\n1\n").open("rb") as handle:
        response = client.post("/datasets/", {"file": handle})
    assert "role in this team does not allow" in response.content.decode()
    assert not Dataset.objects.exists()


@pytest.mark.django_db
def test_pages_need_login() -> None:
    response = Client().get("/datasets/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_dataset_list_pages(browser, owner) -> None:
    from mlmanager.datasets.models import dataset_storage_dir

    for index in range(26):
        Dataset.objects.create(
            team=owner.current_team,
            name=f"d{index}",
            original_filename="d.csv",
            storage_dir=dataset_storage_dir(owner.current_team_id),
        )
    second = browser.get("/datasets/?page=2").content.decode()
    assert "Page 2 of 2" in second
    assert '<a href="?page=1">Previous</a>' in second
    assert "Page 1 of 2" in browser.get("/datasets/").content.decode()
