"""Graphs of a dataset: the 13 types drawn from a small mixed table, the checks, the sample,
other teams, the list's query count, the page, and the Plotly.js assets served by the app."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.datasets import graphs, plotly_assets
from mlmanager.datasets.files import local_path
from mlmanager.datasets.models import Dataset, DatasetGraph, dataset_storage_dir
from mlmanager.engine.profiling import profile_parquet

pytestmark = pytest.mark.django_db

ROWS = 60


def mixed_frame(rows: int = ROWS) -> pd.DataFrame:
    generator = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "height": generator.normal(170, 10, rows).round(1),
            "weight": generator.normal(70, 8, rows).round(1),
            "age": generator.integers(18, 90, rows),
            "score": generator.uniform(1, 5, rows).round(2),
            "city": generator.choice(["Lyon", "Paris", "Nice"], rows),
            "member": generator.choice(["yes", "no"], rows),
            "day": pd.date_range("2025-01-01", periods=rows, freq="D"),
        }
    )


def make_table(user: Any, frame: pd.DataFrame | None = None, *, name: str = "People") -> Dataset:
    frame = mixed_frame() if frame is None else frame
    dataset = Dataset(
        team=user.current_team,
        created_by=user,
        name=name,
        original_filename=f"{name}.parquet",
        storage_dir=dataset_storage_dir(user.current_team_id),
        source_name="source.parquet",
        status=Dataset.Status.READY,
    )
    path = local_path(dataset.parquet_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    dataset.profile = profile_parquet(path)
    dataset.row_count = dataset.profile["row_count"]
    dataset.column_count = dataset.profile["column_count"]
    dataset.save()
    return dataset


@pytest.fixture
def table(owner: Any) -> Dataset:
    return make_table(owner)


# Each type with every field it takes, and the trace types its figure holds.
EVERY_TYPE = {
    "scatter": (
        {
            "x": "height",
            "y": "weight",
            "hue": "city",
            "size": "score",
            "style": "member",
            "col": "member",
            "row": "city",
        },
        {"scatter"},
    ),
    "line": (
        {
            "x": "day",
            "y": "weight",
            "hue": "city",
            "style": "member",
            "col": "member",
            "row": "member",
        },
        {"scatter"},
    ),
    "histogram": ({"x": "height", "hue": "member", "col": "city", "row": "member"}, {"histogram"}),
    "box": ({"x": "city", "y": "weight", "hue": "member", "col": "city", "row": "member"}, {"box"}),
    "violin": (
        {"x": "city", "y": "weight", "hue": "member", "col": "member", "row": "city"},
        {"violin"},
    ),
    "bar": (
        {"x": "city", "y": "weight", "hue": "member", "col": "member", "row": "city"},
        {"bar"},
    ),
    "heatmap": ({"columns": ["height", "weight", "age"]}, {"heatmap"}),
    "pair": ({"columns": ["height", "weight", "age"], "hue": "city"}, {"scatter", "histogram"}),
    "density": (
        {"x": "height", "y": "weight", "hue": "member", "col": "city", "row": "member"},
        {"histogram2dcontour"},
    ),
    "pie": ({"x": "city", "y": "score", "col": "member", "row": "city"}, {"pie"}),
    "area": (
        {"x": "day", "y": "score", "hue": "city", "col": "city", "row": "member"},
        {"scatter"},
    ),
    "bubble": (
        {
            "x": "height",
            "y": "weight",
            "size": "score",
            "hue": "age",
            "style": "member",
            "col": "member",
            "row": "city",
        },
        {"scatter"},
    ),
    "scatter_3d": (
        {
            "x": "height",
            "y": "weight",
            "z": "age",
            "hue": "city",
            "size": "score",
            "style": "member",
        },
        {"scatter3d"},
    ),
}


def test_graph_types_lists_the_13(api: Any) -> None:
    response = api.get("/api/v1/graph_types/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 13
    assert [item["id"] for item in body["results"]] == [
        "scatter", "line", "histogram", "box", "violin", "bar", "heatmap", "pair", "density",
        "pie", "area", "bubble", "scatter_3d",
    ]  # fmt: skip
    bubble = body["results"][11]
    assert bubble == {
        "id": "bubble",
        "label": "Bubble",
        "description": "A scatter whose point sizes show a third, numeric column.",
        "fields": ["x", "y", "size", "hue", "style", "col", "row"],
        "required": ["x", "y", "size"],
        "numeric": ["size"],
        "takes_columns": False,
    }
    assert body["results"][6]["takes_columns"] is True
    assert body["results"][6]["fields"] == []


def test_every_type_takes_every_field_the_test_gives() -> None:
    assert set(EVERY_TYPE) == set(graphs.GRAPH_TYPES)
    for type_id, (body, _traces) in EVERY_TYPE.items():
        given = {field for field in body if field != "columns"}
        assert given == set(graphs.GRAPH_TYPES[type_id].fields), type_id


@pytest.mark.parametrize("type_id", list(EVERY_TYPE))
def test_each_type_draws_its_traces(api: Any, table: Dataset, type_id: str) -> None:
    body, traces = EVERY_TYPE[type_id]
    created = api.post(
        f"/api/v1/datasets/{table.pk}/graphs/",
        {"type": type_id, "title": f"A {type_id}", **body},
        format="json",
    )
    assert created.status_code == 201, created.json()
    graph = created.json()
    assert graph["type"] == type_id
    assert graph["title"] == f"A {type_id}"
    assert {field: graph[field] for field in body} == body

    response = api.get(f"/api/v1/datasets/{table.pk}/graphs/{graph['id']}/figure/")
    assert response.status_code == 200
    figure = response.json()
    assert set(figure) == {"data", "layout", "sample"}
    assert {trace["type"] for trace in figure["data"]} == traces
    assert figure["layout"]["title"]["text"] == f"A {type_id}"
    assert figure["sample"] == {"rows_used": ROWS, "rows_total": ROWS}


def _trace_count(api: Any, dataset: Dataset, **body: Any) -> int:
    graph = api.post(f"/api/v1/datasets/{dataset.pk}/graphs/", body, format="json").json()
    figure = api.get(f"/api/v1/datasets/{dataset.pk}/graphs/{graph['id']}/figure/").json()
    return len(figure["data"])


def test_roles_shape_the_figure(api: Any, table: Dataset) -> None:
    # hue: one trace per value; facets: one per panel; style: one per marker.
    assert _trace_count(api, table, type="scatter", x="height", y="weight") == 1
    assert _trace_count(api, table, type="scatter", x="height", y="weight", hue="city") == 3
    assert _trace_count(api, table, type="scatter", x="height", y="weight", col="city") == 3
    assert (
        _trace_count(api, table, type="scatter", x="height", y="weight", hue="city", row="member")
        == 6
    )
    assert _trace_count(api, table, type="line", x="day", y="weight", style="member") == 2
    # A numeric hue on a scatter is a colour scale, one trace.
    assert _trace_count(api, table, type="bubble", x="height", y="weight", size="score",
                        hue="age") == 1  # fmt: skip
    # Pair grid of 3 columns: 9 cells.
    assert _trace_count(api, table, type="pair", columns=["height", "weight", "age"]) == 9


def test_bar_draws_means_and_counts(api: Any, owner: Any) -> None:
    frame = pd.DataFrame({"city": ["A", "A", "B"], "value": [1.0, 3.0, 10.0]})
    dataset = make_table(owner, frame)
    graph = api.post(
        f"/api/v1/datasets/{dataset.pk}/graphs/",
        {"type": "bar", "x": "city", "y": "value"},
        format="json",
    ).json()
    [trace] = api.get(f"/api/v1/datasets/{dataset.pk}/graphs/{graph['id']}/figure/").json()["data"]
    assert trace["x"] == ["A", "B"]
    assert _values(trace["y"]) == [2.0, 10.0]
    counts = api.post(
        f"/api/v1/datasets/{dataset.pk}/graphs/", {"type": "bar", "x": "city"}, format="json"
    ).json()
    [trace] = api.get(f"/api/v1/datasets/{dataset.pk}/graphs/{counts['id']}/figure/").json()["data"]
    assert _values(trace["y"]) == [2, 1]


def _values(encoded: Any) -> list[Any]:
    """Plotly's JSON encodes numeric arrays as base64 typed arrays."""
    if isinstance(encoded, list):
        return encoded
    import base64

    dtype = np.dtype(encoded["dtype"])
    return np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=dtype).tolist()


def test_heatmap_and_pair_default_to_numeric_columns(api: Any, table: Dataset) -> None:
    heatmap = api.post(
        f"/api/v1/datasets/{table.pk}/graphs/", {"type": "heatmap"}, format="json"
    ).json()
    assert heatmap["columns"] == []
    [trace] = api.get(f"/api/v1/datasets/{table.pk}/graphs/{heatmap['id']}/figure/").json()["data"]
    assert trace["x"] == ["height", "weight", "age", "score"]
    assert trace["y"] == ["height", "weight", "age", "score"]


def _create(api: Any, dataset: Dataset, **body: Any) -> Any:
    return api.post(f"/api/v1/datasets/{dataset.pk}/graphs/", body, format="json")


@pytest.mark.parametrize(
    ("body", "code", "details"),
    [
        ({"type": "scatter", "x": "nope", "y": "weight"}, "unknown_column", {"x": ["nope"]}),
        ({"type": "heatmap", "columns": ["height", "gone"]}, "unknown_column",
         {"columns": ["gone"]}),
        ({"type": "box", "y": "city"}, "invalid_graph", {"field": "y"}),
        ({"type": "density", "x": "day", "y": "weight"}, "invalid_graph", {"field": "x"}),
        ({"type": "bubble", "x": "height", "y": "weight"}, "invalid_graph",
         {"fields": ["size"]}),
        ({"type": "scatter_3d", "x": "height", "y": "weight"}, "invalid_graph",
         {"fields": ["z"]}),
        ({"type": "pie", "x": "city", "hue": "member"}, "invalid_graph",
         {"fields": ["hue"], "allowed": ["x", "y", "col", "row"]}),
        ({"type": "scatter", "x": "height", "y": "weight", "columns": ["age"]},
         "invalid_graph", {"field": "columns"}),
        ({"type": "scatter", "x": "height", "y": "weight", "col": "weight"}, "invalid_graph",
         {"field": "col"}),
        ({"type": "line", "x": "day", "y": "weight", "hue": "height"}, "invalid_graph",
         {"field": "hue"}),
        ({"type": "heatmap", "columns": ["height", "city"]}, "invalid_graph",
         {"field": "columns", "columns": ["city"]}),
        ({"type": "heatmap", "columns": ["height"]}, "invalid_graph", {"field": "columns"}),
    ],
)  # fmt: skip
def test_invalid_graphs_are_refused(
    api: Any, table: Dataset, body: dict[str, Any], code: str, details: dict[str, Any]
) -> None:
    response = _create(api, table, **body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    assert {key: error["details"].get(key) for key in details} == details
    assert not DatasetGraph.objects.exists()


def test_refusals_say_why(api: Any, table: Dataset) -> None:
    error = _create(api, table, type="box", y="city").json()["error"]
    assert error["message"] == "y must be a numeric column; “city” is categorical."
    error = _create(api, table, type="scatter", x="height", y="weight", col="weight").json()
    assert error["error"]["message"].endswith("a facet takes at most 12.")
    error = _create(api, table, type="bubble", x="height", y="weight").json()["error"]
    assert error["message"] == "A Bubble graph needs size."


def test_unknown_type_and_pair_limit(api: Any, table: Dataset, monkeypatch: Any) -> None:
    response = _create(api, table, type="radar", x="height")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "type" in response.json()["error"]["details"]
    monkeypatch.setattr(graphs, "MAX_PAIR_COLUMNS", 3)
    response = _create(api, table, type="pair", columns=["height", "weight", "age", "score"])
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_graph",
        "message": "Choose at most 3 columns.",
        "details": {"field": "columns"},
    }


def test_negative_sizes_are_refused_when_drawn(api: Any, owner: Any) -> None:
    dataset = make_table(owner, pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 2.0], "s": [-1, 3]}))
    graph = _create(api, dataset, type="bubble", x="a", y="b", size="s").json()
    response = api.get(f"/api/v1/datasets/{dataset.pk}/graphs/{graph['id']}/figure/")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_graph"
    assert response.json()["error"]["details"] == {"field": "size"}


def test_text_in_a_column_the_profile_calls_numeric_is_left_out(api: Any, owner: Any) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0], "s": ["1", "x", "3"]})
    dataset = make_table(owner, frame)
    profile = dataset.profile
    for column in profile["columns"]:
        if column["name"] == "s":
            column["type"] = "numeric"
    Dataset.objects.filter(pk=dataset.pk).update(profile=profile)
    graph = _create(api, dataset, type="bubble", x="a", y="b", size="s").json()
    response = api.get(f"/api/v1/datasets/{dataset.pk}/graphs/{graph['id']}/figure/")
    assert response.status_code == 200
    assert response.json()["sample"] == {"rows_used": 2, "rows_total": 3}


def test_a_graph_refuses_an_image_dataset_and_one_not_ready(api: Any, owner: Any) -> None:
    images = make_table(owner, name="Pictures")
    Dataset.objects.filter(pk=images.pk).update(kind=Dataset.Kind.IMAGES)
    response = _create(api, images, type="histogram", x="height")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "not_a_table")
    processing = make_table(owner, name="Later")
    Dataset.objects.filter(pk=processing.pk).update(status=Dataset.Status.PROCESSING)
    response = _create(api, processing, type="histogram", x="height")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "dataset_not_ready")


def test_a_column_type_change_is_caught_when_drawing(api: Any, table: Dataset) -> None:
    graph = _create(api, table, type="box", y="age").json()
    profile = table.profile
    for column in profile["columns"]:
        if column["name"] == "age":
            column["type"] = "categorical"
    Dataset.objects.filter(pk=table.pk).update(profile=profile)
    response = api.get(f"/api/v1/datasets/{table.pk}/graphs/{graph['id']}/figure/")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_graph"


def test_large_datasets_are_sampled_with_a_fixed_seed(api: Any, owner: Any, settings: Any) -> None:
    settings.MLMANAGER_GRAPH_SAMPLE_ROWS = 50
    frame = pd.DataFrame({"n": np.arange(1_000, dtype="float64"), "m": np.arange(1_000) % 7})
    dataset = make_table(owner, frame)
    graph = _create(api, dataset, type="scatter", x="n", y="m").json()
    url = f"/api/v1/datasets/{dataset.pk}/graphs/{graph['id']}/figure/"
    first, again = api.get(url).json(), api.get(url).json()
    assert first["sample"] == {"rows_used": 50, "rows_total": 1_000}
    [trace] = first["data"]
    drawn = _values(trace["x"])
    assert len(drawn) == 50
    assert drawn == sorted(drawn)  # kept in the file's order
    assert len(set(drawn)) == 50
    assert first == again
    # Rows missing a drawn value are left out of rows_used.
    frame.loc[frame.index[:500], "m"] = None
    dataset = make_table(owner, frame, name="gaps")
    graph = _create(api, dataset, type="scatter", x="n", y="m").json()
    figure = api.get(f"/api/v1/datasets/{dataset.pk}/graphs/{graph['id']}/figure/").json()
    assert figure["sample"]["rows_total"] == 1_000
    assert 0 < figure["sample"]["rows_used"] < 50


def test_read_sample_reads_only_the_named_columns(owner: Any) -> None:
    dataset = make_table(owner)
    frame, total = graphs.read_sample(
        str(local_path(dataset.parquet_path)), ["city", "height"], limit=10
    )
    assert list(frame.columns) == ["city", "height"]
    assert (len(frame), total) == (10, ROWS)


def test_graph_api_crud(api: Any, owner: Any, table: Dataset) -> None:
    graph = _create(api, table, type="histogram", x="height").json()
    assert graph["created_by"] == owner.email
    assert graph["dataset"] == table.pk
    listed = api.get(f"/api/v1/datasets/{table.pk}/graphs/").json()
    assert listed["count"] == 1
    assert [item["id"] for item in listed["results"]] == [graph["id"]]
    url = f"/api/v1/datasets/{table.pk}/graphs/{graph['id']}/"
    assert api.get(url).json() == graph
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert not DatasetGraph.objects.exists()


def test_a_viewer_may_look_but_not_add_or_delete(owner: Any, table: Dataset) -> None:
    graph = graphs.dataset_graph_create(
        caller=_caller(owner), dataset=table, type="histogram", x="height"
    )
    viewer = api_client_for(member("viewer", team=owner.current_team))
    base = f"/api/v1/datasets/{table.pk}/graphs/"
    assert viewer.get(base).json()["count"] == 1
    assert viewer.get(f"{base}{graph.pk}/figure/").status_code == 200
    refused = viewer.post(base, {"type": "histogram", "x": "height"}, format="json")
    assert refused.status_code == 403
    assert viewer.delete(f"{base}{graph.pk}/").status_code == 403
    assert DatasetGraph.objects.count() == 1


def _caller(user: Any) -> Any:
    from mlmanager.accounts.caller import Caller

    return Caller.for_session(user)


def test_other_teams_graphs_are_not_found(api: Any, owner: Any, table: Dataset) -> None:
    owner_b = member("owner")
    dataset_b = make_table(owner_b, name="B's")
    graph_b = graphs.dataset_graph_create(
        caller=_caller(owner_b), dataset=dataset_b, type="histogram", x="height"
    )
    base_b = f"/api/v1/datasets/{dataset_b.pk}/graphs/"
    for response in [
        api.get(base_b),
        api.post(base_b, {"type": "histogram", "x": "height"}, format="json"),
        api.get(f"{base_b}{graph_b.pk}/"),
        api.get(f"{base_b}{graph_b.pk}/figure/"),
        api.delete(f"{base_b}{graph_b.pk}/"),
        # B's graph through A's own dataset.
        api.get(f"/api/v1/datasets/{table.pk}/graphs/{graph_b.pk}/"),
        api.get(f"/api/v1/datasets/{table.pk}/graphs/{graph_b.pk}/figure/"),
        api.delete(f"/api/v1/datasets/{table.pk}/graphs/{graph_b.pk}/"),
    ]:
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    client = Client()
    client.force_login(owner)
    assert client.get(f"/datasets/{dataset_b.pk}/graphs/").status_code == 404
    assert client.post(f"/datasets/{dataset_b.pk}/graphs/{graph_b.pk}/delete/").status_code == 404
    assert client.post(f"/datasets/{table.pk}/graphs/{graph_b.pk}/delete/").status_code == 404
    assert list(DatasetGraph.objects.values_list("pk", flat=True)) == [graph_b.pk]


def test_the_graph_list_costs_the_same_for_many(
    api: Any, owner: Any, table: Dataset, django_assert_max_num_queries: Any
) -> None:
    url = f"/api/v1/datasets/{table.pk}/graphs/"
    caller = _caller(owner)
    graphs.dataset_graph_create(caller=caller, dataset=table, type="histogram", x="height")
    api.get(url)  # warm-up: the token's last use
    with django_assert_max_num_queries(6) as few:
        api.get(url)
    for _ in range(15):
        graphs.dataset_graph_create(caller=caller, dataset=table, type="histogram", x="age")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert api.get(url).json()["count"] == 16
    client = Client()
    client.force_login(owner)
    client.get(f"/datasets/{table.pk}/graphs/")
    with django_assert_max_num_queries(15) as page_queries:
        client.get(f"/datasets/{table.pk}/graphs/")
    for _ in range(5):
        graphs.dataset_graph_create(caller=caller, dataset=table, type="box", y="age")
    with django_assert_max_num_queries(len(page_queries.captured_queries)):
        client.get(f"/datasets/{table.pk}/graphs/")


# --- the page ------------------------------------------------------------------------------


def test_the_page_adds_lists_and_deletes_graphs(owner: Any, table: Dataset) -> None:
    client = Client()
    client.force_login(owner)
    detail = client.get(f"/datasets/{table.pk}/").content.decode()
    assert f'href="/datasets/{table.pk}/graphs/"' in detail
    page = client.get(f"/datasets/{table.pk}/graphs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="no-graphs"' in html
    assert "Each graph draws all 60 rows." in html
    assert f'src="/static/{plotly_assets.plotly_js_static_name()}"' in html
    assert 'id="plotly.js-style-global" class="no-inline-styles"' in html

    response = client.post(
        f"/datasets/{table.pk}/graphs/",
        {"type": "scatter", "title": "Height and weight", "x": "height", "y": "weight",
         "hue": "city"},
    )  # fmt: skip
    assert response.status_code == 302
    graph = DatasetGraph.objects.get()
    assert (graph.type, graph.x, graph.y, graph.hue, graph.title, graph.created_by) == (
        "scatter", "height", "weight", "city", "Height and weight", owner,
    )  # fmt: skip
    html = client.get(f"/datasets/{table.pk}/graphs/").content.decode()
    assert f'data-figure-url="/api/v1/datasets/{table.pk}/graphs/{graph.pk}/figure/"' in html
    assert "Height and weight" in html

    refused = client.post(f"/datasets/{table.pk}/graphs/", {"type": "box", "y": "city"})
    assert refused.status_code == 400
    assert "y must be a numeric column; “city” is categorical." in refused.content.decode()

    response = client.post(f"/datasets/{table.pk}/graphs/{graph.pk}/delete/")
    assert response.status_code == 302
    assert not DatasetGraph.objects.exists()


def test_the_page_shows_the_sample_size(owner: Any, settings: Any) -> None:
    settings.MLMANAGER_GRAPH_SAMPLE_ROWS = 5_000
    dataset = make_table(owner, pd.DataFrame({"n": np.arange(12_000)}))
    client = Client()
    client.force_login(owner)
    html = client.get(f"/datasets/{dataset.pk}/graphs/").content.decode()
    assert "Each graph draws a sample of 5,000 of 12,000 rows" in html


def test_a_viewer_sees_no_form(owner: Any, table: Dataset) -> None:
    viewer = member("viewer", team=owner.current_team)
    client = Client()
    client.force_login(viewer)
    html = client.get(f"/datasets/{table.pk}/graphs/").content.decode()
    assert 'data-testid="graph-form"' not in html
    assert client.post(f"/datasets/{table.pk}/graphs/", {"type": "histogram"}).status_code == 403


# --- the assets ----------------------------------------------------------------------------


def test_plotly_js_is_a_static_file_from_the_package() -> None:
    name = plotly_assets.plotly_js_static_name()
    assert name == f"vendor/plotly-{plotly_assets.plotly_js_version()}.min.js"
    assert finders.find(name) == str(plotly_assets.plotly_js_path())
    listed = [
        (storage.prefix, path)  # type: ignore[attr-defined]
        for path, storage in plotly_assets.PlotlyFinder().list(None)
    ]
    assert listed == [("vendor", name.removeprefix("vendor/"))]


def test_an_unknown_static_path_is_still_not_found() -> None:
    # Django's finders.find wraps a finder's None in a list: [None] made WhiteNoise (which
    # asks the finders in development) answer 500 instead of 404.
    assert finders.find("vendor/nothing-here.js") is None
    assert finders.find("vendor/nothing-here.js", find_all=True) == []


def test_the_committed_stylesheet_matches_the_bundle() -> None:
    """After upgrading plotly, run `python -m mlmanager.datasets.plotly_assets`."""
    bundle = plotly_assets.plotly_js_path().read_text(encoding="utf-8")
    assert plotly_assets.CSS_PATH.read_text(encoding="utf-8") == plotly_assets.stylesheet(bundle)
    assert ".js-plotly-plot .plotly .modebar {position:absolute;top:2px;right:2px;}" in (
        plotly_assets.stylesheet(bundle)
    )
