from django.apps import AppConfig
from django.conf import settings


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"

    def ready(self):
        from . import checks, receivers, sealed  # noqa: F401  (checks and receivers register themselves)

        # A missing or malformed key stops every process at start, with its name.
        sealed.check_keys(settings.ENCRYPTION_KEYS)
