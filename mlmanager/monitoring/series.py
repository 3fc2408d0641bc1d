"""Series: what charts draw and rules watch, as points over time and as one current value.

A series is a JSON spec (see monitoring.models):

- `{"kind": "sensor", "sensor": id, "aggregation": "avg|min|max|last|count", "period_s": 60}`:
  a sensor's readings. `period_s` 0 is the raw readings (aggregation `last`, each point a
  reading; the default aggregation then); otherwise one point per period, the periods
  aligned on the Unix epoch (60 s: minutes, 3600 s: hours, 86400 s: UTC days). Periods that
  are whole minutes or hours read the minute or hour rollups (avg, min, max, count);
  `last`, and other periods, aggregate the readings in SQL.
- `{"kind": "dataset", "dataset": id, "column": name, "time_column": name, "aggregation": ...,
  "period_s": 86400}`: a dataset's column per period of one of its time columns, for charts
  (monitoring.dataset_series; rules refuse it).
- `{"kind": "model", "model": id, "signal": ..., "period_s"?: 3600, "output"?, "label"?,
  "input"?}`: a model's prediction log per period:
  - `volume`: predictions made (a count, in SQL);
  - `prediction_mean`: the mean predicted value of a regression `output`, or of a
    classification output the mean probability of `label`;
  - `class_share`: the share of predictions of `label` (classification outputs);
  - `latency_p95`: the 95th percentile of the answer time in ms;
  - `accuracy`: the share of correct answers among predictions made in the period that got
    feedback (monitoring.drift.accuracy: for amounts, within 10 % of the true value);
  - `drift_psi`: the population stability index of `input` in the period against the
    training data's profile (monitoring.drift).
  `output` defaults to the model's first output. The signals other than volume read JSON
  (outputs, inputs, feedback), which is done here in Python over at most MODEL_ROWS
  predictions per call (the newest of the range; over a chart's range holding more, the
  newest MODEL_ROWS / buckets of each bucket): a sample, for the shares, means and PSI these
  signals are.

Points cover the periods that overlap [start, end) (the first one may start before `start`);
each has a value or None (no data; count and volume: 0). A range with more than
`max_points` periods is drawn with a coarser period (a multiple of the asked one, so still
aligned with the rollups); raw readings beyond `max_points` are drawn as the last reading
of each such period.

`series_value` is what a rule compares: the aggregate over the period ending at `at`, with
the time of the latest data point (for `no_data`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller, Credential
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.core.filters import MAX_ID
from mlmanager.monitoring import dataset_series, drift
from mlmanager.monitoring.selectors import (
    model_training_profile,
    prediction_count_in,
    prediction_latest_at,
    prediction_period_counts,
    prediction_rows,
    sensors_newest_readings,
    series_datasets,
    series_machines,
)
from mlmanager.sites.selectors import (
    SENSOR_AGGREGATIONS,
    sensor_latest_reading,
    sensor_period_values,
    sensor_readings_between,
    sensor_window_value,
    sensors_latest_readings,
    sensors_window_values,
    series_sensor_sites,
)

MAX_SERIES = 20
MAX_PERIOD_S = 31 * 24 * 3600
SENSOR_PERIOD_S = 60
MODEL_PERIOD_S = 3600
MODEL_MIN_PERIOD_S = 60
MODEL_SIGNALS = (
    "volume",
    "prediction_mean",
    "class_share",
    "latency_p95",
    "accuracy",
    "drift_psi",
)
# Prediction rows read per call for the JSON-based signals (a few MB of JSON at most).
MODEL_ROWS = 20_000
# Per bucket, when a chart's range holds more than MODEL_ROWS predictions.
MODEL_ROWS_PER_BUCKET_MIN = 200
# PSI over fewer rows than this is noise: no value.
MIN_DRIFT_ROWS = 20

_SENSOR_KEYS = {"kind", "sensor", "aggregation", "period_s"}
_MODEL_KEYS = {"kind", "model", "signal", "period_s", "output", "label", "input"}
_CLASS_TASKS = {"binary", "multiclass", "classification"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- validation ------------------------------------------------------------------------------


def _invalid(index: int, field: str | None, message: str, *, code: str = "invalid_series") -> Any:
    name = f"series[{index}]" + (f".{field}" if field else "")
    return ApplicationError(f"{name}: {message}", code=code, details={name: [message]})


def _not_found(index: int, field: str, message: str) -> NotFound:
    name = f"series[{index}].{field}"
    return NotFound(f"{name}: {message}", details={name: [message]})


def _positive_id(index: int, spec: dict[str, Any], field: str) -> int:
    value = spec.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise _invalid(index, field, _("an id (a positive whole number) is required"))
    return value


def _period(index: int, spec: dict[str, Any], *, default: int, minimum: int) -> int:
    value = spec.get("period_s", default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not ((value == 0 and minimum == 0) or minimum <= value <= MAX_PERIOD_S)
    ):
        raise _invalid(
            index,
            "period_s",
            _("a whole number of seconds from %(low)s to %(high)s")
            % {"low": max(minimum, 1) if minimum else 0, "high": MAX_PERIOD_S},
        )
    return value


def _normalise_sensor(index: int, spec: dict[str, Any]) -> dict[str, Any]:
    sensor = _positive_id(index, spec, "sensor")
    period = _period(index, spec, default=SENSOR_PERIOD_S, minimum=0)
    aggregation = spec.get("aggregation", "last" if period == 0 else "avg")
    if aggregation not in SENSOR_AGGREGATIONS:
        raise _invalid(
            index, "aggregation", _("one of %(names)s") % {"names": ", ".join(SENSOR_AGGREGATIONS)}
        )
    if period == 0 and aggregation != "last":
        raise _invalid(
            index, "aggregation", _("raw readings (period_s 0) take the aggregation last")
        )
    return {"kind": "sensor", "sensor": sensor, "aggregation": aggregation, "period_s": period}


def _normalise_model(index: int, spec: dict[str, Any]) -> dict[str, Any]:
    model = _positive_id(index, spec, "model")
    signal = spec.get("signal")
    if signal not in MODEL_SIGNALS:
        raise _invalid(index, "signal", _("one of %(names)s") % {"names": ", ".join(MODEL_SIGNALS)})
    period = _period(index, spec, default=MODEL_PERIOD_S, minimum=MODEL_MIN_PERIOD_S)
    normalised: dict[str, Any] = {"kind": "model", "model": model, "signal": signal}
    normalised["period_s"] = period
    for field in ("output", "input"):
        if field in spec and not (isinstance(spec[field], str) and spec[field]):
            raise _invalid(index, field, _("a column name is required"))
    if "label" in spec and (spec["label"] is None or isinstance(spec["label"], dict | list)):
        raise _invalid(index, "label", _("a class label is required"))
    for field in ("output", "label", "input"):
        if field in spec:
            normalised[field] = spec[field]
    return normalised


def _check_model(index: int, spec: dict[str, Any], machine: dict[str, Any]) -> dict[str, Any]:
    """Fill in and check the output, label and input against the model's columns."""
    signal = spec["signal"]
    outputs = {output["name"]: output for output in machine["outputs"]}
    checked = {key: value for key, value in spec.items() if key not in ("output", "label", "input")}
    if signal in ("prediction_mean", "class_share", "accuracy"):
        output = spec.get("output") or (machine["outputs"][0]["name"] if outputs else None)
        if output not in outputs:
            raise _invalid(index, "output", _("not an output of this model"))
        checked["output"] = output
        is_class = outputs[output].get("task") in _CLASS_TASKS
        if signal == "class_share" and not is_class:
            raise _invalid(index, "output", _("class shares need a classification output"))
        if signal == "class_share" or (signal == "prediction_mean" and is_class):
            if "label" not in spec:
                raise _invalid(index, "label", _("a class label is required for this output"))
            checked["label"] = drift.category_key(spec["label"])
    if signal == "drift_psi":
        if spec.get("input") not in machine["inputs"]:
            raise _invalid(index, "input", _("an input of this model is required"))
        checked["input"] = spec["input"]
    return checked


def series_validate(
    *, caller: Caller | None, team_id: int, specs: list[Any]
) -> tuple[list[dict[str, Any]], int | None]:
    """The specs with their defaults filled in, checked against the team's sensors and models
    the caller sees (`None`, or the system caller: any of the team's), and the site of their
    sensors (None when none names a sensor).

    Bad shapes are 400 `invalid_series` with the field named (`series[1].sensor: …`); sensors
    and models the caller cannot see (another team's, a site they hold no role on, none at
    all) are 404, the same answer for each; sensors of two sites are 400
    `sensors_of_several_sites`."""
    if caller is not None and caller.user_id is None and caller.credential == Credential.SYSTEM:
        caller = None
    if not isinstance(specs, list):
        raise ApplicationError(
            _("series: a list of series is required"),
            code="invalid_series",
            details={"series": [_("a list of series is required")]},
        )
    if len(specs) > MAX_SERIES:
        raise ApplicationError(
            _("series: at most %(count)s series") % {"count": MAX_SERIES},
            code="invalid_series",
            details={"series": [_("at most %(count)s series") % {"count": MAX_SERIES}]},
        )
    normalised: list[dict[str, Any]] = []
    for index, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise _invalid(index, None, _("an object is required"))
        kind = spec.get("kind")
        if kind == "dataset":
            try:
                normalised.append(dataset_series.normalise(spec))
            except dataset_series.DatasetSeriesError as error:
                raise _invalid(index, error.field, error.message) from None
            continue
        if kind not in ("sensor", "model"):
            raise _invalid(index, "kind", _("sensor, model or dataset"))
        unknown = sorted(set(spec) - (_SENSOR_KEYS if kind == "sensor" else _MODEL_KEYS))
        if unknown:
            raise _invalid(index, unknown[0], _("unknown field"))
        normalised.append(
            _normalise_sensor(index, spec) if kind == "sensor" else _normalise_model(index, spec)
        )
    sensor_ids = {spec["sensor"] for spec in normalised if spec["kind"] == "sensor"}
    model_ids = {spec["model"] for spec in normalised if spec["kind"] == "model"}
    sites = (
        series_sensor_sites(caller=caller, team_id=team_id, sensor_ids=sensor_ids)
        if sensor_ids
        else {}
    )
    machines = (
        series_machines(caller=caller, team_id=team_id, machine_ids=sorted(model_ids))
        if model_ids
        else {}
    )
    dataset_ids = sorted({spec["dataset"] for spec in normalised if spec["kind"] == "dataset"})
    datasets = (
        series_datasets(caller=caller, team_id=team_id, dataset_ids=dataset_ids)
        if dataset_ids
        else {}
    )
    site_id: int | None = None
    for index, spec in enumerate(normalised):
        if spec["kind"] == "dataset":
            found = datasets.get(spec["dataset"])
            if found is None:
                raise _not_found(index, "dataset", _("no such dataset"))
            if not found["ready"]:
                raise _invalid(index, "dataset", _("the dataset is not ready"))
            try:
                dataset_series.check_columns(spec, found["columns"])
            except dataset_series.DatasetSeriesError as error:
                raise _invalid(index, error.field, error.message) from None
            continue
        if spec["kind"] == "sensor":
            if spec["sensor"] not in sites:
                raise _not_found(index, "sensor", _("no such sensor"))
            if site_id is not None and sites[spec["sensor"]] != site_id:
                raise _invalid(
                    index,
                    "sensor",
                    _("the sensors of one chart or rule must belong to one site"),
                    code="sensors_of_several_sites",
                )
            site_id = sites[spec["sensor"]]
        else:
            if spec["model"] not in machines:
                raise _not_found(index, "model", _("no such model"))
            normalised[index] = _check_model(index, spec, machines[spec["model"]])
    return normalised, site_id


def _filled(spec: dict[str, Any]) -> dict[str, Any]:
    """Defaults of a spec stored before they were filled in (rules read specs from rows)."""
    if spec.get("kind") == "dataset":
        return {
            **spec,
            "aggregation": spec.get("aggregation", "avg"),
            "period_s": spec.get("period_s", dataset_series.DEFAULT_PERIOD_S),
        }
    if spec.get("kind") == "sensor":
        period = spec.get("period_s", SENSOR_PERIOD_S)
        return {
            **spec,
            "period_s": period,
            "aggregation": spec.get("aggregation", "last" if period == 0 else "avg"),
        }
    return {**spec, "period_s": spec.get("period_s", MODEL_PERIOD_S)}


# --- labels ------------------------------------------------------------------------------------


def _duration(seconds: int) -> str:
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def series_label(spec: dict[str, Any], *, name: str | None = None) -> str:
    """A short text for a legend: `name` (the sensor's or model's, when the caller has it)
    or the kind and id, then what is drawn."""
    spec = _filled(spec)
    if spec.get("kind") == "dataset":
        return f"{dataset_series.label(spec, name=name)} / {_duration(spec['period_s'])}"
    if spec.get("kind") == "sensor":
        subject = name or _("Sensor %(id)s") % {"id": spec.get("sensor")}
        if not spec["period_s"]:
            return str(subject)
        return f"{subject} · {spec['aggregation']} / {_duration(spec['period_s'])}"
    subject = name or _("Model %(id)s") % {"id": spec.get("model")}
    signal = str(spec.get("signal"))
    detail = spec.get("input") or spec.get("label")
    if detail is not None:
        signal = f"{signal} ({detail})"
    if spec.get("output") and signal.split(" ")[0] in ("prediction_mean", "accuracy"):
        signal = f"{signal} [{spec['output']}]"
    return f"{subject} · {signal} / {_duration(spec['period_s'])}"


# --- points ------------------------------------------------------------------------------------


def _seconds(moment: datetime) -> float:
    return (moment - _EPOCH).total_seconds()


def _bucket_start(number: int, period_s: int) -> datetime:
    return _EPOCH + timedelta(seconds=number * period_s)


def _buckets(
    start: datetime, end: datetime, period_s: int, max_points: int
) -> tuple[int, int, int]:
    """(period, first bucket, bucket after the last) covering [start, end), the period made a
    multiple of `period_s` coarse enough for at most `max_points` buckets."""
    span = max(_seconds(end) - _seconds(start), 1.0)
    period = period_s * max(1, math.ceil(span / (period_s * max(max_points, 1))))
    first = math.floor(_seconds(start) / period)
    after = math.ceil(_seconds(end) / period)
    while after - first > max(max_points, 1):  # the alignment may add one
        period += period_s
        first = math.floor(_seconds(start) / period)
        after = math.ceil(_seconds(end) / period)
    return period, first, max(after, first + 1)


def series_points(
    spec: dict[str, Any],
    *,
    team_id: int,
    start: datetime,
    end: datetime,
    max_points: int = 600,
) -> list[tuple[datetime, float | None]]:
    """The series' points over [start, end), oldest first (see the module's docstring)."""
    spec = _filled(spec)
    if end <= start:
        return []
    if spec["kind"] == "sensor":
        return _sensor_points(spec, team_id=team_id, start=start, end=end, max_points=max_points)
    if spec["kind"] == "dataset":
        return _dataset_points(spec, team_id=team_id, start=start, end=end, max_points=max_points)
    return _model_points(spec, team_id=team_id, start=start, end=end, max_points=max_points)


def _dataset_points(
    spec: dict[str, Any], *, team_id: int, start: datetime, end: datetime, max_points: int
) -> list[tuple[datetime, float | None]]:
    found = series_datasets(caller=None, team_id=team_id, dataset_ids=[spec["dataset"]])
    dataset = found.get(spec["dataset"])
    if dataset is None or not dataset["ready"]:  # deleted since the chart was saved
        return []
    period, first, after = _buckets(start, end, spec["period_s"], max_points)
    return dataset_series.points(
        spec,
        parquet_name=dataset["parquet_path"],
        start=_bucket_start(first, period),
        end=_bucket_start(after, period),
        period_s=period,
    )


def _sensor_points(
    spec: dict[str, Any], *, team_id: int, start: datetime, end: datetime, max_points: int
) -> list[tuple[datetime, float | None]]:
    sensor_id = spec["sensor"]
    if not series_sensor_sites(caller=None, team_id=team_id, sensor_ids=[sensor_id]):
        return []
    aggregation, period_s = spec["aggregation"], spec["period_s"]
    if period_s == 0:
        readings = sensor_readings_between(
            sensor_id=sensor_id, start=start, end=end, limit=max_points + 1
        )
        if len(readings) <= max_points:
            return [(stamp, value) for stamp, value in readings]
        period_s = 1  # too many: the last reading of each period
    period, first, after = _buckets(start, end, period_s, max_points)
    values = sensor_period_values(
        sensor_id=sensor_id,
        start=_bucket_start(first, period),
        end=_bucket_start(after, period),
        period_s=period,
        aggregation=aggregation,
    )
    empty = 0.0 if aggregation == "count" else None
    return [
        (_bucket_start(number, period), values.get(number, empty)) for number in range(first, after)
    ]


def _model_points(
    spec: dict[str, Any], *, team_id: int, start: datetime, end: datetime, max_points: int
) -> list[tuple[datetime, float | None]]:
    machine_id = spec["model"]
    machines = series_machines(caller=None, team_id=team_id, machine_ids=[machine_id])
    if machine_id not in machines:
        return []
    period, first, after = _buckets(start, end, spec["period_s"], max_points)
    low, high = _bucket_start(first, period), _bucket_start(after, period)
    signal = spec["signal"]
    with_feedback = signal == "accuracy"
    counts = prediction_period_counts(
        team_id=team_id,
        machine_id=machine_id,
        start=low,
        end=high,
        period_s=period,
        with_feedback=with_feedback,
    )
    if signal == "volume":
        return [
            (_bucket_start(number, period), float(counts.get(number, 0)))
            for number in range(first, after)
        ]
    signal_of = _model_signal(spec, team_id=team_id, machine=machines[machine_id])
    rows_by_bucket: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    fields = _SIGNAL_FIELDS[signal]
    if sum(counts.values()) <= MODEL_ROWS:
        rows = prediction_rows(
            team_id=team_id,
            machine_id=machine_id,
            start=low,
            end=high,
            fields=fields,
            limit=MODEL_ROWS,
            with_feedback=with_feedback,
        )
        for row in rows:
            rows_by_bucket[math.floor(_seconds(row[0]) / period)].append(row)
    else:
        per_bucket = max(MODEL_ROWS // max(len(counts), 1), MODEL_ROWS_PER_BUCKET_MIN)
        for number in counts:
            rows_by_bucket[number] = prediction_rows(
                team_id=team_id,
                machine_id=machine_id,
                start=_bucket_start(number, period),
                end=_bucket_start(number + 1, period),
                fields=fields,
                limit=per_bucket,
                with_feedback=with_feedback,
            )
    return [
        (
            _bucket_start(number, period),
            signal_of(rows_by_bucket[number]) if number in rows_by_bucket else None,
        )
        for number in range(first, after)
    ]


# --- the current value -------------------------------------------------------------------------


def series_value(
    spec: dict[str, Any], *, team_id: int, at: datetime
) -> tuple[datetime | None, float | None]:
    """(time of the latest data point at or before `at`, the aggregate over the period
    (at − period_s, at]); (None, None) when the series has no data up to `at`. The value is
    None when the period holds no data (count and volume: 0); raw sensor series (period 0)
    give their latest reading."""
    spec = _filled(spec)
    if spec["kind"] == "dataset":
        raise ValueError("a dataset's column is drawn, never watched: rules refuse it")
    if spec["kind"] == "sensor":
        latest = sensor_latest_reading(sensor_id=spec["sensor"], at=at)
        if latest is None:
            return None, None
        if spec["period_s"] == 0:
            return latest
        value = sensor_window_value(
            sensor_id=spec["sensor"],
            start=at - timedelta(seconds=spec["period_s"]),
            end=at,
            aggregation=spec["aggregation"],
        )
        return latest[0], value
    machine_id = spec["model"]
    latest_at = prediction_latest_at(team_id=team_id, machine_id=machine_id, at=at)
    if latest_at is None:
        return None, None
    window_start = at - timedelta(seconds=spec["period_s"])
    signal = spec["signal"]
    if signal == "volume":
        count = prediction_count_in(
            team_id=team_id, machine_id=machine_id, start=window_start, end=at
        )
        return latest_at, float(count)
    machines = series_machines(caller=None, team_id=team_id, machine_ids=[machine_id])
    if machine_id not in machines:
        return None, None
    rows = prediction_rows(
        team_id=team_id,
        machine_id=machine_id,
        start=window_start,
        end=at,
        fields=_SIGNAL_FIELDS[signal],
        limit=MODEL_ROWS,
        with_feedback=signal == "accuracy",
        end_inclusive=True,
    )
    signal_of = _model_signal(spec, team_id=team_id, machine=machines[machine_id])
    return latest_at, signal_of(rows) if rows else None


def series_key(spec: dict[str, Any]) -> tuple[Any, ...]:
    """A hashable identity of a spec (its defaults filled in), for `sensor_series_values`."""
    return tuple(sorted(_filled(spec).items()))


# Spec object id -> (the spec, a copy of it as keyed, its filled copy, its key), for the
# specs of the rules' definitions the evaluation caches (the same objects at every batch):
# filling and keying 1 000 specs per ingest batch showed in its profile. The entry holds the
# spec, so its id is not reused while it is here, and a spec changed since is keyed again.
# Bounded: cleared when it grows past the limit.
_SPEC_KEYS: dict[int, tuple[Any, dict[str, Any], dict[str, Any], tuple[Any, ...]]] = {}
_SPEC_KEYS_MAX = 100_000


def _keyed(raw_spec: dict[str, Any]) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """The spec filled and its `series_key` (ValueError for a spec that is not a sensor's)."""
    memo = _SPEC_KEYS.get(id(raw_spec))
    if memo is not None and memo[0] is raw_spec and memo[1] == raw_spec:
        return memo[2], memo[3]
    filled = _filled(raw_spec)
    if filled["kind"] != "sensor":
        raise ValueError("sensor_series_values reads sensor series only")
    if len(_SPEC_KEYS) >= _SPEC_KEYS_MAX:
        _SPEC_KEYS.clear()
    key = series_key(filled)
    _SPEC_KEYS[id(raw_spec)] = (raw_spec, dict(raw_spec), filled, key)
    return filled, key


def sensor_series_values(
    wanted: Iterable[tuple[dict[str, Any], datetime]],
    *,
    known_latest: dict[int, tuple[datetime, float]] | None = None,
) -> dict[tuple[tuple[Any, ...], datetime], tuple[datetime | None, float | None]]:
    """`series_value` of many sensor series at their moments, keyed by (series_key(spec),
    at): one query for the latest readings per distinct moment and one per distinct window
    (moment, period, aggregation), however many series (the scheduler asks for all its due
    rules' series at the same `now`).

    `known_latest`: sensor -> a reading the caller knows to be the sensor's newest at or
    before its own moment (the ingest: each sensor's newest new value, just stored); a
    moment asked that is that reading's is answered with it, without reading the sensors."""
    latest_wanted: dict[datetime, set[int]] = defaultdict(set)
    window_wanted: dict[tuple[datetime, int, str], set[int]] = defaultdict(set)
    asked: dict[tuple[tuple[Any, ...], datetime], dict[str, Any]] = {}
    for raw_spec, at in wanted:
        spec, key = _keyed(raw_spec)
        asked[(key, at)] = spec
        latest_wanted[at].add(spec["sensor"])
        if spec["period_s"]:
            window_wanted[(at, spec["period_s"], spec["aggregation"])].add(spec["sensor"])
    latest: dict[datetime, dict[int, tuple[datetime, float]]] = {}
    unknown: dict[datetime, list[int]] = {}
    for at, ids in latest_wanted.items():
        known: dict[int, tuple[datetime, float]] = {}
        rest = []
        for pk in ids:
            found = known_latest.get(pk) if known_latest is not None else None
            if found is not None and found[0] == at:
                known[pk] = found
            else:
                rest.append(pk)
        latest[at] = known
        if rest:
            unknown[at] = rest
    # The sensors' newest readings as the ingest keeps them on their rows: one plain query.
    # Only a sensor with a reading after a moment asked (evaluating the past) is probed in
    # its readings, and a window is read only for the sensors with a reading after its start
    # (for the others it is empty: a silent sensor costs nothing).
    probed = {pk for ids in unknown.values() for pk in ids}
    newest = sensors_newest_readings(sensor_ids=probed) if probed else {}
    for pk, found in (known_latest or {}).items():
        if pk not in probed:
            newest[pk] = found  # its moment's newest at or before it: no later one asked
    for at, asked_ids in unknown.items():
        known = latest[at]
        later = []
        for pk in asked_ids:
            found = newest.get(pk)
            if found is None:
                continue
            if found[0] <= at:
                known[pk] = found
            else:
                later.append(pk)
        if later:
            known.update(sensors_latest_readings(sensor_ids=later, at=at))
    windows: dict[tuple[datetime, int, str], dict[int, float | None]] = {}
    for (at, period, aggregation), ids in window_wanted.items():
        start = at - timedelta(seconds=period)
        recent = [pk for pk in ids if pk in newest and newest[pk][0] > start]
        windows[(at, period, aggregation)] = (
            sensors_window_values(sensor_ids=recent, start=start, end=at, aggregation=aggregation)
            if recent
            else {}
        )
    values: dict[tuple[tuple[Any, ...], datetime], tuple[datetime | None, float | None]] = {}
    for (key, at), spec in asked.items():
        found = latest[at].get(spec["sensor"])
        if found is None:
            values[(key, at)] = (None, None)
        elif not spec["period_s"]:
            values[(key, at)] = found
        else:
            window = windows[(at, spec["period_s"], spec["aggregation"])]
            empty = 0.0 if spec["aggregation"] == "count" else None
            values[(key, at)] = (found[0], window.get(spec["sensor"], empty))
    return values


# --- model signals over prediction rows --------------------------------------------------------

_SIGNAL_FIELDS: dict[str, tuple[str, ...]] = {
    "volume": (),
    "prediction_mean": ("outputs",),
    "class_share": ("outputs",),
    "latency_p95": ("latency_ms",),
    "accuracy": ("outputs", "feedback"),
    "drift_psi": ("inputs",),
}


def _answer(outputs: Any, output: str) -> dict[str, Any] | None:
    answer = (outputs or {}).get(output) if isinstance(outputs, dict) else None
    return answer if isinstance(answer, dict) else None


def _model_signal(spec: dict[str, Any], *, team_id: int, machine: dict[str, Any]) -> Any:
    """A function of a list of prediction rows ((created_at, *fields)) giving the signal."""
    signal = spec["signal"]
    output = str(spec.get("output") or "")
    task = next((item.get("task") for item in machine["outputs"] if item["name"] == output), None)
    if signal == "latency_p95":
        return lambda rows: drift.percentile((row[1] for row in rows), 95)
    if signal == "class_share":
        label = spec["label"]

        def share(rows: list[tuple[Any, ...]]) -> float | None:
            answers = [answer for row in rows if (answer := _answer(row[1], output)) is not None]
            if not answers:
                return None
            hits = sum(drift.category_key(answer.get("value")) == label for answer in answers)
            return hits / len(answers)

        return share
    if signal == "prediction_mean":
        label = spec.get("label")

        def mean(rows: list[tuple[Any, ...]]) -> float | None:
            values = []
            for row in rows:
                answer = _answer(row[1], output)
                if answer is None:
                    continue
                if label is None:
                    values.append(answer.get("value"))
                else:
                    values.append((answer.get("probabilities") or {}).get(label))
            return drift.mean(values)

        return mean
    if signal == "accuracy":

        def accuracy(rows: list[tuple[Any, ...]]) -> float | None:
            pairs = [
                ((_answer(outputs, output) or {}).get("value"), feedback[output])
                for _created, outputs, feedback in rows
                if isinstance(feedback, dict) and output in feedback
            ]
            return drift.accuracy(pairs, task="regression" if task == "regression" else "class")[0]

        return accuracy
    if signal == "drift_psi":
        name = spec["input"]
        distribution = drift.expected_distribution(
            model_training_profile(team_id=team_id, machine_id=spec["model"]).get(name)
        )

        def psi(rows: list[tuple[Any, ...]]) -> float | None:
            if distribution is None:
                return None
            values = [inputs.get(name) for _created, inputs in rows if isinstance(inputs, dict)]
            compared = drift.compare(distribution, values)
            return compared["psi"] if compared["count"] >= MIN_DRIFT_ROWS else None

        return psi
    raise ValueError(f"unknown signal {signal}")
