from django.apps import AppConfig


class ConsultingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mlmanager.consulting"
    verbose_name = "Consulting: requests to the platform's consultants"
    url_prefix = "consulting/"
