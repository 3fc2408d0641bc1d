from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "mlmanager.ops"
    verbose_name = "Operations"
    # At the top level: /healthz, /readyz and /metrics, where probes look by default.
    url_prefix = ""
