"""Secrets kept in the database (Slack tokens, webhook secrets), sealed with Fernet.

The key is derived from SECRET_KEY, so a database dump alone does not reveal
them; rotating SECRET_KEY means entering these secrets again.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"incident-manager/sealed:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode() if value else ""


def unseal(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("a sealed secret cannot be opened: SECRET_KEY changed since it was stored") from None
