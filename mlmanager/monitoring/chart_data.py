"""What `GET /api/v1/charts/{id}/data/` answers and the pages draw: each series' points over a
range, the thresholds of the rules watching what it draws (bands) and their alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlmanager.accounts.caller import Caller
from mlmanager.monitoring.models import Chart
from mlmanager.monitoring.selectors import chart_overlays, series_names
from mlmanager.monitoring.series import series_label, series_points

MAX_POINTS = 600


def chart_data(
    *, caller: Caller, chart: Chart, start: datetime, end: datetime, max_points: int = MAX_POINTS
) -> dict[str, Any]:
    """`{"chart", "start", "end", "series": [{"label", "spec", "points": [(time, value)]}],
    "bands", "alerts"}` of a chart the caller sees (access_chart)."""
    specs = list(chart.series or [])
    names = series_names(team_id=chart.team_id, specs=specs)
    overlays = chart_overlays(caller=caller, chart=chart, start=start, end=end)
    return {
        "chart": chart.pk,
        "start": start,
        "end": end,
        "series": [
            {
                "label": series_label(spec, name=name),
                "spec": spec,
                "points": series_points(
                    spec, team_id=chart.team_id, start=start, end=end, max_points=max_points
                ),
            }
            for spec, name in zip(specs, names, strict=True)
        ],
        "bands": overlays["bands"],
        "alerts": overlays["alerts"],
    }
