"""Probes and metrics for load balancers and Prometheus, at the top level and without a
trailing slash, where such tools look by default; and the staff's platform log pages.

No `app_name`: the probes' names stay `healthz`, `readyz` and `metrics`, which is also the
`route` label the request metrics carry (ops.middleware), so dashboards keep their queries.
The platform log's pages have their own namespace, `ops:`.
"""

from django.urls import include, path

from mlmanager.ops import views, views_platform_log

platform_log_patterns = [
    path("", views_platform_log.platform_log, name="platform_log"),
    path("<int:entry_id>/", views_platform_log.platform_log_entry, name="platform_log_entry"),
]

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("ops/platform-log/", include((platform_log_patterns, "ops"))),
]
