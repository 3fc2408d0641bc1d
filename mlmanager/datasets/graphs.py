"""Graphs of a table dataset: the 13 types, saving one (checked against the dataset's columns),
and drawing its Plotly figure from a sample of the dataset's Parquet file.

Flow: `dataset_graph_create` checks the type's fields against the profile (each a column of
the dataset, numeric where the type needs a number, few enough values to colour, mark or facet
by) and saves the roles; `graph_figure` checks them again (a column's type may have changed),
reads only the columns drawn, keeps at most MLMANAGER_GRAPH_SAMPLE_ROWS rows (a sample with a
fixed seed, so a graph shows the same rows every time) and builds the figure with
plotly.express, answered as Plotly's JSON for the page to draw with the Plotly.js the app serves.

Every trace is SVG-drawn (`render_mode="svg"`; the pair grid is made of ordinary scatter
subplots rather than Plotly's `splom`): WebGL traces compile code at run time, which the pages'
Content-Security-Policy (no `unsafe-eval`) refuses. Only the 3-D scatter needs WebGL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mlmanager.accounts.caller import Caller
from mlmanager.core.access import Action
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.datasets.files import materialise
from mlmanager.datasets.models import Dataset, DatasetGraph
from mlmanager.datasets.selectors import (
    access_dataset,
    require_columns,
    require_dataset_ready,
    require_table,
)

if TYPE_CHECKING:
    import pandas as pd
    from plotly.graph_objects import Figure

logger = logging.getLogger(__name__)

# The roles a column can take in a graph, in the order forms and the API list them.
FIELDS = ("x", "y", "z", "hue", "size", "style", "col", "row")
# Facets (col/row): more panels than this is unreadable, and each is a set of traces.
MAX_FACETS = 12
# Colours (hue) and marker or dash styles (style) a reader can tell apart.
MAX_HUE = 20
MAX_STYLE = 12
# Heatmap and pair grid: the columns drawn, and the default when none are named.
MAX_HEATMAP_COLUMNS = 30
MAX_PAIR_COLUMNS = 6
DEFAULT_PAIR_COLUMNS = 4
# Bar and pie: the most frequent categories drawn (the rest are summed as "Other" on a pie).
MAX_CATEGORIES = 50
MAX_PIE_SLICES = 20
SAMPLE_SEED = 0
NUMERIC_TYPES = ("numeric", "integer")


@dataclass(frozen=True)
class GraphType:
    """What a graph type takes: the fields it allows, those it requires, those that must be
    numeric columns, whether it takes a column list (heatmap, pair grid), and whether a numeric
    hue is drawn as a continuous colour scale (else hue is a category with few values)."""

    id: str
    label: str | Promise
    description: str | Promise
    fields: tuple[str, ...]
    required: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    takes_columns: bool = False
    continuous_hue: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": str(self.label),
            "description": str(self.description),
            "fields": list(self.fields),
            "required": list(self.required),
            "numeric": list(self.numeric),
            "takes_columns": self.takes_columns,
        }


_FACETS = ("col", "row")
GRAPH_TYPES: dict[str, GraphType] = {
    graph_type.id: graph_type
    for graph_type in (
        GraphType(
            "scatter",
            gettext_lazy("Scatter"),
            gettext_lazy("One point per row: y against x."),
            ("x", "y", "hue", "size", "style", *_FACETS),
            required=("x", "y"),
            numeric=("size",),
            continuous_hue=True,
        ),
        GraphType(
            "line",
            gettext_lazy("Line / time series"),
            gettext_lazy("y against x joined in x's order; one line per hue and style."),
            ("x", "y", "hue", "style", *_FACETS),
            required=("x", "y"),
            numeric=("y",),
        ),
        GraphType(
            "histogram",
            gettext_lazy("Histogram"),
            gettext_lazy("How many rows fall in each range (or category) of x."),
            ("x", "hue", *_FACETS),
            required=("x",),
        ),
        GraphType(
            "box",
            gettext_lazy("Box"),
            gettext_lazy("Quartiles and outliers of y, per category of x."),
            ("x", "y", "hue", *_FACETS),
            required=("y",),
            numeric=("y",),
        ),
        GraphType(
            "violin",
            gettext_lazy("Violin"),
            gettext_lazy("The distribution of y, per category of x."),
            ("x", "y", "hue", *_FACETS),
            required=("y",),
            numeric=("y",),
        ),
        GraphType(
            "bar",
            gettext_lazy("Bar"),
            gettext_lazy("The mean of y per category of x, or the count of rows without y."),
            ("x", "y", "hue", *_FACETS),
            required=("x",),
            numeric=("y",),
        ),
        GraphType(
            "heatmap",
            gettext_lazy("Heatmap (correlations)"),
            gettext_lazy("Pearson correlations between numeric columns (all of them by default)."),
            (),
            takes_columns=True,
        ),
        GraphType(
            "pair",
            gettext_lazy("Pair grid"),
            gettext_lazy("Every pair of the chosen numeric columns, histograms on the diagonal."),
            ("hue",),
            takes_columns=True,
        ),
        GraphType(
            "density",
            gettext_lazy("Density"),
            gettext_lazy("Contours of where the rows are dense in the x-y plane."),
            ("x", "y", "hue", *_FACETS),
            required=("x", "y"),
            numeric=("x", "y"),
        ),
        GraphType(
            "pie",
            gettext_lazy("Pie"),
            gettext_lazy("Shares of each category of x: rows, or the sum of y."),
            ("x", "y", *_FACETS),
            required=("x",),
            numeric=("y",),
        ),
        GraphType(
            "area",
            gettext_lazy("Area"),
            gettext_lazy("y against x, filled and stacked per hue."),
            ("x", "y", "hue", *_FACETS),
            required=("x", "y"),
            numeric=("y",),
        ),
        GraphType(
            "bubble",
            gettext_lazy("Bubble"),
            gettext_lazy("A scatter whose point sizes show a third, numeric column."),
            ("x", "y", "size", "hue", "style", *_FACETS),
            required=("x", "y", "size"),
            numeric=("size",),
            continuous_hue=True,
        ),
        GraphType(
            "scatter_3d",
            gettext_lazy("3-D scatter"),
            gettext_lazy("One point per row in x, y and z (drawn with WebGL)."),
            ("x", "y", "z", "hue", "size", "style"),
            required=("x", "y", "z"),
            numeric=("size",),
            continuous_hue=True,
        ),
    )
}


def graph_types() -> list[dict[str, Any]]:
    """The 13 types with their fields, for GET /api/v1/graph_types/ and the page's form."""
    return [graph_type.as_dict() for graph_type in GRAPH_TYPES.values()]


# --- reads -----------------------------------------------------------------------------------


def graphs_for_dataset(*, dataset: Dataset) -> QuerySet[DatasetGraph]:
    return DatasetGraph.objects.filter(dataset=dataset).select_related("created_by")


def access_dataset_graph(
    *, caller: Caller, dataset_id: Any, graph_id: Any, action: Action = Action.VIEW
) -> DatasetGraph:
    """A graph of a dataset the caller may act on: another team's, or another dataset's, is
    not found."""
    dataset = access_dataset(caller=caller, id=dataset_id, action=action)
    graph = graphs_for_dataset(dataset=dataset).filter(pk=graph_id).first()
    if graph is None:
        raise NotFound()
    graph.dataset = dataset
    return graph


# --- checks ----------------------------------------------------------------------------------


def _invalid(message: str, **details: Any) -> ApplicationError:
    return ApplicationError(message, code="invalid_graph", details=details)


def _profile_columns(dataset: Dataset) -> dict[str, dict[str, Any]]:
    return {column["name"]: column for column in dataset.columns}


def _is_numeric(column: dict[str, Any]) -> bool:
    return column.get("type") in NUMERIC_TYPES


def _numeric_names(dataset: Dataset) -> list[str]:
    return [column["name"] for column in dataset.columns if _is_numeric(column)]


def _check_value_count(
    field: str, name: str, count: int | None, limit: int, what: str | Promise
) -> None:
    if count is not None and count > limit:
        raise _invalid(
            _("“%(name)s” has %(count)s different values; %(what)s takes at most %(limit)s.")
            % {"name": name, "count": count, "what": what, "limit": limit},
            field=field,
        )


def graph_check(
    *, dataset: Dataset, type: str, roles: dict[str, str], columns: list[str]
) -> list[str]:
    """Check a graph's roles against the dataset (400 `invalid_graph` with the reason, or 400
    `unknown_column` naming the column); returns the column list it will draw (heatmap and
    pair grid: the named columns, or the default numeric ones)."""
    require_table(dataset=dataset)
    require_dataset_ready(dataset=dataset)
    graph_type = GRAPH_TYPES.get(type)
    if graph_type is None:
        raise _invalid(
            _("Unknown graph type “%(type)s”.") % {"type": type},
            field="type",
            types=list(GRAPH_TYPES),
        )
    extra = [field for field in FIELDS if roles.get(field) and field not in graph_type.fields]
    if extra:
        raise _invalid(
            _("A %(type)s graph does not take %(fields)s.")
            % {"type": graph_type.label, "fields": ", ".join(extra)},
            fields=extra,
            allowed=list(graph_type.fields),
        )
    if columns and not graph_type.takes_columns:
        raise _invalid(
            _("A %(type)s graph does not take a column list.") % {"type": graph_type.label},
            field="columns",
        )
    missing = [field for field in graph_type.required if not roles.get(field)]
    if missing:
        raise _invalid(
            _("A %(type)s graph needs %(fields)s.")
            % {"type": graph_type.label, "fields": ", ".join(missing)},
            fields=missing,
        )
    profile = _profile_columns(dataset)
    for field in FIELDS:
        if roles.get(field):
            require_columns(dataset=dataset, names=[roles[field]], field=field)
    unknown = [name for name in columns if name not in profile]
    if unknown:
        # Not require_columns: its details list the dataset's columns under "columns".
        raise ApplicationError(
            _("The dataset has no column %(names)s.")
            % {"names": ", ".join(f"“{name}”" for name in unknown)},
            code="unknown_column",
            details={"columns": unknown},
        )
    for field in graph_type.numeric:
        name = roles.get(field)
        if name and not _is_numeric(profile[name]):
            raise _invalid(
                _("%(field)s must be a numeric column; “%(name)s” is %(kind)s.")
                % {"field": field, "name": name, "kind": profile[name].get("type")},
                field=field,
            )
    for field in _FACETS:
        if roles.get(field):
            name = roles[field]
            _check_value_count(
                field, name, profile[name].get("unique_count"), MAX_FACETS, _("a facet")
            )
    if roles.get("style"):
        name = roles["style"]
        _check_value_count("style", name, profile[name].get("unique_count"), MAX_STYLE, _("style"))
    if roles.get("hue"):
        name = roles["hue"]
        if not (graph_type.continuous_hue and _is_numeric(profile[name])):
            _check_value_count("hue", name, profile[name].get("unique_count"), MAX_HUE, _("hue"))
    if not graph_type.takes_columns:
        return []
    return _check_column_list(dataset, graph_type, columns)


def _check_column_list(dataset: Dataset, graph_type: GraphType, columns: list[str]) -> list[str]:
    profile = _profile_columns(dataset)
    not_numeric = [name for name in columns if not _is_numeric(profile[name])]
    if not_numeric:
        raise _invalid(
            _("Only numeric columns can be drawn here, not %(names)s.")
            % {"names": ", ".join(f"“{name}”" for name in not_numeric)},
            field="columns",
            columns=not_numeric,
        )
    limit = MAX_HEATMAP_COLUMNS if graph_type.id == "heatmap" else MAX_PAIR_COLUMNS
    chosen = list(dict.fromkeys(columns))
    if not chosen:
        numeric = _numeric_names(dataset)
        chosen = numeric[:limit] if graph_type.id == "heatmap" else numeric[:DEFAULT_PAIR_COLUMNS]
    if len(chosen) > limit:
        raise _invalid(_("Choose at most %(limit)s columns.") % {"limit": limit}, field="columns")
    least = 2 if graph_type.id == "heatmap" else 1
    if len(chosen) < least:
        raise _invalid(
            _("This graph needs at least %(least)s numeric columns.") % {"least": least},
            field="columns",
        )
    return chosen


# --- writes ----------------------------------------------------------------------------------


def dataset_graph_create(
    *,
    caller: Caller,
    dataset: Dataset,
    type: str,
    title: str = "",
    columns: list[str] | None = None,
    **roles: str,
) -> DatasetGraph:
    """Save a graph of `dataset` (the caller may change it; the interface checked that)."""
    unknown = sorted(set(roles) - set(FIELDS))
    if unknown:
        raise TypeError(f"unknown graph roles {unknown}")
    roles = {field: (roles.get(field) or "").strip() for field in FIELDS}
    columns = list(dict.fromkeys(columns or []))
    graph_check(dataset=dataset, type=type, roles=roles, columns=columns)
    graph = DatasetGraph(
        team_id=dataset.team_id,
        dataset=dataset,
        created_by=caller.user,
        title=title.strip(),
        type=type,
        columns=columns,
        **roles,
    )
    graph.full_clean()
    graph.save()
    return graph


def dataset_graph_delete(*, graph: DatasetGraph) -> None:
    graph.delete()


# --- the figure ------------------------------------------------------------------------------


def graph_roles(graph: DatasetGraph) -> dict[str, str]:
    return {field: getattr(graph, field) for field in FIELDS if getattr(graph, field)}


def read_sample(path: str | Path, columns: list[str], limit: int) -> tuple[pd.DataFrame, int]:
    """Only `columns` of the Parquet file at `path`, at most `limit` rows: a sample drawn with
    a fixed seed, kept in file order (a line still follows the rows' order). Returns the
    frame and the file's row count."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=columns)
    total = table.num_rows
    if total > limit:
        rows = np.sort(np.random.default_rng(SAMPLE_SEED).choice(total, limit, replace=False))
        table = table.take(rows)
    return table.to_pandas(), total


def graph_figure(*, graph: DatasetGraph) -> dict[str, Any]:
    """The graph's Plotly figure as JSON-ready data: `data`, `layout` and `sample` (rows drawn,
    rows in the dataset)."""
    import json

    import pandas as pd

    dataset = graph.dataset
    roles = graph_roles(graph)
    columns = graph_check(dataset=dataset, type=graph.type, roles=roles, columns=graph.columns)
    names = list(dict.fromkeys([*roles.values(), *columns]))
    limit = settings.MLMANAGER_GRAPH_SAMPLE_ROWS
    frame, total = read_sample(materialise(dataset.parquet_path), names, limit)
    graph_type = GRAPH_TYPES[graph.type]
    # The profile calls them numeric; a value the file holds as text becomes missing.
    for name in {*columns, *(roles[field] for field in graph_type.numeric if field in roles)}:
        frame[name] = pd.to_numeric(frame[name], errors="coerce")
    if not graph_type.takes_columns:
        # A row missing a drawn value has no place on the graph.
        frame = frame.dropna(subset=names)
    _check_sample(graph, roles, frame)
    try:
        figure = build_figure(graph_type, roles, columns, frame)
    except ValueError as error:
        # Plotly refusing this data is a fact about the data, not a fault of the platform.
        logger.warning("graph %s could not be drawn: %s", graph.pk, error)
        raise _invalid(
            _("This graph cannot be drawn from this data: %(reason)s") % {"reason": error}
        ) from error
    figure.update_layout(title={"text": graph.title or None})
    data = json.loads(figure.to_json())
    return {
        "data": data["data"],
        "layout": data["layout"],
        "sample": {"rows_used": len(frame), "rows_total": total},
    }


def _check_sample(graph: DatasetGraph, roles: dict[str, str], frame: pd.DataFrame) -> None:
    """The limits of the check, on the drawn rows themselves: a profile written before a type
    change, or without value counts, cannot be trusted with them."""
    graph_type = GRAPH_TYPES[graph.type]
    for field in _FACETS:
        if field in roles:
            count = int(frame[roles[field]].nunique())
            _check_value_count(field, roles[field], count, MAX_FACETS, _("a facet"))
    if "style" in roles:
        count = int(frame[roles["style"]].nunique())
        _check_value_count("style", roles["style"], count, MAX_STYLE, _("style"))
    if "hue" in roles and not graph_type.continuous_hue:
        count = int(frame[roles["hue"]].nunique())
        _check_value_count("hue", roles["hue"], count, MAX_HUE, _("hue"))
    if "size" in roles and len(frame) and frame[roles["size"]].min() < 0:
        raise _invalid(
            _("Sizes cannot be negative, and “%(name)s” has negative values.")
            % {"name": roles["size"]},
            field="size",
        )


def build_figure(
    graph_type: GraphType, roles: dict[str, str], columns: list[str], frame: pd.DataFrame
) -> Figure:
    """The Plotly figure of one graph type over `frame` (plain Python: no Django)."""
    import plotly.express as px

    common: dict[str, Any] = {"template": "plotly_white"}
    facets = {"facet_col": roles.get("col"), "facet_row": roles.get("row")}
    hue = roles.get("hue")
    x, y = roles.get("x"), roles.get("y")
    order = x or ""  # line and area: the rows in x's order (x is required there)
    kind = graph_type.id
    if kind in ("scatter", "bubble"):
        figure = px.scatter(
            frame,
            x=x,
            y=y,
            color=hue,
            size=roles.get("size"),
            symbol=roles.get("style"),
            render_mode="svg",
            **facets,
            **common,
        )
    elif kind == "line":
        figure = px.line(
            frame.sort_values(order, kind="stable"),
            x=x,
            y=y,
            color=hue,
            line_dash=roles.get("style"),
            render_mode="svg",
            **facets,
            **common,
        )
    elif kind == "area":
        figure = px.area(
            frame.sort_values(order, kind="stable"), x=x, y=y, color=hue, **facets, **common
        )
    elif kind == "histogram":
        figure = px.histogram(frame, x=x, color=hue, **facets, **common)
    elif kind == "box":
        figure = px.box(frame, x=x, y=y, color=hue, **facets, **common)
    elif kind == "violin":
        figure = px.violin(frame, x=x, y=y, color=hue, box=True, **facets, **common)
    elif kind == "bar":
        figure = _bar(frame, x, y, hue, facets, common)
    elif kind == "pie":
        figure = _pie(frame, x, y, facets, common)
    elif kind == "density":
        figure = px.density_contour(frame, x=x, y=y, color=hue, **facets, **common)
    elif kind == "heatmap":
        correlations = frame[columns].corr(numeric_only=True).round(3)
        figure = px.imshow(
            correlations,
            text_auto=True,
            zmin=-1,
            zmax=1,
            color_continuous_scale="RdBu_r",
            aspect="auto",
            **common,
        )
    elif kind == "pair":
        figure = _pair(frame, columns, hue, common)
    elif kind == "scatter_3d":
        figure = px.scatter_3d(
            frame,
            x=x,
            y=y,
            z=roles.get("z"),
            color=hue,
            size=roles.get("size"),
            symbol=roles.get("style"),
            **common,
        )
    else:  # pragma: no cover - GRAPH_TYPES lists every kind above
        raise ValueError(kind)
    if roles.get("row"):
        figure.update_layout(height=max(450, 260 * int(frame[roles["row"]].nunique())))
    return figure


def _top_categories(frame: pd.DataFrame, column: str, limit: int) -> list[Any]:
    return list(frame[column].value_counts().index[:limit])


def _bar(
    frame: pd.DataFrame,
    x: str | None,
    y: str | None,
    hue: str | None,
    facets: dict[str, str | None],
    common: dict[str, Any],
) -> Figure:
    """Bars of the mean of y per category (or the row count), aggregated here: one bar per
    group rather than one stacked segment per row."""
    import plotly.express as px

    assert x is not None
    keep = _top_categories(frame, x, MAX_CATEGORIES)
    frame = frame[frame[x].isin(keep)]
    keys = [name for name in dict.fromkeys([x, hue, *facets.values()]) if name]
    if y:
        summary = frame.groupby(keys, observed=True, sort=False)[y].mean().reset_index()
        value = y
        labels = {y: _("mean of %(name)s") % {"name": y}}
    else:
        summary = frame.groupby(keys, observed=True, sort=False).size().reset_index(name="rows")
        value, labels = "rows", {"rows": _("rows")}
    return px.bar(
        summary, x=x, y=value, color=hue, barmode="group", labels=labels, **facets, **common
    )


def _pie(
    frame: pd.DataFrame,
    x: str | None,
    y: str | None,
    facets: dict[str, str | None],
    common: dict[str, Any],
) -> Figure:
    """Slices of the row count (or the sum of y) per category, the smallest beyond
    MAX_PIE_SLICES summed as one "Other" slice."""
    import plotly.express as px

    assert x is not None
    keep = set(_top_categories(frame, x, MAX_PIE_SLICES))
    names = frame[x].where(frame[x].isin(keep), other=_("Other")).astype(str)
    frame = frame.assign(**{x: names})
    keys = [name for name in dict.fromkeys([x, *facets.values()]) if name]
    if y:
        summary = frame.groupby(keys, sort=False)[y].sum().reset_index()
        value = y
    else:
        summary = frame.groupby(keys, sort=False).size().reset_index(name="rows")
        value = "rows"
    return px.pie(summary, names=x, values=value, **facets, **common)


def _pair(
    frame: pd.DataFrame, columns: list[str], hue: str | None, common: dict[str, Any]
) -> Figure:
    """A grid of every pair of `columns` as SVG scatter subplots, histograms on the diagonal,
    one colour per hue value (Plotly's own `splom` is WebGL only)."""
    import plotly.express as px
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    count = len(columns)
    figure = make_subplots(
        rows=count,
        cols=count,
        shared_xaxes="columns",
        horizontal_spacing=0.03,
        vertical_spacing=0.03,
    )
    colours = px.colors.qualitative.Plotly
    groups: list[tuple[str | None, pd.DataFrame]] = (
        [(str(value), part) for value, part in frame.groupby(hue, sort=True)]
        if hue
        else [(None, frame)]
    )
    for index, (name, part) in enumerate(groups):
        colour = colours[index % len(colours)]
        for row, y in enumerate(columns, start=1):
            for col, x in enumerate(columns, start=1):
                first = row == 1 and col == 1
                if row == col:
                    trace: Any = go.Histogram(
                        x=part[x],
                        name=name,
                        legendgroup=name,
                        showlegend=bool(name) and first,
                        marker={"color": colour},
                        opacity=0.7,
                    )
                else:
                    trace = go.Scatter(
                        x=part[x],
                        y=part[y],
                        mode="markers",
                        name=name,
                        legendgroup=name,
                        showlegend=False,
                        marker={"color": colour, "size": 4},
                    )
                figure.add_trace(trace, row=row, col=col)
                if row == count:
                    figure.update_xaxes(title_text=x, row=row, col=col)
                if col == 1:
                    figure.update_yaxes(title_text=y, row=row, col=col)
    figure.update_layout(
        barmode="overlay", height=max(450, 200 * count), legend_title_text=hue, **common
    )
    return figure
