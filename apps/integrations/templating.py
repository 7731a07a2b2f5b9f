"""Field-mapping templates: how a generic integration reads a sender we have no parser for.

Each template is a Jinja expression template rendered in Jinja's sandbox with the
sender's JSON as `payload`, in the manner of Grafana OnCall's integration
templates, e.g. for Datadog:

    {"title": "{{ payload.alert_title }}",
     "severity": "{{ payload.alert_priority }}",
     "dedup_key": "{{ payload.aggreg_key }}",
     "status": "{{ 'resolved' if payload.alert_transition == 'Recovered' else 'firing' }}"}

What they render is then validated like the documented generic format.  A template
runs on every payload the sender posts, so it is bounded: a request's templates get
BUDGET_SECONDS in all, each renders at most MAX_OUTPUT characters, and whatever a
template raises on a payload is that sender's 400, naming the template.
"""

import math
import sys
import time
from contextlib import contextmanager
from functools import lru_cache

from jinja2 import TemplateError, Undefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .parsers.validation import PayloadError

FIELDS = ("title", "description", "severity", "dedup_key", "status", "source")

MAX_OUTPUT = 20_000  # characters a template may render: the longest field, description, holds as many
BUDGET_SECONDS = 2.0  # for all the templates of one request (a thousand alerts take about 0.25 s)
MAX_POWER_DIGITS = 4_300  # Python will not print a longer whole number anyway


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox, where a template reaches no Python internals and changes none
    of the payload's lists and dicts (so no loop grows what it walks).  Its range()
    stops at 100,000 items; `*` and `**`, which Python computes in one step that the
    time budget cannot interrupt, refuse results larger than a template may render."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "*" and _repeated_length(left, right) > MAX_OUTPUT:
            raise SecurityError(f"repeating a sequence to more than {MAX_OUTPUT} items is not allowed")
        if operator == "**" and _power_digits(left, right) > MAX_POWER_DIGITS:
            raise SecurityError(f"a power of more than {MAX_POWER_DIGITS} digits is not allowed")
        return super().call_binop(context, operator, left, right)


def _repeated_length(left, right) -> int:
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
            return len(sequence) * times
    return 0


def _power_digits(base, exponent) -> float:
    if isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0:
        return exponent * math.log10(abs(base))
    return 0


_env = _Sandbox(undefined=Undefined, autoescape=False)


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


class Renderer:
    """An integration's templates, rendered for the alerts of one request within one
    time budget (BUDGET_SECONDS from now)."""

    def __init__(self, templates: dict[str, str]):
        self.templates = templates
        self.deadline = time.monotonic() + BUDGET_SECONDS

    def render(self, payload) -> dict[str, str]:
        """The mapped fields for one payload; an empty rendering leaves the field out.
        A template that fails, runs out of time or renders too much is the sender's 400,
        naming it."""
        fields = {}
        for field, source in self.templates.items():
            try:
                with _deadline(self.deadline):
                    value = _render(_compile(source), payload).strip()
            except _OverBudget:
                problem = f"took longer than the {BUDGET_SECONDS:g} s its templates may take for one request"
                raise PayloadError(f"templates.{field}", problem) from None
            except _TooLong:
                raise PayloadError(f"templates.{field}", f"renders more than {MAX_OUTPUT} characters") from None
            except Exception as exc:  # a template is code: whatever it raises, it fails on this payload
                message = str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"
                raise PayloadError(f"templates.{field}", f"failed on this payload: {message[:300]}") from None
            if value:
                fields[field] = value
        return fields


class _TooLong(Exception):
    """A rendering grew past MAX_OUTPUT."""


class _OverBudget(BaseException):
    """Raised into a rendering past its deadline.  A BaseException, as KeyboardInterrupt
    is, so that no `except Exception` on the way (Jinja's runtime has some) swallows it."""


def _render(template, payload) -> str:
    """The template's output, stopped as soon as it grows past MAX_OUTPUT."""
    parts, size = [], 0
    for part in template.generate(payload=payload):
        size += len(part)
        if size > MAX_OUTPUT:
            raise _TooLong
        parts.append(part)
    return "".join(parts)


@contextmanager
def _deadline(at: float):
    """Stop a rendering at `at` (time.monotonic()).  Python's tracing, for this thread
    only, checks the clock at every line of the template's own code, so that its loops
    stop however they are written (no hook of Jinja's runs in an empty loop body), and
    at every call or generator step elsewhere: Jinja's filters loop over what they are
    given or yield as they go, and tracing their lines too made rendering 7 times slower
    (3 times as it is)."""

    def check(frame, event, arg):
        if time.monotonic() > at:
            raise _OverBudget
        return check if frame.f_code.co_filename == "<template>" else None

    previous = sys.gettrace()
    sys.settrace(check)
    try:
        yield
    finally:
        sys.settrace(previous)
