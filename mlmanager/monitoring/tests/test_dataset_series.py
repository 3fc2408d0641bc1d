"""A dataset's column against time: the spec's checks and the points per period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from mlmanager.core import storage
from mlmanager.monitoring import dataset_series
from mlmanager.monitoring.dataset_series import DatasetSeriesError

COLUMNS = [
    {"name": "day", "type": "datetime"},
    {"name": "sales", "type": "numeric"},
    {"name": "shop", "type": "categorical"},
]
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def spec(**fields: object) -> dict:
    return dataset_series.normalise(
        {"kind": "dataset", "dataset": 1, "column": "sales", "time_column": "day", **fields}
    )


def test_defaults_and_shape_checks() -> None:
    assert spec() == {
        "kind": "dataset",
        "dataset": 1,
        "column": "sales",
        "time_column": "day",
        "aggregation": "avg",
        "period_s": 86400,
    }
    bad = [
        ({"dataset": 0}, "dataset"),
        ({"dataset": 2**63}, "dataset"),
        ({"column": ""}, "column"),
        ({"time_column": 3}, "time_column"),
        ({"aggregation": "median"}, "aggregation"),
        ({"period_s": 30}, "period_s"),
        ({"period_s": 90}, "period_s"),
        ({"colour": "red"}, "colour"),
    ]
    for fields, field in bad:
        with pytest.raises(DatasetSeriesError) as raised:
            spec(**fields)
        assert raised.value.field == field


def test_columns_are_checked_against_the_profile() -> None:
    dataset_series.check_columns(spec(), COLUMNS)
    dataset_series.check_columns(spec(column="shop", aggregation="count"), COLUMNS)
    for fields, field in [
        ({"time_column": "sales"}, "time_column"),
        ({"time_column": "when"}, "time_column"),
        ({"column": "shop"}, "column"),
        ({"column": "price"}, "column"),
    ]:
        with pytest.raises(DatasetSeriesError) as raised:
            dataset_series.check_columns(spec(**fields), COLUMNS)
        assert raised.value.field == field


def test_points_per_period_from_the_stored_file(tmp_path: object) -> None:
    frame = pd.DataFrame(
        {
            # Text times, as a CSV upload keeps them: one without a zone (UTC), one bad.
            "day": [
                "2026-03-01T08:00:00Z",
                "2026-03-01T20:00:00",
                "2026-03-03T09:00:00+00:00",
                "not a date",
                "2026-02-20T09:00:00Z",
            ],
            "sales": [10.0, 30.0, 5.0, 99.0, 7.0],
            "shop": ["a", "b", "a", "a", "b"],
        }
    )
    name = "datasets/team-1/series-test/data.parquet"
    path = storage.local_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    end = T0 + timedelta(days=4)

    averages = dataset_series.points(spec(), parquet_name=name, start=T0, end=end, period_s=86400)
    assert averages == [
        (T0, 20.0),
        (T0 + timedelta(days=1), None),
        (T0 + timedelta(days=2), 5.0),
        (T0 + timedelta(days=3), None),
    ]
    counts = dataset_series.points(
        spec(column="shop", aggregation="count"),
        parquet_name=name,
        start=T0,
        end=end,
        period_s=86400,
    )
    assert [value for _moment, value in counts] == [2.0, 0.0, 1.0, 0.0]
    latest = dataset_series.points(
        spec(aggregation="last"), parquet_name=name, start=T0, end=end, period_s=2 * 86400
    )
    # Two-day periods aligned on the epoch: Feb 28 – Mar 1, Mar 2 – 3, Mar 4 – 5.
    assert [value for _moment, value in latest] == [30.0, 5.0, None]


@pytest.mark.django_db
def test_a_chart_draws_a_datasets_column_and_rules_refuse_it() -> None:
    from django.urls import reverse

    from mlmanager.core.tests.factories import api_client_for, member
    from mlmanager.monitoring.tests.model_log import dataset_of

    owner = member("owner")
    team = owner.current_team
    frame = pd.DataFrame(
        {
            "day": pd.to_datetime(["2026-03-01", "2026-03-01", "2026-03-02"], utc=True),
            "sales": [10.0, 30.0, 5.0],
        }
    )
    dataset = dataset_of(team, frame, name="Sales")
    api = api_client_for(owner)
    series = {"kind": "dataset", "dataset": dataset.pk, "column": "sales", "time_column": "day"}
    created = api.post(
        reverse("api:charts"), {"name": "Sales per day", "series": [series]}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert created.json()["series"][0] == {**series, "aggregation": "avg", "period_s": 86400}
    data = api.get(
        reverse("api:chart-data", args=[created.json()["id"]]),
        {"start": "2026-03-01T00:00:00Z", "end": "2026-03-03T00:00:00Z"},
    ).json()
    assert [point[1] for point in data["series"][0]["points"]] == [20.0, 5.0]
    assert "Sales" in data["series"][0]["label"]

    wrong = api.post(
        reverse("api:charts"),
        {"name": "Bad", "series": [{**series, "time_column": "sales"}]},
        format="json",
    )
    assert wrong.status_code == 400 and "time_column" in wrong.json()["error"]["message"]
    stranger = api_client_for(member("owner"))
    hidden = stranger.post(
        reverse("api:charts"), {"name": "Theirs", "series": [series]}, format="json"
    )
    assert hidden.status_code == 404
    rule = api.post(
        reverse("api:alert-rules"),
        {
            "name": "Sales drop",
            "series": [series],
            "condition": {"series": 0, "op": "below", "value": 1},
        },
        format="json",
    )
    assert rule.status_code == 400 and "for charts" in rule.json()["error"]["message"]
