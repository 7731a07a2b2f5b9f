"""Sealed secrets live under ENCRYPTION_KEYS, survive a SECRET_KEY change and rotate."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError

from apps.accounts import sealed
from apps.audit.models import AuditEntry
from apps.integrations.services import create_integration
from apps.notifications.models import SlackWorkspace

ROOT = Path(__file__).resolve().parent.parent
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()

pytestmark = pytest.mark.django_db


def test_a_secret_opens_after_secret_key_changes(settings):
    settings.ENCRYPTION_KEYS = [OLD]
    token = sealed.seal("xoxb-1")
    settings.SECRET_KEY = "a-new-django-secret"
    assert sealed.unseal(token) == "xoxb-1"


def test_values_sealed_under_secret_key_still_open_until_rotated(settings, service):
    # As stored before ENCRYPTION_KEYS existed: under the key derived from SECRET_KEY.
    legacy = sealed._fernet((OLD,), settings.SECRET_KEY)._fernets[-1]
    integration, _ = create_integration(name="am", kind="alertmanager", service=service)
    integration.signing_secret = legacy.encrypt(b"s3cret").decode()
    integration.save()
    settings.ENCRYPTION_KEYS = [NEW]
    assert sealed.unseal(integration.signing_secret) == "s3cret"

    call_command("rotate_encryption_key", stdout=open(os.devnull, "w"))

    integration.refresh_from_db()
    settings.SECRET_KEY = "rotated-too"  # the derived key is gone: only NEW opens it now
    assert Fernet(NEW).decrypt(integration.signing_secret.encode()) == b"s3cret"
    assert AuditEntry.objects.get(verb="secrets.resealed").data["integrations.Integration.signing_secret"] == 1


def test_rotation_seals_every_column_under_the_new_key(settings):
    settings.ENCRYPTION_KEYS = [OLD]
    workspace = SlackWorkspace(team_id="T1", name="acme")
    workspace.bot_token, workspace.signing_secret = "xoxb-1", "sig"
    workspace.save()
    settings.ENCRYPTION_KEYS = [NEW, OLD]
    call_command("rotate_encryption_key", stdout=open(os.devnull, "w"))
    settings.ENCRYPTION_KEYS = [NEW]  # the old key dropped
    workspace.refresh_from_db()
    assert (workspace.bot_token, workspace.signing_secret) == ("xoxb-1", "sig")


def test_a_dropped_key_is_reported_at_start_and_rotation_refuses_to_half_rotate(settings):
    settings.ENCRYPTION_KEYS = [OLD]
    workspace = SlackWorkspace(team_id="T1", name="acme")
    workspace.bot_token, workspace.signing_secret = "xoxb-1", "sig"
    workspace.save()
    settings.ENCRYPTION_KEYS = [NEW]  # OLD dropped before rotating

    with pytest.raises(SystemCheckError, match="accounts.E001"):
        call_command("check")
    with pytest.raises(CommandError, match="opens with none of ENCRYPTION_KEYS"):
        call_command("rotate_encryption_key", stdout=open(os.devnull, "w"))
    settings.ENCRYPTION_KEYS = [OLD]
    workspace.refresh_from_db()
    assert workspace.bot_token == "xoxb-1"  # nothing was changed


def test_a_malformed_key_stops_the_process_at_start_naming_it():
    env = {**os.environ, "ENCRYPTION_KEYS": f"{NEW},not-a-key", "DJANGO_SETTINGS_MODULE": "incident_manager.settings"}
    started = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True,
                             text=True, cwd=ROOT)
    assert started.returncode != 0
    assert "ImproperlyConfigured: ENCRYPTION_KEYS[1] is not a Fernet key" in started.stderr


def test_no_key_at_all_is_refused_saying_how_to_make_one():
    with pytest.raises(ImproperlyConfigured, match="ENCRYPTION_KEYS is not set: give it a Fernet key, generated with python -c"):
        sealed.check_keys([])
