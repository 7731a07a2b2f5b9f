"""Secrets shown once and stored only as a digest (API keys, ingestion tokens).

The tokens are 32 random bytes, so a plain SHA-256 is enough to make a leaked
table useless; a slow password hash would only cost every request time.
"""

import hashlib
import secrets


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> tuple[str, str]:
    """Return (token, digest); only the digest is stored."""
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    return token, digest(token)
