"""Reading a column's profile in templates (datasets/partials/_stats.html)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def unlisted_value_count(column: dict[str, Any]) -> int:
    """How many distinct values of the column its statistics do not list (the profile keeps
    the most frequent few): the "N more" after them."""
    listed = len((column.get("stats") or {}).get("top_values") or [])
    unique = column.get("unique_count")
    return max(int(unique) - listed, 0) if isinstance(unique, int) else 0
