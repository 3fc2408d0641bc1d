from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "mlmanager.audit"
    label = "audit"
    url_prefix = "audit/"
