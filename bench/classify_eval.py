"""Accuracy of the rule-based classifier on the labelled alerts in tests/data/.

    make bench-classify

Two sets, the rules alone (no LLM):

* labelled_alerts.json: the set the rules were written from.  Its alerts marked
  held_out were written after the rules and never used to tune them.
* classify_unseen.jsonl: alerts from public rule collections that the rules were
  not written from (tests/data/README.md).  It is split deterministically: lines
  whose index % 3 != 0 are the tuning part (the only misses to look at while
  changing the rules), index % 3 == 0 the held-out part (measured, never tuned on).
  Its `source` field is metadata for humans and is never given to the classifier.

For each set: category and severity accuracy, both confusion matrices (rows: the
label, columns: the classifier's answer) and the misses.  Exits non-zero when
either set misses the targets (category >= 90%, severity >= 85%).
"""

import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_manager.settings")

import django  # noqa: E402

django.setup()

from apps.incidents.classification import Category, classify_builtin as classify  # noqa: E402
from apps.incidents.models import Severity  # noqa: E402

LABELLED = ROOT / "tests" / "data" / "labelled_alerts.json"
UNSEEN = ROOT / "tests" / "data" / "classify_unseen.jsonl"
CATEGORY_TARGET, SEVERITY_TARGET = 0.90, 0.85


def load_unseen() -> list[dict]:
    """The unseen set, each record tagged with its part: "held_out" when its line index % 3 == 0."""
    records = [json.loads(line) for line in UNSEEN.read_text().splitlines() if line.strip()]
    for index, record in enumerate(records):
        record["part"] = "held_out" if index % 3 == 0 else "tuning"
    return records


def matrix(pairs: list[tuple[str, str]], names: list[str]) -> str:
    counts = Counter(pairs)
    width = max(len(n) for n in names) + 1
    lines = [" " * width + "".join(f"{n[:8]:>9}" for n in names)]
    for truth in names:
        lines.append(f"{truth:<{width}}" + "".join(f"{counts[(truth, guess)]:>9}" for guess in names))
    return "\n".join(lines)


def score(alerts: list[dict]) -> list[tuple[dict, object]]:
    # Only title, description and labels go in: never `source` or the answer.
    return [(alert, classify(alert["title"], alert["description"], alert["labels"])) for alert in alerts]


def accuracy(results: list[tuple[dict, object]]) -> tuple[float, float]:
    if not results:
        return 0.0, 0.0
    category = sum(r.category == a["expected"]["category"] for a, r in results) / len(results)
    severity = sum(r.severity == a["expected"]["severity"] for a, r in results) / len(results)
    return category, severity


def report(name: str, results: list[tuple[dict, object]], parts: dict[str, list]) -> bool:
    """Print one set's figures; True when it meets the targets."""
    category_accuracy, severity_accuracy = accuracy(results)
    print(f"== {len(results)} alerts ({name})")
    print(f"category accuracy  {category_accuracy:.1%}   (target >= {CATEGORY_TARGET:.0%})")
    print(f"severity accuracy  {severity_accuracy:.1%}   (target >= {SEVERITY_TARGET:.0%})")
    for part, (what, subset) in parts.items():
        if subset:
            c, s = accuracy(subset)
            print(f"{part} ({len(subset)} alerts, {what}): category {c:.1%}, severity {s:.1%}")
    print("\ncategory confusion (rows: label, columns: rules)")
    print(matrix([(a["expected"]["category"], r.category) for a, r in results], Category.values))
    print("\nseverity confusion")
    print(matrix([(a["expected"]["severity"], r.severity) for a, r in results], list(reversed(Severity.values))))
    missed = [(a, r) for a, r in results if (r.category, r.severity) != (a["expected"]["category"], a["expected"]["severity"])]
    if missed:
        print(f"\n{len(missed)} misses:")
    # The unseen set's held-out misses come last, under their own heading: they are
    # for the report, not for tuning the rules.
    for part in sorted({a.get("part", "") for a, _ in missed}, key=lambda p: p == "held_out"):
        if part == "held_out":
            print("held-out part (for the report only: do not tune the rules on these):")
        for a, r in missed:
            if a.get("part", "") == part:
                print(f"  {'[' + part + '] ' if part else ''}{a['title']!r}: {r.category}/{r.severity}, expected "
                      f"{a['expected']['category']}/{a['expected']['severity']} ({r.rationale})")
    print()
    return category_accuracy >= CATEGORY_TARGET and severity_accuracy >= SEVERITY_TARGET


def main() -> int:
    labelled = score(json.loads(LABELLED.read_text()))
    labelled_ok = report(str(LABELLED.relative_to(ROOT)), labelled, {
        "held out": ("written after the rules, never tuned on", [(a, r) for a, r in labelled if a.get("held_out")]),
    })
    unseen = score(load_unseen())
    unseen_ok = report(str(UNSEEN.relative_to(ROOT)), unseen, {
        "tuning part": ("line index % 3 != 0", [(a, r) for a, r in unseen if a["part"] == "tuning"]),
        "held-out part": ("line index % 3 == 0, never tuned on", [(a, r) for a, r in unseen if a["part"] == "held_out"]),
    })
    return 0 if labelled_ok and unseen_ok else 1


if __name__ == "__main__":
    sys.exit(main())
