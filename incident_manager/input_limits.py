"""Limits on what clients send that the rest of the way cannot take, shared by the
senders' endpoints (apps/integrations/inbound.py) and the REST API (the parsers below,
in REST_FRAMEWORK's settings).

Depth: parsers accept far deeper documents than we can handle after them.  orjson
parses 1,024 levels but serialises 255 (storing an alert serialises its payload), and
the standard library's json, which DRF parses with, raises RecursionError near 1,000.
No sender's payload comes near MAX_DEPTH.

NUL: PostgreSQL's text and jsonb cannot hold it, and a lookup with one raises rather
than finding nothing.  DRF's CharField refuses it, but not its other fields (a slug
that names a related object, JSON), so the API's parsers refuse it in any field.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

MAX_DEPTH = 64
NUL_PROBLEM = "must not contain NUL (\\u0000) characters"


def too_deep(value, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in a parsed JSON value nest deeper than `limit`.
    Walked level by level, not recursively (the value may be deeper than Python's stack)."""
    level, depth = [value], 0
    while level:
        depth += 1
        containers = [v for v in level if type(v) is dict or type(v) is list]
        if containers and depth > limit:
            return True
        level = [child for c in containers for child in (c.values() if type(c) is dict else c)]
    return False


def nul_path(value, path: str = "") -> str | None:
    """Where in a parsed value (no deeper than MAX_DEPTH) a string, or an object's key,
    holds NUL, as "a.0.b"; None if none does."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        where = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and "\x00" in key:
            return where
        if found := nul_path(child, where):
            return found
    return None


def form_field_with_nul(form) -> str | None:
    """The name of the first field of a form (a QueryDict) whose name or value holds NUL."""
    for name, values in form.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return name
    return None


def _refuse_nul(where: str | None):
    if where:
        raise ValidationError({where: [NUL_PROBLEM]})


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing with a 400 bodies nested deeper than MAX_DEPTH (DRF's
    own lets the standard library's RecursionError through, a 500) and NUL anywhere."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
            deep = too_deep(data)
        except RecursionError:
            deep = True
        if deep:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
        _refuse_nul(nul_path(data))
        return data


# DRF's form parsers, refusing NUL in any field.  (A POST's form is Django's
# request.POST, which incident_manager/middleware.py checks; PUT's and PATCH's are not.)


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        form = super().parse(stream, media_type, parser_context)
        _refuse_nul(form_field_with_nul(form))
        return form


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        _refuse_nul(form_field_with_nul(parsed.data))
        return parsed
