"""Personal data and secrets out of any text before it leaves for an LLM.

`redact(text)` for free text; `redact_labels(labels)` for a label set, which also
judges each value by its key's name (a "password" label is a secret whatever it
holds).  What goes, in this order:

- credentials in URLs (`https://user:pass@host`, `https://token@host`);
- known key formats (sk-…, xoxb-…, ghp_…, AKIA…), Bearer/Basic/GenieKey values, JWTs;
- values after a secret's name: `password=…`, `"api_key": "…"`, `DB_PASSWORD: …`;
- high-entropy tokens (AWS secret keys and the like): 20 or more base64 characters
  carrying 4.5 bits or more per character, or 32 or more hex digits (hashes and trace
  ids go too: they tell a classifier nothing);
- e-mail addresses, IP addresses, phone numbers.
"""

import math
import re
from collections import Counter

SECRET = "[SECRET]"

# What a secret's name ends with (label keys and `name=value` in text alike).
_SECRET_NAME = (
    r"(?:password|passwd|secret|token|credentials?|authorization|cookie"
    r"|(?:api|access|private|secret|routing|integration|service|signing)[_-]?key|apikey)"
)
_NAMED_SECRET = re.compile(
    rf"(?i)(?P<head>{_SECRET_NAME}[\"']?\s*[:=]\s*)(?P<value>\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s,;&}}\]]+)"
)
_SECRET_KEY = re.compile(rf"(?i)(?:^|[^a-z]){_SECRET_NAME}$|password|secret")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")  # authToken is auth_Token

_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@]+@")
_CANDIDATE = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/=_-]{20,}(?![\w+/=-])")
_HEX = re.compile(r"[0-9a-fA-F]{32,}")

_RULES = [
    # Order matters: keys and tokens before the looser number patterns eat their digits.
    ("[KEY]", re.compile(r"\b(?:sk|pk|rk|xox[abpr]|ghp|gho|glpat|AKIA|ASIA|AIza)[-_A-Za-z0-9]{12,}\b")),
    ("[TOKEN]", re.compile(r"\b(?:Bearer|Basic|GenieKey)\s+[-._~+/A-Za-z0-9]+=*", re.IGNORECASE)),
    ("[JWT]", re.compile(r"\beyJ[-_A-Za-z0-9]+\.[-_A-Za-z0-9]+\.[-_A-Za-z0-9]+")),
]
_PERSONAL = [
    ("[EMAIL]", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    ("[IP]", re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")),
    ("[IP]", re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}\b")),  # IPv6, full form
    ("[IP]", re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?::(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?(?![\w:])")),
    ("[PHONE]", re.compile(r"(?<![\w.])\+?\d[\d ()-]{7,}\d(?![\w.])")),
]


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    return -sum(n / len(value) * math.log2(n / len(value)) for n in Counter(value).values())


def _high_entropy(match: re.Match) -> str:
    token = match[0]
    if _HEX.fullmatch(token) or _entropy(token) >= 4.5:
        return "[TOKEN]"
    return token


def _named_secret(match: re.Match) -> str:
    quote = match["value"][0] if match["value"][0] in "\"'" else ""
    return f"{match['head']}{quote}{SECRET}{quote}"


def redact(text: str) -> str:
    text = _URL_CREDENTIALS.sub(r"\1[CREDENTIALS]@", text)
    for placeholder, pattern in _RULES:
        text = pattern.sub(placeholder, text)
    text = _NAMED_SECRET.sub(_named_secret, text)
    text = _CANDIDATE.sub(_high_entropy, text)
    for placeholder, pattern in _PERSONAL:
        text = pattern.sub(placeholder, text)
    return text


def is_secret_name(name: str) -> bool:
    """`password`, `db_password`, `api_key`, `AUTH_TOKEN`, `authToken`, `client_secret`;
    not `tokens_used`, `token_count` nor `dedup_key`."""
    return bool(_SECRET_KEY.search(_CAMEL.sub("_", name)))


def redact_labels(labels: dict[str, str]) -> dict[str, str]:
    """Each value redacted as text, and a secret's name hides its value whole."""
    return {key: SECRET if is_secret_name(key) else redact(str(value)) for key, value in labels.items()}
