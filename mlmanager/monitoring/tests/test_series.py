"""Series: specs checked and filled in, sensor points from readings and rollups, model signals
from the prediction log, and the current value rules compare."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlmanager.accounts.caller import Caller
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.core.tests.factories import member
from mlmanager.monitoring import series
from mlmanager.monitoring.series import series_label, series_points, series_validate, series_value
from mlmanager.monitoring.tests.model_log import log_predictions, model_of, training_rows
from mlmanager.sites.services.readings import readings_ingest
from mlmanager.sites.tests.factories import caller_of, sensor_of, site_of, site_role

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # a whole hour


@pytest.fixture
def world(db: None) -> dict[str, Any]:
    owner = member("owner")
    team = owner.memberships.get().team
    mill = site_of(team, "Mill 1")
    other_mill = site_of(team, "Mill 2")
    return {
        "owner": owner,
        "team": team,
        "mill": mill,
        "heat": sensor_of(mill, "Heat"),
        "pressure": sensor_of(mill, "Pressure", sensor_type="pressure"),
        "far": sensor_of(other_mill, "Far heat"),
    }


def send(owner: Any, sensor: Any, points: list[tuple[datetime, float]]) -> None:
    answer = readings_ingest(
        caller=caller_of(owner),
        readings=[
            {"sensor": sensor.pk, "timestamp": stamp.isoformat(), "value": value}
            for stamp, value in points
        ],
    )
    assert answer["accepted"] == len(points), answer


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


# --- validation ---------------------------------------------------------------------------------


def test_defaults_are_filled_in_and_the_site_is_the_sensors(world: dict[str, Any]) -> None:
    caller = caller_of(world["owner"])
    specs, site_id = series_validate(
        caller=caller,
        team_id=world["team"].pk,
        specs=[
            {"kind": "sensor", "sensor": world["heat"].pk},
            {"kind": "sensor", "sensor": world["pressure"].pk, "period_s": 0},
            {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "max", "period_s": 3600},
        ],
    )
    assert site_id == world["mill"].pk
    assert specs == [
        {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "avg", "period_s": 60},
        {"kind": "sensor", "sensor": world["pressure"].pk, "aggregation": "last", "period_s": 0},
        {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "max", "period_s": 3600},
    ]
    assert series_validate(caller=caller, team_id=world["team"].pk, specs=[]) == ([], None)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("heat", "series[0]"),
        ({"kind": "chart"}, "series[0].kind"),
        ({"kind": "sensor"}, "series[0].sensor"),
        ({"kind": "sensor", "sensor": "7"}, "series[0].sensor"),
        ({"kind": "sensor", "sensor": True}, "series[0].sensor"),
        ({"kind": "sensor", "sensor": 1, "aggregation": "median"}, "series[0].aggregation"),
        ({"kind": "sensor", "sensor": 1, "period_s": -1}, "series[0].period_s"),
        ({"kind": "sensor", "sensor": 1, "period_s": 10**9}, "series[0].period_s"),
        (
            {"kind": "sensor", "sensor": 1, "period_s": 0, "aggregation": "avg"},
            "series[0].aggregation",
        ),
        ({"kind": "sensor", "sensor": 1, "colour": "red"}, "series[0].colour"),
        ({"kind": "model", "model": 1, "signal": "mood"}, "series[0].signal"),
        ({"kind": "model", "model": 1, "signal": "volume", "period_s": 30}, "series[0].period_s"),
        ({"kind": "model", "model": 1, "signal": "drift_psi", "input": ""}, "series[0].input"),
    ],
)
def test_bad_shapes_are_400_naming_the_field(world: dict[str, Any], spec: Any, field: str) -> None:
    with pytest.raises(ApplicationError) as raised:
        series_validate(caller=caller_of(world["owner"]), team_id=world["team"].pk, specs=[spec])
    assert raised.value.status_code == 400
    assert raised.value.code == "invalid_series"
    assert raised.value.message.startswith(f"{field}:")
    assert list(raised.value.details) == [field]


def test_not_a_list_or_too_many_is_400(world: dict[str, Any]) -> None:
    caller = caller_of(world["owner"])
    for specs in ({"kind": "sensor"}, [{"kind": "sensor", "sensor": world["heat"].pk}] * 21):
        with pytest.raises(ApplicationError) as raised:
            series_validate(caller=caller, team_id=world["team"].pk, specs=specs)  # type: ignore[arg-type]
        assert raised.value.status_code == 400
        assert list(raised.value.details) == ["series"]


def test_sensors_of_two_sites_are_400(world: dict[str, Any]) -> None:
    with pytest.raises(ApplicationError) as raised:
        series_validate(
            caller=caller_of(world["owner"]),
            team_id=world["team"].pk,
            specs=[
                {"kind": "sensor", "sensor": world["heat"].pk},
                {"kind": "sensor", "sensor": world["far"].pk},
            ],
        )
    assert raised.value.status_code == 400
    assert raised.value.code == "sensors_of_several_sites"
    assert list(raised.value.details) == ["series[1].sensor"]


def test_other_teams_and_unseen_sites_sensors_are_not_found(world: dict[str, Any]) -> None:
    stranger = member("owner")
    foreign = sensor_of(site_of(stranger.memberships.get().team, "Their mill"), "Their heat")
    # A team editor sees the sites they hold a role on only.
    editor = member("editor", team=world["team"])
    site_role(world["mill"], editor, "viewer")
    team_id = world["team"].pk
    for caller, sensor in [
        (caller_of(world["owner"]), foreign),  # another team's
        (caller_of(world["owner"]), None),  # none at all
        (caller_of(editor), world["far"]),  # a site of the team the editor has no role on
        (caller_of(stranger), world["heat"]),  # the team is not theirs
    ]:
        sensor_id = sensor.pk if sensor is not None else 10**9
        with pytest.raises(NotFound) as raised:
            series_validate(
                caller=caller, team_id=team_id, specs=[{"kind": "sensor", "sensor": sensor_id}]
            )
        assert list(raised.value.details) == ["series[0].sensor"]
    # The editor's own site is fine; the platform itself sees every sensor of the team.
    assert (
        series_validate(
            caller=caller_of(editor),
            team_id=team_id,
            specs=[{"kind": "sensor", "sensor": world["heat"].pk}],
        )[1]
        == world["mill"].pk
    )
    for system in (None, Caller.system()):
        assert (
            series_validate(
                caller=system,
                team_id=team_id,
                specs=[{"kind": "sensor", "sensor": world["far"].pk}],
            )[1]
            == world["far"].site_id
        )


def test_model_specs_are_checked_against_the_models_columns(world: dict[str, Any]) -> None:
    machine = model_of(world["team"])
    caller = caller_of(world["owner"])
    team_id = world["team"].pk

    def check(spec: dict[str, Any]) -> dict[str, Any]:
        specs, site_id = series_validate(
            caller=caller, team_id=team_id, specs=[{"kind": "model", "model": machine.pk, **spec}]
        )
        assert site_id is None
        return specs[0]

    assert check({"signal": "volume"}) == {
        "kind": "model",
        "model": machine.pk,
        "signal": "volume",
        "period_s": 3600,
    }
    assert check({"signal": "accuracy", "period_s": 600})["output"] == "failed"  # the first
    assert check({"signal": "prediction_mean", "output": "energy"})["output"] == "energy"
    assert check({"signal": "class_share", "label": "yes"})["label"] == "yes"
    assert check({"signal": "prediction_mean", "label": True})["label"] == "true"
    assert check({"signal": "drift_psi", "input": "plan"})["input"] == "plan"
    for spec, field in [
        ({"signal": "class_share"}, "label"),
        ({"signal": "class_share", "output": "energy", "label": "x"}, "output"),
        ({"signal": "prediction_mean"}, "label"),  # a class output: the mean of which class?
        ({"signal": "accuracy", "output": "nope"}, "output"),
        ({"signal": "drift_psi"}, "input"),
        ({"signal": "drift_psi", "input": "failed"}, "input"),
    ]:
        with pytest.raises(ApplicationError) as raised:
            check(spec)
        assert raised.value.status_code == 400
        assert list(raised.value.details) == [f"series[0].{field}"]
    stranger = member("owner")
    with pytest.raises(NotFound):
        series_validate(
            caller=caller_of(stranger),
            team_id=team_id,
            specs=[{"kind": "model", "model": machine.pk, "signal": "volume"}],
        )
    theirs = model_of(stranger.memberships.get().team)
    with pytest.raises(NotFound):
        series_validate(
            caller=caller,
            team_id=team_id,
            specs=[{"kind": "model", "model": theirs.pk, "signal": "volume"}],
        )


def test_labels(world: dict[str, Any]) -> None:
    assert series_label({"kind": "sensor", "sensor": 4}) == "Sensor 4 · avg / 1 min"
    assert series_label({"kind": "sensor", "sensor": 4, "period_s": 0}, name="Heat") == "Heat"
    assert (
        series_label({"kind": "model", "model": 2, "signal": "drift_psi", "input": "plan"})
        == "Model 2 · drift_psi (plan) / 1 h"
    )


# --- sensor points ------------------------------------------------------------------------------


def minute_of_readings(owner: Any, sensor: Any) -> list[tuple[datetime, float]]:
    """Three minutes from T0: readings every 20 s (values 1..9), then a silent minute, then
    one at 4 min 30 s."""
    points = [(T0 + seconds(20 * i), float(i + 1)) for i in range(9)]
    points.append((T0 + seconds(270), 100.0))
    send(owner, sensor, points)
    return points


def test_raw_points_are_the_readings(world: dict[str, Any]) -> None:
    points = minute_of_readings(world["owner"], world["heat"])
    spec = {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "last", "period_s": 0}
    got = series_points(spec, team_id=world["team"].pk, start=T0, end=T0 + seconds(300))
    assert got == points
    # [start, end): the reading at `end` is not in
    got = series_points(
        spec, team_id=world["team"].pk, start=T0 + seconds(20), end=T0 + seconds(60)
    )
    assert got == points[1:3]


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        ("avg", [2.0, 5.0, 8.0, None, 100.0]),
        ("min", [1.0, 4.0, 7.0, None, 100.0]),
        ("max", [3.0, 6.0, 9.0, None, 100.0]),
        ("last", [3.0, 6.0, 9.0, None, 100.0]),
        ("count", [3.0, 3.0, 3.0, 0.0, 1.0]),
    ],
)
def test_per_minute_from_the_rollups_and_the_readings(
    world: dict[str, Any], aggregation: str, expected: list[float | None]
) -> None:
    minute_of_readings(world["owner"], world["heat"])
    spec = {
        "kind": "sensor",
        "sensor": world["heat"].pk,
        "aggregation": aggregation,
        "period_s": 60,
    }
    # A start inside a minute still gives that whole minute (periods are aligned).
    got = series_points(
        spec, team_id=world["team"].pk, start=T0 + seconds(5), end=T0 + seconds(300)
    )
    assert got == [(T0 + timedelta(minutes=m), value) for m, value in enumerate(expected)]


def test_periods_that_are_not_whole_minutes_aggregate_the_readings(world: dict[str, Any]) -> None:
    minute_of_readings(world["owner"], world["heat"])
    spec = {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "avg", "period_s": 90}
    got = series_points(spec, team_id=world["team"].pk, start=T0, end=T0 + seconds(300))
    assert int(T0.timestamp()) % 90 == 0  # so the 90 s periods start at T0
    assert got == [
        (T0, 3.0),  # 1..5 at 0, 20, 40, 60 and 80 s
        (T0 + seconds(90), 7.5),  # 6..9 at 100..160 s
        (T0 + seconds(180), None),
        (T0 + seconds(270), 100.0),
    ]


def test_hours_read_the_hour_rollups(world: dict[str, Any]) -> None:
    send(
        world["owner"],
        world["heat"],
        [(T0 + timedelta(minutes=10 * i), float(i)) for i in range(12)],  # two hours
    )
    spec = {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "avg", "period_s": 3600}
    got = series_points(spec, team_id=world["team"].pk, start=T0, end=T0 + timedelta(hours=2))
    assert got == [(T0, 2.5), (T0 + timedelta(hours=1), 8.5)]
    count = {**spec, "aggregation": "count", "period_s": 7200}
    assert series_points(
        count, team_id=world["team"].pk, start=T0, end=T0 + timedelta(hours=2)
    ) == [(T0, 12.0)]


def test_too_many_periods_are_drawn_coarser(world: dict[str, Any]) -> None:
    minute_of_readings(world["owner"], world["heat"])
    spec = {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "max", "period_s": 60}
    got = series_points(
        spec, team_id=world["team"].pk, start=T0, end=T0 + seconds(300), max_points=3
    )
    assert got == [(T0, 6.0), (T0 + seconds(120), 9.0), (T0 + seconds(240), 100.0)]
    raw = {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "last", "period_s": 0}
    got = series_points(
        raw, team_id=world["team"].pk, start=T0, end=T0 + seconds(300), max_points=5
    )
    assert len(got) <= 5
    assert got == [
        (T0, 3.0),
        (T0 + seconds(60), 6.0),
        (T0 + seconds(120), 9.0),
        (T0 + seconds(180), None),
        (T0 + seconds(240), 100.0),
    ]


def test_another_teams_sensor_has_no_points(world: dict[str, Any]) -> None:
    minute_of_readings(world["owner"], world["heat"])
    spec = {"kind": "sensor", "sensor": world["heat"].pk, "period_s": 0}
    stranger_team = member("owner").memberships.get().team
    assert series_points(spec, team_id=stranger_team.pk, start=T0, end=T0 + seconds(300)) == []


# --- the current value --------------------------------------------------------------------------


def test_sensor_value_at_a_moment(world: dict[str, Any]) -> None:
    team_id = world["team"].pk
    last = {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "last", "period_s": 0}
    assert series_value(last, team_id=team_id, at=T0) == (None, None)
    minute_of_readings(world["owner"], world["heat"])
    assert series_value(last, team_id=team_id, at=T0 + seconds(40)) == (T0 + seconds(40), 3.0)
    assert series_value(last, team_id=team_id, at=T0 + seconds(59)) == (T0 + seconds(40), 3.0)
    window = {"kind": "sensor", "sensor": world["heat"].pk, "aggregation": "avg", "period_s": 60}
    # (at - 60 s, at]: the readings at 20 and 40 s, and at 60 s itself
    assert series_value(window, team_id=team_id, at=T0 + seconds(60)) == (T0 + seconds(60), 3.0)
    count = {**window, "aggregation": "count"}
    # nothing in (200 s, 260 s]: the latest reading is older than the window, the count 0
    assert series_value(count, team_id=team_id, at=T0 + seconds(260)) == (T0 + seconds(160), 0.0)
    assert series_value(window, team_id=team_id, at=T0 + seconds(260)) == (T0 + seconds(160), None)


def test_long_windows_read_the_rollups_and_agree_with_the_readings(world: dict[str, Any]) -> None:
    points = [(T0 + seconds(37 * i), float((i * 7) % 23)) for i in range(400)]  # about 4 hours
    send(world["owner"], world["heat"], points)
    at = T0 + seconds(37 * 350 + 5)
    for aggregation in ("avg", "min", "max", "count", "last"):
        spec = {
            "kind": "sensor",
            "sensor": world["heat"].pk,
            "aggregation": aggregation,
            "period_s": 3 * 3600,
        }
        inside = [value for stamp, value in points if at - seconds(3 * 3600) < stamp <= at]
        expected = {
            "avg": sum(inside) / len(inside),
            "min": min(inside),
            "max": max(inside),
            "count": float(len(inside)),
            "last": inside[-1],
        }[aggregation]
        stamp, value = series_value(spec, team_id=world["team"].pk, at=at)
        assert stamp == T0 + seconds(37 * 350)
        assert value == pytest.approx(expected)


# --- model series -------------------------------------------------------------------------------


def test_model_signals_per_period(world: dict[str, Any]) -> None:
    machine = model_of(world["team"])
    team_id = world["team"].pk
    rows = [
        # hour 0: two "yes" of four, latencies 10..40, feedback on three (two right)
        {"temperature": 70.0, "plan": "day", "latency_ms": 10.0, "truth": {"failed": "yes"}},
        {"temperature": 65.0, "plan": "day", "latency_ms": 20.0, "truth": {"failed": "no"}},
        {"temperature": 40.0, "plan": "night", "latency_ms": 30.0, "truth": {"failed": "no"}},
        {"temperature": 45.0, "plan": "night", "latency_ms": 40.0},
    ]
    log_predictions(machine, rows, start=T0, step=timedelta(minutes=10))
    later = [
        # hour 2: one answer, energy predicted 110 for a true 100 (10 %: right) and 150 for 100
        {"temperature": 50.0, "plan": "day", "latency_ms": 7.0, "truth": {"energy": 100.0}},
        {"temperature": 70.0, "plan": "day", "energy": 150.0, "truth": {"energy": 100.0}},
    ]
    log_predictions(machine, later, start=T0 + timedelta(hours=2), step=timedelta(minutes=1))
    start, end = T0, T0 + timedelta(hours=3)

    def points(**spec: Any) -> list[float | None]:
        found = series_points(
            {"kind": "model", "model": machine.pk, "period_s": 3600, **spec},
            team_id=team_id,
            start=start,
            end=end,
        )
        assert [stamp for stamp, _value in found] == [T0 + timedelta(hours=h) for h in range(3)]
        return [value for _stamp, value in found]

    assert points(signal="volume") == [4.0, 0.0, 2.0]
    assert points(signal="class_share", output="failed", label="yes") == [0.5, None, 0.5]
    assert points(signal="prediction_mean", output="failed", label="yes") == [
        pytest.approx(0.5),
        None,
        pytest.approx(0.5),
    ]
    assert points(signal="prediction_mean", output="energy") == [
        pytest.approx((150 + 140 + 90 + 100) / 4),
        None,
        pytest.approx((110 + 150) / 2),
    ]
    # numpy's linear percentile: 30 + 0.85 × 10; and 5 + 0.95 × 2
    assert points(signal="latency_p95") == [pytest.approx(38.5), None, pytest.approx(6.9)]
    assert points(signal="accuracy", output="failed") == [pytest.approx(2 / 3), None, None]
    assert points(signal="accuracy", output="energy") == [None, None, pytest.approx(0.5)]
    # the current value: the hour ending at the last prediction
    at = T0 + timedelta(hours=2, minutes=1)
    volume = {"kind": "model", "model": machine.pk, "signal": "volume", "period_s": 3600}
    assert series_value(volume, team_id=team_id, at=at) == (at, 2.0)
    assert series_value(volume, team_id=team_id, at=T0 - seconds(1)) == (None, None)
    quiet = T0 + timedelta(hours=1, minutes=50)
    assert series_value(volume, team_id=team_id, at=quiet) == (T0 + timedelta(minutes=30), 0.0)
    share = {**volume, "signal": "class_share", "output": "failed", "label": "yes"}
    assert series_value(share, team_id=team_id, at=quiet) == (T0 + timedelta(minutes=30), None)
    assert series_value(share, team_id=team_id, at=T0 + timedelta(minutes=30)) == (
        T0 + timedelta(minutes=30),
        0.5,
    )


def test_drift_psi_fires_on_a_shifted_log_and_not_on_an_unshifted_one(
    world: dict[str, Any],
) -> None:
    machine = model_of(world["team"])
    team_id = world["team"].pk
    # hour 0: 300 rows of the training data; hour 1: 300 more, 25 degrees warmer
    log_predictions(machine, training_rows(300), start=T0, step=seconds(10))
    log_predictions(
        machine,
        training_rows(300, shift=25.0, offset=300),
        start=T0 + timedelta(hours=1),
        step=seconds(10),
    )
    spec = {"kind": "model", "model": machine.pk, "signal": "drift_psi", "input": "temperature"}
    points = series_points(spec, team_id=team_id, start=T0, end=T0 + timedelta(hours=2))
    (_first, unshifted), (_second, shifted) = points
    assert unshifted is not None and unshifted < 0.1
    assert shifted is not None and shifted > 0.2
    # the plan did not move
    plan = {**spec, "input": "plan"}
    for _stamp, value in series_points(
        plan, team_id=team_id, start=T0, end=T0 + timedelta(hours=2)
    ):
        assert value is not None and value < 0.1
    # a rule at the end of each hour sees the same
    _at, now = series_value(spec, team_id=team_id, at=T0 + timedelta(hours=2) - seconds(1))
    assert now == pytest.approx(shifted)
    _at, before = series_value(spec, team_id=team_id, at=T0 + timedelta(hours=1) - seconds(1))
    assert before == pytest.approx(unshifted)
    # too few rows in a window: no value
    few = {**spec, "period_s": 60}
    _at, value = series_value(few, team_id=team_id, at=T0 + timedelta(minutes=1))
    assert value is None


def test_over_the_row_bound_each_period_reads_its_own_rows(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = model_of(world["team"])
    log_predictions(machine, training_rows(40), start=T0, step=seconds(60))
    log_predictions(
        machine, training_rows(40, shift=25.0), start=T0 + timedelta(hours=1), step=seconds(60)
    )
    spec = {"kind": "model", "model": machine.pk, "signal": "drift_psi", "input": "temperature"}
    whole = series_points(spec, team_id=world["team"].pk, start=T0, end=T0 + timedelta(hours=2))
    monkeypatch.setattr(series, "MODEL_ROWS", 50)
    monkeypatch.setattr(series, "MODEL_ROWS_PER_BUCKET_MIN", 25)
    sampled = series_points(spec, team_id=world["team"].pk, start=T0, end=T0 + timedelta(hours=2))
    # 25 of each hour's 40 rows (the newest): both hours still have a value, the drift shows
    assert [value is not None for _stamp, value in sampled] == [True, True]
    assert sampled[1][1] > 0.2 and whole[1][1] > 0.2
    assert sampled[0][1] != whole[0][1]  # a sample, not the whole hour
