"""The export section of a model's page: per version, its ONNX and MLflow downloads, or why a
version cannot be exported (services.onnx_export.onnx_export_problem: no artifact loaded)."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse

from mlmanager.machines.services.mlflow_export import export_problem as mlflow_export_problem
from mlmanager.machines.services.onnx_export import onnx_export_problem

register = template.Library()


def _export_url(version: Any) -> str | None:
    """The export API's URL (MLflow's view), None while it is not installed."""
    try:
        return reverse("api:model-version-export", args=[version.machine_id, version.number])
    except NoReverseMatch:
        return None


@register.inclusion_tag("machines/partials/_version_export.html")
def version_exports(versions: Any) -> dict[str, Any]:
    rows = []
    for version in versions:
        url = _export_url(version)
        rows.append(
            {
                "version": version,
                "onnx_problem": onnx_export_problem(version=version),
                "onnx_url": f"{url}?format=onnx" if url else None,
                "mlflow_problem": mlflow_export_problem(version=version),
                "mlflow_url": f"{url}?format=mlflow" if url else None,
            }
        )
    return {"rows": rows}
