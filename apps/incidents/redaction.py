"""Personal data and secrets out of any text before it leaves for an LLM."""

import re

_RULES = [
    # Order matters: keys and tokens before the looser number patterns eat their digits.
    ("[KEY]", re.compile(r"\b(?:sk|pk|rk|xox[abpr]|ghp|gho|glpat|AKIA|ASIA|AIza)[-_A-Za-z0-9]{12,}\b")),
    ("[TOKEN]", re.compile(r"\b(?:Bearer|Basic|GenieKey)\s+[-._~+/A-Za-z0-9]+=*", re.IGNORECASE)),
    ("[JWT]", re.compile(r"\beyJ[-_A-Za-z0-9]+\.[-_A-Za-z0-9]+\.[-_A-Za-z0-9]+")),
    ("[SECRET]", re.compile(r"(?i)\b(password|passwd|secret|token|api[_-]?key)\s*[:=]\s*\S+")),
    ("[EMAIL]", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    ("[IP]", re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")),
    ("[IP]", re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}\b")),  # IPv6, full form
    ("[IP]", re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?::(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?(?![\w:])")),
    ("[PHONE]", re.compile(r"(?<![\w.])\+?\d[\d ()-]{7,}\d(?![\w.])")),
]


def redact(text: str) -> str:
    for placeholder, pattern in _RULES:
        if placeholder == "[SECRET]":
            text = pattern.sub(lambda m: f"{m.group(1)}=[SECRET]", text)
        else:
            text = pattern.sub(placeholder, text)
    return text
