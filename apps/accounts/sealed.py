"""Secrets kept in the database (Slack tokens, signing and webhook secrets), sealed.

They are sealed with Fernet under keys of their own, `ENCRYPTION_KEYS` (newest
first, comma-separated; `make run` keeps one in var/encryption_keys), not under
SECRET_KEY: Django's secret can then be rotated (sessions, password resets) without
losing them, and a database dump alone reveals none.  MultiFernet seals with the
first key and opens with any, so a key is rotated by putting a new one first,
running `manage.py rotate_encryption_key` (every sealed value sealed again under
it), then dropping the old one.

Values sealed before ENCRYPTION_KEYS existed were sealed under a key derived from
SECRET_KEY; that key stays the last one tried until `rotate_encryption_key` has run.

Every column holding sealed values is a SealedField, so the rotation and the start
check (checks.py) find them all.
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

GENERATE = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


class SealedSecretError(ValueError):
    """A sealed value none of the keys opens: ENCRYPTION_KEYS lacks the key it was sealed with."""


class SealedField(models.TextField):
    """A column of sealed values (the model offers the opened value as a property)."""

    secret = True  # the audit trail of admin edits masks it (apps/audit/admin_trail.py)


def check_keys(keys) -> list[Fernet]:
    """The configured keys as Fernets; ImproperlyConfigured naming the first bad one."""
    if not keys:
        raise ImproperlyConfigured(f"ENCRYPTION_KEYS is not set: give it a Fernet key, generated with {GENERATE}")
    fernets = []
    for i, key in enumerate(keys):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"ENCRYPTION_KEYS[{i}] is not a Fernet key (32 url-safe base64-encoded bytes); generate one with {GENERATE}"
            ) from None
    return fernets


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    legacy = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"incident-manager/sealed:" + secret_key.encode()).digest()))
    return MultiFernet([*check_keys(keys), legacy])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.ENCRYPTION_KEYS), settings.SECRET_KEY)


def seal(value: str) -> str:
    return _current().encrypt(value.encode()).decode() if value else ""


def unseal(token: str) -> str:
    if not token:
        return ""
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SealedSecretError("a sealed secret cannot be opened: ENCRYPTION_KEYS lacks the key it was sealed with") from None


def reseal(token: str) -> str:
    """The same value sealed under the first key (SealedSecretError if none opens it)."""
    if not token:
        return ""
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken:
        raise SealedSecretError("a sealed secret cannot be opened: ENCRYPTION_KEYS lacks the key it was sealed with") from None


def sealed_fields():
    """(model, field name) of every sealed column."""
    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, SealedField)
    ]
