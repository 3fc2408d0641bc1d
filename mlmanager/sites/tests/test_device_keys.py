"""Device keys: created over the API (the raw key shown once, stored hashed), a credential for
the readings endpoint only, limited to its site's sensors, refused once revoked."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from mlmanager.audit.models import AuditEvent
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.sites.models import DeviceKey, IngestBatch, Reading
from mlmanager.sites.tests.factories import sensor_of, site_of

pytestmark = pytest.mark.django_db

READINGS = "/api/v1/readings/"


@pytest.fixture
def owner() -> Any:
    return member("owner")


@pytest.fixture
def site(owner: Any) -> Any:
    return site_of(owner.current_team, "Mill 1")


@pytest.fixture
def created(owner: Any, site: Any) -> dict[str, Any]:
    response = api_client_for(owner).post(
        f"/api/v1/sites/{site.pk}/device_keys/", {"name": "Gateway 1"}, format="json"
    )
    assert response.status_code == 201, response.json()
    return dict(response.json())


def device_client(raw: str, keyword: str = "Device") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {raw}")
    return client


def reading(sensor: Any, *, seconds_ago: int = 60, value: float = 1.0) -> dict[str, Any]:
    moment = timezone.now() - timedelta(seconds=seconds_ago)
    return {"sensor": sensor.pk, "timestamp": moment.isoformat(), "value": value}


def test_create_shows_the_raw_key_once_and_stores_its_hash(
    owner: Any, site: Any, created: dict[str, Any]
) -> None:
    raw = created["key"]
    assert raw.startswith("mlmd_")
    assert created["name"] == "Gateway 1"
    assert created["prefix"] == raw[:12]
    assert (created["site"], created["is_active"], created["last_used_at"]) == (
        site.pk,
        True,
        None,
    )
    key = DeviceKey.objects.get(pk=created["id"])
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {key.key_hash, key.prefix, key.name}
    listed = api_client_for(owner).get(f"/api/v1/sites/{site.pk}/device_keys/").json()
    assert [row["id"] for row in listed["results"]] == [key.pk]
    assert "key" not in listed["results"][0]
    assert AuditEvent.objects.filter(action="device_key.created", target_id=key.pk).count() == 1


@pytest.mark.parametrize("keyword", ["Device", "Bearer"])
def test_readings_posted_with_the_key(site: Any, created: dict[str, Any], keyword: str) -> None:
    sensor = sensor_of(site, "Temperature")
    client = device_client(created["key"], keyword)

    response = client.post(
        READINGS, {"batch_id": "b-1", "readings": [reading(sensor)]}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert Reading.objects.filter(sensor=sensor).count() == 1
    # The batch is the key's own, not a user's.
    assert IngestBatch.objects.get().caller_key == f"device:{created['id']}"
    key = DeviceKey.objects.get(pk=created["id"])
    assert key.last_used_at is not None


def test_last_used_is_written_at_most_once_a_minute(site: Any, created: dict[str, Any]) -> None:
    sensor = sensor_of(site, "Temperature")
    client = device_client(created["key"])
    client.post(READINGS, {"readings": [reading(sensor, seconds_ago=10)]}, format="json")
    first = DeviceKey.objects.get(pk=created["id"]).last_used_at
    client.post(READINGS, {"readings": [reading(sensor, seconds_ago=20)]}, format="json")
    assert DeviceKey.objects.get(pk=created["id"]).last_used_at == first
    DeviceKey.objects.filter(pk=created["id"]).update(
        last_used_at=timezone.now() - timedelta(minutes=2)
    )
    client.post(READINGS, {"readings": [reading(sensor, seconds_ago=30)]}, format="json")
    assert DeviceKey.objects.get(pk=created["id"]).last_used_at > first


def test_other_sites_sensors_are_rejected(owner: Any, site: Any, created: dict[str, Any]) -> None:
    own = sensor_of(site, "Temperature", device_id="own-1")
    same_team_other_site = sensor_of(site_of(owner.current_team, "Mill 2"), "Flow", device_id="f-2")
    other_team = sensor_of(site_of(member("owner").current_team, "Theirs"), "T", device_id="t-3")
    moment = (timezone.now() - timedelta(minutes=1)).isoformat()

    response = device_client(created["key"]).post(
        READINGS,
        {
            "readings": [
                {"sensor": same_team_other_site.pk, "timestamp": moment, "value": 1},
                {"device_id": "f-2", "timestamp": moment, "value": 1},
                {"sensor": other_team.pk, "timestamp": moment, "value": 1},
                {"device_id": "t-3", "timestamp": moment, "value": 1},
                {"device_id": "own-1", "timestamp": moment, "value": 1},
            ]
        },
        format="json",
    )

    answer = response.json()
    assert answer["accepted"] == 1
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [
        (0, "unknown_sensor"),
        (1, "unknown_device"),
        (2, "unknown_sensor"),
        (3, "unknown_device"),
    ]
    assert list(Reading.objects.values_list("sensor_id", flat=True)) == [own.pk]


def test_a_revoked_key_is_401(owner: Any, site: Any, created: dict[str, Any]) -> None:
    sensor = sensor_of(site, "Temperature")
    revoked = api_client_for(owner).delete(f"/api/v1/sites/{site.pk}/device_keys/{created['id']}/")
    assert revoked.status_code == 204
    assert DeviceKey.objects.get(pk=created["id"]).revoked_at is not None

    for keyword in ("Device", "Bearer"):
        response = device_client(created["key"], keyword).post(
            READINGS, {"readings": [reading(sensor)]}, format="json"
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "authentication_failed"
    assert not Reading.objects.exists()
    unknown = device_client("mlmd_not-a-key").post(READINGS, {"readings": []}, format="json")
    assert unknown.status_code == 401


def test_other_endpoints_refuse_the_key(owner: Any, site: Any, created: dict[str, Any]) -> None:
    sensor = sensor_of(site, "Temperature")
    alert_id = 1
    requests = [
        ("get", "/api/v1/sites/"),
        ("get", f"/api/v1/sites/{site.pk}/"),
        ("get", f"/api/v1/sites/{site.pk}/status/"),
        ("post", f"/api/v1/sites/{site.pk}/emergency_stop/"),
        ("post", f"/api/v1/sites/{site.pk}/device_keys/"),
        ("get", "/api/v1/sensors/"),
        ("get", f"/api/v1/sensors/{sensor.pk}/readings/"),
        ("post", f"/api/v1/sensors/{sensor.pk}/calibrate/"),
        ("get", "/api/v1/alerts/"),
        ("post", f"/api/v1/alerts/{alert_id}/acknowledge/"),
        ("get", "/api/v1/datasets/"),
        ("get", "/api/v1/models/"),
    ]
    for keyword in ("Device", "Bearer"):
        client = device_client(created["key"], keyword)
        for method, url in requests:
            response = getattr(client, method)(url, {}, format="json")
            assert response.status_code == 401, (keyword, method, url, response.json())
    site.refresh_from_db()
    assert site.status == "active"
