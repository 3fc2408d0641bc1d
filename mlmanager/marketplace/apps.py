from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mlmanager.marketplace"
    verbose_name = "Marketplace: listed prediction APIs, data sources and model copies"
    url_prefix = "marketplace/"
