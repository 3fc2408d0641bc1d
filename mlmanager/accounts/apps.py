from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "mlmanager.accounts"
    label = "accounts"
    # Where config/urls.py mounts this app's urls.py.
    url_prefix = "accounts/"
