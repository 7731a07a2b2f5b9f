"""Responder assistance on the incident page: LLM summary (real anthropic SDK against the
local fake), runbooks and similar incidents by embedding (all-MiniLM-L6-v2 on real
pgvector), postmortems (draft, edit, permissions, Markdown export)."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Membership
from apps.assist import postmortems, similar, summaries
from apps.assist import tasks as assist_tasks
from apps.assist.models import IncidentSummary, Postmortem, Runbook
from apps.audit.models import AuditEntry
from apps.audit.services import SYSTEM, Actor
from apps.incidents import services
from apps.incidents.models import Incident

from .factories import IncidentFactory, MembershipFactory, ServiceFactory, UserFactory
from .fake_anthropic import tool_answer

pytestmark = pytest.mark.django_db

SUMMARY = "GPU memory on inference-2 hit OOM at 10:02 and keeps failing; look at batch size first."


def detail(client, incident) -> str:
    response = client.get(reverse("portal:incident-detail", args=[incident.pk]))
    assert response.status_code == 200
    return response.content.decode()


def send(client, ingest_path, title, description="", **labels) -> Incident:
    body = {"title": title, "description": description, "labels": labels}
    response = client.post(ingest_path("generic"), data=body, content_type="application/json")
    return Incident.objects.get(pk=response.json()["alerts"][0]["incident"])


@pytest.fixture
def rita(client, responder):
    client.force_login(responder)
    return responder


@pytest.fixture
def viewer(service):
    return MembershipFactory(team=service.team, user=UserFactory(username="vic"), role=Membership.Role.VIEWER).user


# --- summary -----------------------------------------------------------------------


def test_the_summary_is_written_by_the_llm_shown_and_refreshed_at_most_every_5_minutes(
    anthropic_api, client, rita, ingest_path
):
    anthropic_api.script = [
        (200, tool_answer({"summary": SUMMARY}, name="record_summary"), {}, 0),
        (200, tool_answer({"summary": "Still failing after 2 alerts."}, name="record_summary"), {}, 0),
    ]
    incident = send(client, ingest_path, "CUDA out of memory on inference-2", "paged ops@example.org")
    assert summaries.due() == [incident.pk]

    assert summaries.summarise(incident.pk) == "summarised"
    assert SUMMARY in detail(client, incident)
    prompt = anthropic_api.requests[0]["json"]["messages"][0]["content"]
    assert "CUDA out of memory on inference-2" in prompt and "ops@example.org" not in prompt
    assert anthropic_api.requests[0]["json"]["tool_choice"] == {"type": "tool", "name": "record_summary"}
    incident.refresh_from_db()
    assert incident.llm_cost_usd > 0  # counted in the month's LLM spend, which the budget caps
    assert summaries.summarise(incident.pk) == "up to date"

    send(client, ingest_path, "CUDA out of memory on inference-2")  # a repeat: the same incident
    assert summaries.due() == []  # summarised less than 5 minutes ago
    assert summaries.summarise(incident.pk) == "throttled"
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        assert summaries.due() == [incident.pk]
        assert summaries.summarise(incident.pk) == "summarised"
    assert IncidentSummary.objects.get(incident=incident).alert_count == 2
    assert "Still failing after 2 alerts." in detail(client, incident)
    assert len(anthropic_api.requests) == 2


def test_without_a_key_the_page_says_not_configured(client, rita, ingest_path, settings):
    settings.ANTHROPIC_API_KEY = ""
    incident = send(client, ingest_path, "CUDA out of memory on inference-2")
    assert summaries.summarise(incident.pk) == "not configured"
    assert "LLM not configured (set ANTHROPIC_API_KEY): no summary." in detail(client, incident)


def test_a_failed_llm_call_leaves_no_summary(anthropic_api, client, rita, ingest_path, settings):
    settings.LLM_MAX_RETRIES = 0
    anthropic_api.script = [(200, tool_answer({"text": "wrong shape"}, name="record_summary"), {}, 0)]
    incident = send(client, ingest_path, "CUDA out of memory on inference-2")
    assert summaries.summarise(incident.pk).startswith("fallback: answer outside the schema")
    assert not IncidentSummary.objects.exists()
    assert "A summary is being written" in detail(client, incident)


# --- runbooks and similar incidents ------------------------------------------------


def runbook(title, body, tags=(), service=None) -> Runbook:
    book = Runbook.objects.create(title=title, body=body, tags=list(tags), service=service)
    similar.embed_runbook(book.pk)
    return book


def test_matching_runbooks_are_shown_with_their_reason(client, rita, ingest_path, service):
    gpu = runbook("GPU out of memory on inference nodes", "Lower the batch size, then restart the pod.", ["gpu", "oom"])
    runbook("Token quota exhausted", "Raise the provider quota or shed traffic.", ["cost"])
    elsewhere = runbook("GPU out of memory (search cluster)", "Other team's nodes.", ["gpu"], service=ServiceFactory())
    incident = send(client, ingest_path, "CUDA out of memory on GPU inference-2")
    assert "once the incident's meaning is computed" in detail(client, incident)

    similar.ensure_embedding(Incident.objects.get(pk=incident.pk))
    matches = similar.matching_runbooks(incident)

    assert [m.runbook for m in matches] == [gpu]  # not the quota one, not another service's
    assert matches[0].similarity >= similar.RUNBOOK_MIN_SIMILARITY
    assert matches[0].shared_tags == ["gpu"] and "memory" in matches[0].shared_words
    html = detail(client, incident)
    assert "GPU out of memory on inference nodes" in html and elsewhere.title not in html
    assert "tags gpu" in html and "shared words" in html and f"similarity {matches[0].similarity:.2f}" in html
    page = client.get(reverse("assist:runbook", args=[gpu.pk])).content.decode()
    assert "Lower the batch size" in page


def test_similar_resolved_incidents_are_shown_with_their_resolution(client, rita, ingest_path, responder):
    actor = Actor.of(responder)
    opened = timezone.now() - timedelta(hours=2)
    past = IncidentFactory(title="GPU out of memory on inference-1", severity="critical", created_at=opened)
    Incident.objects.filter(pk=past.pk).update(created_at=opened)
    services.add_note(past, text="Lowered max batch size to 16", actor=actor)
    services.resolve(past, actor=actor, reason="pod restarted")
    unrelated = IncidentFactory(title="Token quota exhausted within 4 hours")
    services.resolve(unrelated, actor=actor)
    still_open = IncidentFactory(title="GPU out of memory on inference-3")
    for other in (past, unrelated, still_open):
        similar.ensure_embedding(Incident.objects.get(pk=other.pk))
    incident = send(client, ingest_path, "CUDA out of memory on GPU inference-2")
    similar.ensure_embedding(Incident.objects.get(pk=incident.pk))

    found = similar.similar_incidents(incident)

    assert [p.incident for p in found] == [past]
    assert (found[0].resolve_reason, found[0].last_note) == ("pod restarted", "Lowered max batch size to 16")
    assert timedelta(hours=2) <= found[0].time_to_resolve < timedelta(hours=2, minutes=1)
    html = detail(client, incident)
    assert f"#{past.number} GPU out of memory on inference-1" in html
    assert "resolved in 2 h 0 min" in html and "Resolved: pod restarted" in html and "Last note: Lowered max batch size to 16" in html
    assert unrelated.title not in html and still_open.title not in html


# --- postmortems -------------------------------------------------------------------


@pytest.fixture
def resolved_critical(client, ingest_path, responder):
    body = {"title": "Chat API down in prod", "severity": "critical"}
    client.post(ingest_path("generic"), data=body, content_type="application/json")
    incident = Incident.objects.get()
    services.acknowledge(incident, actor=Actor.of(responder))
    services.add_note(incident, text="Rolled back release 2026.11.3", actor=Actor.of(responder))
    services.resolve(incident, actor=Actor.of(responder), reason="rollback")
    return Incident.objects.get(pk=incident.pk)


def pm_url(name, incident):
    return reverse(f"assist:{name}", args=[incident.pk])


def sections(**changes):
    base = {name: f"{name} text" for name in Postmortem.SECTIONS}
    return {**base, "status": "draft", **changes}


def test_a_responder_drafts_edits_and_exports_a_postmortem(client, rita, resolved_critical, settings):
    settings.ANTHROPIC_API_KEY = ""
    incident = resolved_critical
    assert "No postmortem yet" in detail(client, incident)
    assert client.post(pm_url("postmortem-draft", incident)).status_code == 302

    page = client.get(pm_url("postmortem", incident)).content.decode()
    assert "Template draft generated from the incident timeline (no LLM)" in page
    postmortem = Postmortem.objects.get(incident=incident)
    assert postmortem.drafted_by == "template"
    assert "rita: acknowledged" in postmortem.timeline and "note: Rolled back release 2026.11.3" in postmortem.timeline
    assert "resolved: rollback" in postmortem.timeline and ": rollback." in postmortem.summary
    assert "first alert (generic, critical): Chat API down in prod" in postmortem.timeline

    response = client.post(pm_url("postmortem", incident), sections(impact="Chat unavailable for 14 min", status="final"))
    assert response.status_code == 302
    postmortem.refresh_from_db()
    assert (postmortem.impact, postmortem.status, postmortem.updated_by) == ("Chat unavailable for 14 min", "final", rita)
    entry = AuditEntry.objects.get(incident=incident, verb="postmortem.updated")
    assert entry.actor == rita and set(entry.data["fields"]) == {*Postmortem.SECTIONS, "status"}

    export = client.get(pm_url("postmortem-markdown", incident))
    assert export["Content-Type"] == "text/markdown; charset=utf-8"
    assert export["Content-Disposition"] == f'attachment; filename="incident-{incident.number}-postmortem.md"'
    text = export.content.decode()
    assert text.startswith(f"# Postmortem: #{incident.number} Chat API down in prod\n")
    assert "Status: final. Template draft generated from the incident timeline (no LLM)" in text
    assert "## Impact\n\nChat unavailable for 14 min\n" in text and "## Action items" in text


def test_bad_input_is_a_400_naming_the_field(client, rita, resolved_critical):
    postmortems.draft(resolved_critical, actor=SYSTEM)
    response = client.post(pm_url("postmortem", resolved_critical), sections(status="published", summary="x" * 20_001))
    assert response.status_code == 400
    page = response.content.decode()
    assert "Status: Select a valid choice" in page and "Summary: Ensure this value has at most 20000 characters" in page
    assert not AuditEntry.objects.filter(verb="postmortem.updated").exists()


def test_viewers_read_but_cannot_edit_or_draft(client, viewer, resolved_critical):
    postmortems.draft(resolved_critical, actor=SYSTEM)
    client.force_login(viewer)
    page = client.get(pm_url("postmortem", resolved_critical))
    assert page.status_code == 200 and "<form" not in page.content.decode().split("<main", 1)[-1].split("</main>")[0]
    assert client.post(pm_url("postmortem", resolved_critical), sections()).status_code == 403
    assert client.post(pm_url("postmortem-draft", resolved_critical)).status_code == 403
    assert client.get(pm_url("postmortem-markdown", resolved_critical)).status_code == 200
    assert Postmortem.objects.get().updated_by is None


def test_only_resolved_critical_or_high_incidents_get_one(client, rita, service):
    low = IncidentFactory(service=service, severity="low")
    services.resolve(low, actor=SYSTEM)
    assert client.post(pm_url("postmortem-draft", low)).status_code == 409
    open_critical = IncidentFactory(service=service, severity="critical")
    assert client.post(pm_url("postmortem-draft", open_critical)).status_code == 409
    assert client.get(pm_url("postmortem-markdown", low)).status_code == 404
    assert not Postmortem.objects.exists()


LLM_DRAFT = {
    "summary": "The chat API was down for 14 minutes after release 2026.11.3.",
    "timeline": "- 10:00 paged\n- 10:14 rolled back",
    "impact": "All chat users.",
    "contributing_factors": "A config change without canary.",
    "action_items": "- [ ] Canary every release",
}


def test_the_llm_rewrites_an_untouched_template_draft_only(anthropic_api, resolved_critical, responder):
    anthropic_api.script = [(200, tool_answer(LLM_DRAFT, name="record_postmortem"), {}, 0)] * 2
    assert assist_tasks.draft_postmortem(resolved_critical.pk) == "drafted"
    postmortem = Postmortem.objects.get()
    assert (postmortem.drafted_by, postmortem.summary) == ("llm", LLM_DRAFT["summary"])
    prompt = anthropic_api.requests[0]["json"]["messages"][0]["content"]
    assert "Rolled back release 2026.11.3" in prompt
    assert "Drafted by the LLM" in postmortems.to_markdown(postmortem)

    other = IncidentFactory(service=resolved_critical.service, severity="high")
    other = services.resolve(other, actor=SYSTEM)
    edited = postmortems.draft(other, actor=SYSTEM)
    postmortems.update(edited, changes={"impact": "mine"}, actor=Actor.of(responder))
    assert postmortems.improve_with_llm(other.pk) == "nothing to do"
    assert Postmortem.objects.get(pk=edited.pk).drafted_by == "template"
    assert len(anthropic_api.requests) == 1


# --- the worker path ---------------------------------------------------------------


def wait_for(check, timeout=60):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def test_workers_embed_admin_runbooks_and_incidents_and_draft_postmortems(celery_worker, client, ingest_path, service, settings):
    """A runbook saved in admin is embedded by a worker once committed; the beat sweep
    fills incidents' embeddings and drafts postmortems; the incident page shows the match."""
    settings.ANTHROPIC_API_KEY = ""
    client.force_login(get_user_model().objects.create(username="root", is_staff=True, is_superuser=True))
    response = client.post(
        "/admin/assist/runbook/add/",
        {"title": "GPU out of memory on inference nodes", "body": "Lower the batch size.", "tags": "gpu,oom", "service": ""},
    )
    assert response.status_code == 302
    book = Runbook.objects.get()
    wait_for(lambda: Runbook.objects.filter(pk=book.pk, embedding__isnull=False).exists())

    incident = send(client, ingest_path, "CUDA out of memory on GPU inference-2")
    critical = IncidentFactory(service=service, severity="critical")
    services.resolve(critical, actor=SYSTEM)
    assert assist_tasks.sweep()["incident_embeddings"] == 2
    wait_for(lambda: not Incident.objects.filter(embedding__isnull=True).exists())
    wait_for(lambda: Postmortem.objects.filter(incident=critical, drafted_by="template").exists())
    assert "GPU out of memory on inference nodes" in detail(client, incident)


def test_the_sweep_has_a_worker_summarise_incidents_with_new_alerts(celery_worker, anthropic_api, client, ingest_path, responder):
    anthropic_api.script = [(200, tool_answer({"summary": SUMMARY}, name="record_summary"), {}, 0)]
    client.force_login(responder)
    incident = send(client, ingest_path, "CUDA out of memory on inference-2")
    assert incident.classification_confidence >= 0.8  # rules sure: the one scripted answer is the summary's
    assert assist_tasks.sweep()["summaries"] == 1
    wait_for(lambda: IncidentSummary.objects.filter(incident=incident).exists())
    assert SUMMARY in detail(client, incident)
    assert assist_tasks.sweep()["summaries"] == 0  # nothing new since
