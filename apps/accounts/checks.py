"""Start checks (Django runs them on `migrate`, which every deployment's start runs)."""

from django.core.checks import Error, Tags, register
from django.db import DatabaseError

from .sealed import SealedSecretError, sealed_fields, unseal

SAMPLE = 50  # sealed values tried per column


@register(Tags.security)
def sealed_secrets_open(app_configs, **kwargs):
    """Every sealed value opens with ENCRYPTION_KEYS: a key dropped too early shows
    here, at start, rather than as failing signed requests and Slack calls."""
    errors = []
    for model, name in sealed_fields():
        try:
            tokens = list(model.objects.exclude(**{name: ""}).values_list(name, flat=True)[:SAMPLE])
        except DatabaseError:
            return []  # no database yet, or not migrated: nothing sealed to open
        unopened = 0
        for token in tokens:
            try:
                unseal(token)
            except SealedSecretError:
                unopened += 1
        if unopened:
            errors.append(Error(
                f"{unopened} of {len(tokens)} sealed values of {model._meta.label}.{name} cannot be opened with ENCRYPTION_KEYS.",
                hint="Put the key they were sealed with back into ENCRYPTION_KEYS (after the new one), "
                "then run `manage.py rotate_encryption_key`.",
                obj=model, id="accounts.E001",
            ))
    return errors
