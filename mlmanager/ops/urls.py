"""Probes and metrics for load balancers and Prometheus, at the top level and without a
trailing slash, where such tools look by default.

No `app_name`: the names stay `healthz`, `readyz` and `metrics`, which is also the `route`
label the request metrics carry (ops.middleware), so dashboards keep their queries.
"""

from django.urls import path

from mlmanager.ops import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
]
