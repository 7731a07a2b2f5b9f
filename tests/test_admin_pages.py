"""Every model in Django admin opens for a superuser; the read-only ones refuse additions."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from incident_manager.readonly_admin import ReadOnlyModelAdmin

pytestmark = pytest.mark.django_db

# Made elsewhere on purpose: an API key's secret is shown once, by `manage.py createapikey`.
NO_ADD_FORM = {"accounts.ApiKey"}
REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


@pytest.mark.parametrize("model, model_admin", REGISTERED, ids=[m._meta.label for m, _ in REGISTERED])
def test_every_admin_page_opens_and_read_only_ones_refuse_to_add(client, model, model_admin):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.org", "x"))
    opts = model._meta

    assert client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")).status_code == 200
    add = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    refused = isinstance(model_admin, ReadOnlyModelAdmin) or opts.label in NO_ADD_FORM
    assert add.status_code == (403 if refused else 200)
