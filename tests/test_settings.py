import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def databases_with(**env) -> dict:
    code = "from django.conf import settings; import json; print(json.dumps(settings.DATABASES['default'], default=str))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "incident_manager.settings", **env},
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out)


def test_the_asgi_tier_pool_keeps_the_urls_connection_options():
    """make run's websocket tier sets DATABASE_POOL=1; it must still reach the embedded
    server through the socket directory given in DATABASE_URL."""
    url = "postgres://postgres@/incident_manager?host=/tmp/some/socket/dir"
    pooled = databases_with(DATABASE_URL=url, DATABASE_POOL="1")
    assert pooled["OPTIONS"]["host"] == "/tmp/some/socket/dir"
    assert pooled["OPTIONS"]["pool"] and pooled["CONN_MAX_AGE"] == 0
    plain = databases_with(DATABASE_URL=url, DATABASE_POOL="0")
    assert "pool" not in plain["OPTIONS"] and plain["CONN_MAX_AGE"] == 60


def test_any_process_that_saves_ingest_settings_tells_the_others():
    """Ingest keeps per-process copies of integrations, grouping rules, maintenance
    windows and classification rules (versioned_copy); a change saved from a process
    that never ingests (a shell, a management command) must still bump their version."""
    code = (
        "import django; django.setup()\n"
        "from django.db.models.signals import post_save\n"
        "from apps.incidents.models import ClassificationRule, GroupingRule, MaintenanceWindow\n"
        "from apps.integrations.models import Integration\n"
        "print([post_save.has_listeners(m) for m in (Integration, GroupingRule, MaintenanceWindow, ClassificationRule)])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "incident_manager.settings"},
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    assert out.strip() == "[True, True, True, True]"
