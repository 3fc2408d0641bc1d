"""The pages of an image dataset: summary, class chart, skipped files, gallery paging per
class, one image's page, masks over thumbnails; another team's images are 404 everywhere."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from PIL import Image

from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.tests.test_images_api import upload_and_process, zip_upload
from mlmanager.engine.tests.ingest.image_archives import segmentation_entries, two_classes


@pytest.fixture
def browser(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def test_image_dataset_page(api, run_jobs, browser) -> None:
    entries = [*two_classes(30), ("cat/x.png", b"<svg/>")]
    dataset = upload_and_process(api, run_jobs, zip_upload(entries))
    page = browser.get(f"/datasets/{dataset.pk}/").content.decode()
    assert 'data-testid="images-summary"' in page
    assert 'data-testid="category-chart"' in page
    assert "unsupported type (SVG)" in page
    assert 'data-testid="confirm-images"' in page
    assert 'data-testid="profile-table"' not in page and "dataset-preview" not in page

    gallery = browser.get(f"/datasets/{dataset.pk}/gallery/").content.decode()
    assert gallery.count("<figure>") == 24 and "Page 1 of 3" in gallery
    gallery = browser.get(f"/datasets/{dataset.pk}/gallery/?label=dog&page=2").content.decode()
    assert gallery.count("<figure>") == 6 and "Page 2 of 2" in gallery
    assert "cat/" not in gallery.split('class="gallery"')[1]

    image_page = browser.get(f"/datasets/{dataset.pk}/images/0/").content.decode()
    assert 'data-testid="image-name">cat/0.png<' in image_page
    thumbnail = browser.get(f"/datasets/{dataset.pk}/images/0/thumbnail.png")
    assert thumbnail["Content-Type"] == "image/png"
    assert browser.get(f"/datasets/{dataset.pk}/images/60/").status_code == 404
    assert browser.get(f"/datasets/{dataset.pk}/preview/").status_code == 409

    response = browser.post(f"/datasets/{dataset.pk}/confirm/")
    assert response.status_code == 302
    page = browser.get(f"/datasets/{dataset.pk}/").content.decode()
    assert 'data-testid="images-confirmed"' in page


def test_segmentation_pages_draw_masks(api, run_jobs, browser) -> None:
    dataset = upload_and_process(api, run_jobs, zip_upload(segmentation_entries(2)))
    gallery = browser.get(f"/datasets/{dataset.pk}/gallery/").content.decode()
    assert "/images/0/thumbnail-overlay.png" in gallery
    page = browser.get(f"/datasets/{dataset.pk}/images/0/").content.decode()
    assert 'data-testid="mask-overlay"' in page
    overlay = browser.get(f"/datasets/{dataset.pk}/images/0/overlay.png")
    image = Image.open(io.BytesIO(overlay.content)).convert("RGB")
    # Inside the square the mask's colour is mixed in; outside the image is unchanged.
    assert image.getpixel((2, 2)) != (200, 200, 200) and image.getpixel((15, 15)) == (0, 0, 0)


IMAGE_URLS = [
    ("get", "/api/v1/datasets/{dataset}/images/"),
    ("get", "/api/v1/datasets/{dataset}/images/0/image.png"),
    ("get", "/api/v1/datasets/{dataset}/images/0/thumbnail.png"),
    ("get", "/api/v1/datasets/{dataset}/images/0/mask.png"),
    ("post", "/api/v1/datasets/{dataset}/confirm/"),
    ("get", "/datasets/{dataset}/gallery/"),
    ("get", "/datasets/{dataset}/images/0/"),
    ("get", "/datasets/{dataset}/images/0/image.png"),
    ("get", "/datasets/{dataset}/images/0/thumbnail.png"),
    ("get", "/datasets/{dataset}/images/0/mask.png"),
    ("get", "/datasets/{dataset}/images/0/overlay.png"),
    ("post", "/datasets/{dataset}/confirm/"),
]


def test_another_teams_images_are_404(api, run_jobs) -> None:
    dataset = upload_and_process(api, run_jobs, zip_upload(segmentation_entries(2)))
    outsider = member("owner")
    client = Client()
    client.force_login(outsider)
    outsider_api = api_client_for(outsider)
    for method, url in IMAGE_URLS:
        target = url.format(dataset=dataset.pk)
        caller = outsider_api if target.startswith("/api/") else client
        assert getattr(caller, method)(target).status_code == 404, target
    assert Dataset.objects.get(pk=dataset.pk).profile["images"]["confirmed"] is False


def test_upload_page_takes_a_zip_of_images(browser, run_jobs) -> None:
    response = browser.post("/datasets/", {"file": zip_upload(two_classes(2)), "name": "Pets"})
    dataset = Dataset.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/datasets/{dataset.pk}/"
    assert (dataset.kind, dataset.name) == ("images", "Pets")
    run_jobs()
    listing = browser.get("/datasets/").content.decode()
    assert "image, label" in listing


def test_gallery_api_reads_in_constant_queries(
    api, run_jobs, django_assert_max_num_queries
) -> None:
    dataset = upload_and_process(api, run_jobs, zip_upload(two_classes(40)))
    with django_assert_max_num_queries(6):
        assert api.get(f"/api/v1/datasets/{dataset.pk}/images/?limit=80").status_code == 200
    with django_assert_max_num_queries(6):
        assert api.get(f"/api/v1/datasets/{dataset.pk}/images/3/thumbnail.png").status_code == 200
