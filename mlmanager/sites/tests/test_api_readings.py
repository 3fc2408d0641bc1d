"""POST /api/v1/readings/ (JSON and CSV), GET /sensors/{id}/readings/ and calibration."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.sites.models import IngestBatch, Reading, ReadingRollup
from mlmanager.sites.tests.factories import sensor_of, site_of

pytestmark = pytest.mark.django_db

URL = "/api/v1/readings/"


@pytest.fixture
def owner() -> Any:
    return member("owner")


@pytest.fixture
def api(owner: Any) -> Any:
    return api_client_for(owner)


@pytest.fixture
def sensor(owner: Any) -> Any:
    return sensor_of(site_of(owner.current_team), "Boiler", device_id="boiler-1")


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def post_json(api: Any, body: Any) -> Any:
    text = body if isinstance(body, str) else json.dumps(body)
    return api.post(URL, data=text, content_type="application/json")


def test_json_ingest_stores_raw_and_calibrated_values(api: Any, sensor: Any) -> None:
    sensor.calibration_multiplier = 2.0
    sensor.calibration_offset = 1.0
    sensor.save()
    moment = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    response = post_json(
        api,
        {
            "readings": [
                {"sensor": sensor.pk, "timestamp": stamp(moment), "value": 10},
                {
                    "device_id": "boiler-1",
                    "timestamp": stamp(moment + timedelta(seconds=1)),
                    "value": "12.5",
                    "quality": "uncertain",
                },
            ]
        },
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    rows = list(
        Reading.objects.filter(sensor=sensor)
        .order_by("timestamp")
        .values_list("raw_value", "value", "quality")
    )
    assert rows == [(10.0, 21.0, "good"), (12.5, 26.0, "uncertain")]


def test_csv_ingest(api: Any, sensor: Any) -> None:
    moment = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    body = (
        "sensor,timestamp,value,quality\n"
        f"{sensor.pk},{stamp(moment)},1.5,good\n"
        f"{sensor.pk},{stamp(moment + timedelta(seconds=1))},2.5,\n"
        f"{sensor.pk},{stamp(moment + timedelta(seconds=2))},oops,good\n"
        "\n"
    )
    response = api.post(f"{URL}?batch_id=csv-1", data=body, content_type="text/csv")
    assert response.status_code == 200, response.json()
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"]) == (2, 0)
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [(2, "invalid_value")]
    assert IngestBatch.objects.filter(batch_id="csv-1").exists()
    by_device = api.post(
        URL,
        data=f"device_id,timestamp,value\nboiler-1,{stamp(moment + timedelta(minutes=1))},3\n",
        content_type="text/csv; charset=utf-8",
    )
    assert by_device.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    header_only = api.post(
        f"{URL}?batch_id=", data="sensor,timestamp,value\n", content_type="text/csv"
    )
    assert header_only.json() == {"accepted": 0, "duplicates": 0, "rejected": []}
    too_long = api.post(f"{URL}?batch_id={'x' * 201}", data=body, content_type="text/csv")
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "invalid_batch_id"
    assert Reading.objects.filter(sensor=sensor).count() == 3

    no_header = api.post(URL, data=f"{sensor.pk},{stamp(moment)},1\n", content_type="text/csv")
    assert no_header.status_code == 400
    assert no_header.json()["error"]["code"] == "invalid_csv"


def test_duplicates_in_one_request_and_across_requests(api: Any, sensor: Any) -> None:
    moment = stamp(timezone.now() - timedelta(minutes=1))
    reading = {"sensor": sensor.pk, "timestamp": moment, "value": 1}
    first = post_json(api, {"readings": [reading, reading]})
    assert first.json() == {"accepted": 1, "duplicates": 1, "rejected": []}
    again = post_json(api, {"readings": [reading]})
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert Reading.objects.count() == 1


def test_a_repeated_batch_id_returns_the_same_answer_and_stores_nothing(
    api: Any, sensor: Any
) -> None:
    start = timezone.now() - timedelta(minutes=10)
    body = {
        "batch_id": "gateway-7-0001",
        "readings": [
            {"sensor": sensor.pk, "timestamp": stamp(start + timedelta(seconds=i)), "value": i}
            for i in range(3)
        ]
        + [{"sensor": sensor.pk, "timestamp": "yesterday", "value": 1}],
    }
    first = post_json(api, body)
    assert first.json()["accepted"] == 3
    # Different readings under the same batch id: nothing of them is stored.
    body["readings"] = [
        {"sensor": sensor.pk, "timestamp": stamp(start + timedelta(seconds=99)), "value": 9}
    ]
    repeat = post_json(api, body)
    assert repeat.status_code == 200
    assert repeat.json() == first.json()
    assert Reading.objects.count() == 3


def test_bad_readings_are_rejected_one_by_one(api: Any, sensor: Any) -> None:
    foreign = sensor_of(site_of(member("owner").current_team), "Theirs", device_id="theirs")
    now = timezone.now()
    good = stamp(now - timedelta(minutes=1))
    readings = [
        f'{{"sensor": {sensor.pk}, "timestamp": "{good}", "value": NaN}}',
        f'{{"sensor": {sensor.pk}, "timestamp": "{good}", "value": "warm"}}',
        f'{{"sensor": {sensor.pk}, "timestamp": "{stamp(now + timedelta(days=2))}", "value": 1}}',
        f'{{"device_id": "no-such-device", "timestamp": "{good}", "value": 1}}',
        f'{{"sensor": {foreign.pk}, "timestamp": "{good}", "value": 1}}',
        f'{{"sensor": {sensor.pk}, "timestamp": "{good}", "value": 1, "quality": "great"}}',
        f'{{"sensor": {sensor.pk}, "timestamp": "{good}", "value": 7}}',
        f'{{"sensor": {sensor.pk}, "timestamp": "{good}", "value": Infinity}}',
    ]
    response = post_json(api, '{"readings": [' + ", ".join(readings) + "]}")
    assert response.status_code == 200, response.json()
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"]) == (1, 0)
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [
        (0, "not_finite"),
        (1, "invalid_value"),
        (2, "future_timestamp"),
        (3, "unknown_device"),
        (4, "unknown_sensor"),
        (5, "invalid_quality"),
        (7, "not_finite"),
    ]
    assert all(r["message"] for r in answer["rejected"])
    assert list(Reading.objects.values_list("sensor_id", "value")) == [(sensor.pk, 7.0)]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "invalid_json"),
        ("[]", "invalid"),
        ('{"readings": {"sensor": 1}}', "invalid"),
        ('{"batch_id": "x"}', "invalid"),
        ('{"batch_id": {"a": 1}, "readings": []}', "invalid_batch_id"),
        ('{"batch_id": 7, "readings": []}', "invalid_batch_id"),
        ('{"batch_id": "", "readings": []}', "invalid_batch_id"),
        ('{"batch_id": null, "readings": []}', "invalid_batch_id"),
    ],
)
def test_malformed_bodies_are_400(api: Any, body: str, code: str) -> None:
    response = post_json(api, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_other_media_types_are_415(api: Any) -> None:
    response = api.post(URL, data="readings=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_more_than_100_000_readings_is_413(api: Any, sensor: Any) -> None:
    reading = {"sensor": sensor.pk, "timestamp": 1_765_000_000, "value": 1}
    response = post_json(api, {"readings": [reading] * 100_001})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_many_readings"
    assert not Reading.objects.exists()


def test_a_body_over_32_mib_is_413(api: Any) -> None:
    body = '{"readings": [], "padding": "' + "x" * (32 * 1024 * 1024) + '"}'
    response = post_json(api, body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_readings_endpoint_raw_minute_hour_and_statistics(api: Any, sensor: Any) -> None:
    base = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    points = [(0, 10.0), (30, 20.0), (90, 30.0), (3610, 60.0)]
    post_json(
        api,
        {
            "readings": [
                {"sensor": sensor.pk, "timestamp": stamp(base + timedelta(seconds=s)), "value": v}
                for s, v in points
            ]
        },
    )
    url = f"/api/v1/sensors/{sensor.pk}/readings/"

    raw = api.get(url).json()
    assert set(raw) == {"readings", "statistics", "time_range"}
    assert [
        (r["timestamp"], r["raw_value"], r["value"], r["quality"]) for r in raw["readings"]
    ] == [(stamp(base + timedelta(seconds=s)), v, v, "good") for s, v in points]
    assert raw["statistics"] == {
        "count": 4,
        "average": 30.0,
        "minimum": 10.0,
        "maximum": 60.0,
        "latest": {
            "timestamp": stamp(base + timedelta(seconds=3610)),
            "value": 60.0,
            "quality": "good",
        },
    }
    assert raw["time_range"]["resolution"] == "raw"

    window = {"start": stamp(base), "end": stamp(base + timedelta(hours=2))}
    minutes = api.get(url, {**window, "resolution": "1m"}).json()
    assert [
        (r["timestamp"], r["value"], r["minimum"], r["maximum"], r["count"])
        for r in minutes["readings"]
    ] == [
        (stamp(base), 15.0, 10.0, 20.0, 2),
        (stamp(base + timedelta(minutes=1)), 30.0, 30.0, 30.0, 1),
        (stamp(base + timedelta(hours=1)), 60.0, 60.0, 60.0, 1),
    ]
    assert minutes["time_range"] == {**window, "resolution": "1m"}
    assert minutes["statistics"]["count"] == 4
    hours = api.get(url, {**window, "resolution": "1h"}).json()
    assert [(r["timestamp"], r["value"], r["count"]) for r in hours["readings"]] == [
        (stamp(base), 20.0, 3),
        (stamp(base + timedelta(hours=1)), 60.0, 1),
    ]
    assert ReadingRollup.objects.filter(sensor=sensor, resolution="1h").count() == 2

    newest_two = api.get(url, {"limit": 2}).json()["readings"]
    assert [r["value"] for r in newest_two] == [30.0, 60.0]
    first_hour = api.get(url, {"start": stamp(base), "end": stamp(base + timedelta(minutes=1))})
    assert first_hour.json()["statistics"]["count"] == 2


@pytest.mark.parametrize(
    "query",
    [
        {"resolution": "1d"},
        {"limit": 0},
        {"limit": 10_001},
        {"start": "tomorrow"},
        {"start": ""},
        {"resolution": ""},
        {"start": "2026-12-07T10:00:00Z", "end": "2026-12-07T09:00:00Z"},
    ],
)
def test_readings_endpoint_refuses_bad_parameters(api: Any, sensor: Any, query: Any) -> None:
    response = api.get(f"/api/v1/sensors/{sensor.pk}/readings/", query)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_filter"


def test_calibrate_and_its_history(api: Any, owner: Any, sensor: Any) -> None:
    url = f"/api/v1/sensors/{sensor.pk}/calibrate/"
    no_reading = api.post(url, {"reference_value": 20}, format="json")
    assert no_reading.status_code == 409
    assert no_reading.json()["error"]["code"] == "no_reading"
    moment = timezone.now() - timedelta(minutes=1)
    post_json(api, {"readings": [{"sensor": sensor.pk, "timestamp": stamp(moment), "value": 22}]})

    calibrated = api.post(url, {"reference_value": 25}, format="json")
    assert calibrated.status_code == 200, calibrated.json()
    assert calibrated.json() == {
        "calibration_offset": 3.0,
        "reference_value": 25.0,
        "previous_reading": 22.0,
    }
    sensor.refresh_from_db()
    assert sensor.calibration_offset == 3.0
    # New readings take the new offset.
    post_json(
        api,
        {
            "readings": [
                {
                    "sensor": sensor.pk,
                    "timestamp": stamp(moment + timedelta(seconds=5)),
                    "value": 22,
                }
            ]
        },
    )
    assert Reading.objects.order_by("-timestamp").values_list("value", flat=True).first() == 25.0
    assert api.post(url, {"reference_value": 24}, format="json").json()["calibration_offset"] == 2.0

    history = api.get(f"/api/v1/sensors/{sensor.pk}/calibrations/").json()
    assert history["count"] == 2
    assert [
        (r["reference_value"], r["previous_reading"], r["previous_offset"], r["calibration_offset"])
        for r in history["results"]
    ] == [(24.0, 22.0, 3.0, 2.0), (25.0, 22.0, 0.0, 3.0)]
    assert history["results"][0]["calibrated_by"] == owner.pk
    bad = api.post(url, {"reference_value": "NaN"}, format="json")
    assert bad.status_code == 400
