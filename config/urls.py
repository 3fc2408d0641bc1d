"""The site's URLs, gathered from the installed apps: this module names no app.

Each app under `mlmanager.` brings its own routes:
- `<app>/urls.py`: its pages (or endpoints), mounted at the prefix its AppConfig declares as
  `url_prefix` ("datasets/"; "" for an app whose routes sit at the top level);
- `<app>/api_urls.py`: its part of the REST API, mounted under /api/v1/ in the one `api`
  namespace (`api:<name>`), with an optional `index` of the resources GET /api/v1/ lists.
Apps come in INSTALLED_APPS order, except that apps mounted at "" come after every prefixed
one, so a route at the top level never shadows a section's pages.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from django.apps import AppConfig, apps
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.utils.module_loading import module_has_submodule
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from mlmanager.core import api as core_api


def _apps_with(module_name: str) -> list[tuple[AppConfig, ModuleType]]:
    """The project's apps that have `module_name`, with that module, in INSTALLED_APPS order."""
    return [
        (config, import_module(f"{config.name}.{module_name}"))
        for config in apps.get_app_configs()
        if config.name.startswith("mlmanager.") and module_has_submodule(config.module, module_name)
    ]


def _page_routes() -> list[URLResolver]:
    mounted = []
    for config, module in _apps_with("urls"):
        prefix = getattr(config, "url_prefix", None)
        if prefix is None:
            raise ImproperlyConfigured(
                f"{config.name} has a urls module but its AppConfig declares no url_prefix."
            )
        mounted.append((prefix, include(module)))
    # sorted() keeps the app order among equals: prefixed sections first, then the top level.
    return [path(prefix, urls) for prefix, urls in sorted(mounted, key=lambda item: item[0] == "")]


def _api_routes() -> list[URLPattern | URLResolver]:
    modules = [module for _, module in _apps_with("api_urls")]
    index = {
        name: f"api:{url_name}"
        for module in modules
        for name, url_name in getattr(module, "index", {}).items()
    }
    routes: list[URLPattern | URLResolver] = [
        path("", core_api.ApiIndexApi.as_view(resources=index), name="index")
    ]
    for module in modules:
        routes.extend(module.urlpatterns)
    return routes


urlpatterns = [
    # The home page is where signing in lands.
    path("", RedirectView.as_view(pattern_name=settings.LOGIN_REDIRECT_URL, permanent=False)),
    *_page_routes(),
    path("admin/", admin.site.urls),
    path("api/v1/", include((_api_routes(), "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI with its start-up script served apart (?script) and its styles in a static
    # file: the Content-Security-Policy allows no inline script or style.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="core/api_docs.html"),
        name="api-docs",
    ),
    # Last: any other path under /api/ (unknown, or an id that is not a number) answers 404 in
    # the API's error shape, never Django's HTML page.
    re_path(r"^api(?:/|$)", core_api.api_not_found, name=core_api.API_NOT_FOUND_URL_NAME),
]

# An error outside any API view answers in the API's shape under /api/ (core.api.server_error).
handler500 = "mlmanager.core.api.server_error"
