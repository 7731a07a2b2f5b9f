"""Accuracy of the rule-based classifier on the labelled alerts in tests/data/.

    make bench-classify

Prints category and severity accuracy and both confusion matrices (rows: the
label, columns: the classifier's answer), and the same accuracy on the alerts
marked held_out: written after the rules and never used to tune them.  The rules
alone, no LLM.
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

DATA = ROOT / "tests" / "data" / "labelled_alerts.json"


def matrix(pairs: list[tuple[str, str]], names: list[str]) -> str:
    counts = Counter(pairs)
    width = max(len(n) for n in names) + 1
    lines = [" " * width + "".join(f"{n[:8]:>9}" for n in names)]
    for truth in names:
        lines.append(f"{truth:<{width}}" + "".join(f"{counts[(truth, guess)]:>9}" for guess in names))
    return "\n".join(lines)


def main() -> int:
    alerts = json.loads(DATA.read_text())
    categories, severities, misses, held_out = [], [], [], []
    for alert in alerts:
        result = classify(alert["title"], alert["description"], alert["labels"])
        expected = alert["expected"]
        categories.append((expected["category"], result.category))
        severities.append((expected["severity"], result.severity))
        if alert.get("held_out"):
            held_out.append((result.category == expected["category"], result.severity == expected["severity"]))
        if (result.category, result.severity) != (expected["category"], expected["severity"]):
            misses.append(f"  {alert['title']!r}: {result.category}/{result.severity}, expected "
                          f"{expected['category']}/{expected['severity']} ({result.rationale})")
    category_accuracy = sum(t == g for t, g in categories) / len(alerts)
    severity_accuracy = sum(t == g for t, g in severities) / len(alerts)
    print(f"{len(alerts)} labelled alerts ({DATA.relative_to(ROOT)})")
    print(f"category accuracy  {category_accuracy:.1%}   (target >= 90%)")
    print(f"severity accuracy  {severity_accuracy:.1%}   (target >= 85%)")
    if held_out:
        print(
            f"held out ({len(held_out)} alerts written after the rules, never tuned on): "
            f"category {sum(c for c, _ in held_out) / len(held_out):.1%}, "
            f"severity {sum(s for _, s in held_out) / len(held_out):.1%}"
        )
    print("\ncategory confusion (rows: label, columns: rules)")
    print(matrix(categories, Category.values))
    print("\nseverity confusion")
    print(matrix(severities, list(reversed(Severity.values))))
    if misses:
        print(f"\n{len(misses)} misses:")
        print("\n".join(misses))
    return 0 if category_accuracy >= 0.9 and severity_accuracy >= 0.85 else 1


if __name__ == "__main__":
    sys.exit(main())
