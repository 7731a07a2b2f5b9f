"""Alertmanager's label matchers, which routes are written in.

    service="checkout"    env!="staging"    team=~"payments|billing"    instance!~"canary-.*"

As in Alertmanager (https://prometheus.io/docs/alerting/latest/configuration/#matcher):
a regular expression is RE2 and anchored at both ends, and a label the alert does
not carry has the value "", so `env!="prod"` matches an alert without `env`.  RE2
(google-re2) also runs in time linear in the label's length, whatever pattern an
admin wrote or value a sender sent: routing is on ingest's path.

A route's matchers are a list of such strings, or one string of them separated by
commas, in braces or not (`{service="checkout", env="prod"}`), as Alertmanager's
`matchers:` and amtool take them.
"""

import json
import re
from dataclasses import dataclass

import re2

_NAME = r'[A-Za-z_][A-Za-z0-9_]*|"(?:[^"\\]|\\.)*"'
_VALUE = r'"(?:[^"\\]|\\.)*"|[^"]*?'
_MATCHER = re.compile(rf"^\s*(?P<name>{_NAME})\s*(?P<op>=~|!~|!=|=)\s*(?P<value>{_VALUE})\s*$")
# Commas outside double quotes separate matchers.
_SEPARATOR = re.compile(r',(?=(?:[^"\\]|\\.|"(?:[^"\\]|\\.)*")*$)')


class MatcherError(ValueError):
    """A matcher that cannot be read; the message says which and why."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    pattern: object = None  # the compiled RE2 of =~ and !~

    def matches(self, labels: dict[str, str]) -> bool:
        given = labels.get(self.name, "")
        if self.pattern is not None:
            return (self.pattern.match(given) is not None) == (self.op == "=~")
        return (given == self.value) == (self.op == "=")

    def __str__(self):
        return f"{self.name}{self.op}{json.dumps(self.value)}"


def parse_matchers(spec: str | list) -> list[Matcher]:
    """The matchers of `spec`; raises MatcherError naming the first bad one."""
    if isinstance(spec, str):
        inner = spec.strip()
        if inner.startswith("{") and inner.endswith("}"):
            inner = inner[1:-1]
        texts = [part for part in _SEPARATOR.split(inner) if part.strip()]
    elif isinstance(spec, list) and all(isinstance(item, str) for item in spec):
        texts = spec
    else:
        raise MatcherError('Write matchers as a list of strings, e.g. ["service=\\"checkout\\"", "env=~\\"prod|staging\\""].')
    return [_parse_one(text) for text in texts]


def _parse_one(text: str) -> Matcher:
    found = _MATCHER.match(text)
    if not found:
        raise MatcherError(f"{text!r} is not a matcher: write name=\"value\" with =, !=, =~ or !~.")
    name, op, value = _unquote(found["name"]), found["op"], found["value"]
    if value.startswith('"'):
        value = _unquote(value)
    if op in ("=~", "!~"):
        try:
            return Matcher(name, op, value, re2.compile(f"^(?:{value})$"))
        except re2.error as exc:
            raise MatcherError(f"{text!r}: not a valid RE2 regular expression ({exc}).") from None
    return Matcher(name, op, value)


def _unquote(text: str) -> str:
    if not text.startswith('"'):
        return text
    try:
        return json.loads(text)
    except ValueError:
        raise MatcherError(f"{text} is not a valid quoted string.") from None


def all_match(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
