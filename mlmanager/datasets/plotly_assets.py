"""Plotly.js for the graph pages, served by the app (no CDN) under the pages' strict
Content-Security-Policy.

The script: the Python package `plotly` (a dependency already) ships the matching Plotly.js
bundle, `plotly/package_data/plotly.min.js` (4.8 MB). Rather than commit a copy that could
drift from the package, `PlotlyFinder` (in STATICFILES_FINDERS) offers that file as the static
file `vendor/plotly-<version>.min.js`: `collectstatic` copies it like any other (so production's
manifest storage hashes and compresses it) and WhiteNoise finds it in development.

The styles: Plotly.js adds its stylesheet by inserting a `<style>` element, which `style-src
'self'` refuses (the graph would draw without its modebar and tooltip styles, and the browser
would report a violation). It skips that when the page already holds an element with the id
`plotly.js-style-global` and the class `no-inline-styles`: the graph page links
`datasets/plotly.css` so, a file generated from the rules inside the bundle (`python -m
mlmanager.datasets.plotly_assets` rewrites it; a test fails when the bundle's rules change).
The bundle also inserts MapLibre's stylesheet on load unless an element with its id exists; no
graph type draws a map, so the page holds an empty element with that id (`maplibre_style_id`).
The rest of what Plotly.js styles it sets through the CSSOM (`element.style`), which the policy
allows.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

CSS_PATH = Path(__file__).parent / "static" / "datasets" / "plotly.css"
# The id and class Plotly.js looks for before inserting its own <style> element.
STYLE_ELEMENT_ID = "plotly.js-style-global"


@cache
def plotly_js_path() -> Path:
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:  # pragma: no cover - plotly is a dependency
        raise RuntimeError("The plotly package is not installed.")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


@cache
def plotly_js_version() -> str:
    """The bundle's version, from its licence header (`* plotly.js v4.1.1`)."""
    with plotly_js_path().open(encoding="utf-8") as handle:
        head = handle.read(400)
    found = re.search(r"plotly\.js v(\d+\.\d+\.\d+)", head)
    if found is None:  # pragma: no cover - every bundle starts with its header
        raise RuntimeError(f"No version in the header of {plotly_js_path()}")
    return found.group(1)


@cache
def maplibre_style_id() -> str:
    """The id of the <style> element the bundle inserts on load for MapLibre (its map traces)
    unless an element with that id exists: the graph page holds an empty one, as no graph type
    draws a map."""
    found = re.search(
        r'getElementById\("([0-9a-f]{64})"\)', plotly_js_path().read_text(encoding="utf-8")
    )
    if found is None:  # pragma: no cover - a bundle without MapLibre inserts nothing
        return ""
    return found.group(1)


def plotly_js_static_name() -> str:
    """The static path the pages include (`{% static %}` of it)."""
    return f"vendor/plotly-{plotly_js_version()}.min.js"


class _BundleStorage(FileSystemStorage):
    """The package's folder, where the bundle answers to its versioned name; `prefix` is the
    static folder it goes to (read by collectstatic and WhiteNoise, as for STATICFILES_DIRS)."""

    def __init__(self) -> None:
        super().__init__(location=str(plotly_js_path().parent))
        self.prefix = str(Path(plotly_js_static_name()).parent)

    def path(self, name: str) -> str:
        return super().path(self._real(name))

    def open(self, name: str, mode: str = "rb") -> Any:
        return super().open(self._real(name), mode)

    def _real(self, name: str) -> str:
        return plotly_js_path().name if name == Path(plotly_js_static_name()).name else name


class PlotlyFinder(BaseFinder):
    """Finds `vendor/plotly-<version>.min.js`: the bundle of the installed plotly package."""

    def check(self, **kwargs: Any) -> list[Any]:
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> Any:
        # No match is [] either way, as Django's own finders answer: `finders.find` wraps any
        # other value in a list, and [None] made WhiteNoise answer 500 for unknown paths.
        if path != plotly_js_static_name():
            return []
        found = str(plotly_js_path())
        return [found] if find_all else found

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        yield Path(plotly_js_static_name()).name, _BundleStorage()


# `"X .modebar":"position:absolute;…"` or `Y:'font-family:…'` inside the bundle's rule table.
_STRING = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
_RULE = re.compile(rf"({_STRING}|[A-Za-z_$][\w$]*):({_STRING})")
_TABLE = re.compile(r"=\{(\"X,X div\":.*?)\};for\(")


def stylesheet(bundle: str) -> str:
    """The CSS Plotly.js would insert, read from the rule table in `bundle` (its JS text):
    X stands for `.js-plotly-plot .plotly`, Y for `.plotly-notifier`."""
    table = _TABLE.search(bundle)
    if table is None:
        raise RuntimeError("Plotly.js's style rules were not found in the bundle.")
    lines = [
        "/* Plotly.js's own stylesheet, generated from the bundle by "
        "`python -m mlmanager.datasets.plotly_assets`:",
        f" * plotly.js v{plotly_js_version()} inserts it as a <style> element, which the "
        "Content-Security-Policy refuses. */",
    ]
    for key, value in _RULE.findall(table.group(1)):
        selector = key[1:-1] if key[0] in "\"'" else key
        selector = re.sub(r"^,", " ,", selector)
        selector = selector.replace("X", ".js-plotly-plot .plotly").replace("Y", ".plotly-notifier")
        lines.append(f"{selector} {{{value[1:-1]}}}")
    return "\n".join(lines) + "\n"


def write_stylesheet() -> Path:
    CSS_PATH.write_text(stylesheet(plotly_js_path().read_text(encoding="utf-8")), encoding="utf-8")
    return CSS_PATH


if __name__ == "__main__":  # pragma: no cover - run by hand after upgrading plotly
    print(write_stylesheet())
