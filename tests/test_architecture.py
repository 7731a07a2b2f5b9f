"""Dependencies run one way (../docs/adr/0009): incidents announce what happened and
import none of the apps that listen; schedules know nothing of escalation; what goes
out (notifications) knows nothing of what comes in (integrations) nor of who decides
to page (escalation), which writes its rows through notifications."""

import ast
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parent.parent / "apps"


def imports_of(app: str) -> dict[str, set[str]]:
    """File -> the modules it imports from other apps (migrations left out)."""
    found = {}
    for path in (APPS / app).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[str(path.relative_to(APPS))] = {n for n in names if n.startswith("apps.") and not n.startswith(f"apps.{app}")}
    return found


@pytest.mark.parametrize(
    "app, forbidden",
    [
        ("incidents", ("apps.escalation", "apps.integrations", "apps.notifications")),
        ("schedules", ("apps.escalation", "apps.integrations", "apps.notifications")),
        ("notifications", ("apps.escalation", "apps.integrations")),
        ("escalation", ("apps.integrations",)),
        ("audit", ("apps.",)),  # the lowest app: every other app writes through it
    ],
)
def test_an_app_imports_none_of_the_apps_that_depend_on_it(app, forbidden):
    wrong = {
        path: sorted(name for name in names if name.startswith(forbidden))
        for path, names in imports_of(app).items()
        if any(name.startswith(forbidden) for name in names)
    }
    assert wrong == {}
