"""Field-mapping templates: how a generic integration reads a sender we have no parser for.

Each template is a Jinja expression template rendered in Jinja's sandbox with the
sender's JSON as `payload`, in the manner of Grafana OnCall's integration
templates, e.g. for Datadog:

    {"title": "{{ payload.alert_title }}",
     "severity": "{{ payload.alert_priority }}",
     "dedup_key": "{{ payload.aggreg_key }}",
     "status": "{{ 'resolved' if payload.alert_transition == 'Recovered' else 'firing' }}"}

What they render is then validated like the documented generic format.
"""

from functools import lru_cache

from jinja2 import TemplateError, Undefined
from jinja2.sandbox import SandboxedEnvironment

from .parsers.validation import PayloadError

FIELDS = ("title", "description", "severity", "dedup_key", "status", "source")

_env = SandboxedEnvironment(undefined=Undefined, autoescape=False)


@lru_cache(maxsize=512)
def _compile(source: str):
    return _env.from_string(source)


def check(templates) -> dict[str, str]:
    """Errors by field for a templates mapping (empty when it is fine)."""
    if not isinstance(templates, dict):
        return {"templates": "must be a JSON object of field: template"}
    errors = {}
    for field, source in templates.items():
        if field not in FIELDS:
            errors[field] = f"is not a mapped field (use {', '.join(FIELDS)})"
        elif not isinstance(source, str):
            errors[field] = "must be a template string"
        else:
            try:
                _compile(source)
            except TemplateError as exc:
                errors[field] = f"does not compile: {exc}"
    return errors


def render(templates: dict[str, str], payload) -> dict[str, str]:
    """The mapped fields for one payload; an empty rendering leaves the field out."""
    fields = {}
    for field, source in templates.items():
        try:
            value = _compile(source).render(payload=payload).strip()
        except TemplateError as exc:
            raise PayloadError(f"templates.{field}", f"failed on this payload: {exc}") from None
        if value:
            fields[field] = value
    return fields
