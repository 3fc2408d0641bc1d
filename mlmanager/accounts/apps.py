from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "mlmanager.accounts"
    label = "accounts"
