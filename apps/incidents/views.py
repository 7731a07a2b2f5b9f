"""The portal: server-rendered pages, with htmx fragments for in-place updates.

Every view serves a whole page to a normal request and just its fragment to an
htmx one (request.htmx), so the live updates in static/js/live.js re-fetch
through these same permission-checked views.
"""

from functools import partial

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.urls import reverse
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from apps.accounts import roles
from apps.accounts.decorators import role_required
from apps.audit.services import Actor

from . import selectors, services
from .forms import IncidentFilterForm
from .models import Alert, Incident, Severity

PAGE_SIZE = 50


@require_GET
@role_required(roles.can_view)
@vary_on_headers("HX-Request")  # the same URL serves a page or a fragment: keep caches apart
def incident_list(request):
    form = IncidentFilterForm(request.GET, user=request.user)
    # An unknown filter value (a deleted service, a typo) shows no incidents rather than all.
    incidents = selectors.incident_list(request.user, **form.cleaned_data) if form.is_valid() else Incident.objects.none()
    page = Paginator(incidents, PAGE_SIZE).get_page(request.GET.get("page"))
    for incident in page:
        incident.can_respond = roles.can_respond(request.user, incident.service.team_id)
    context = {"form": form, "page": page, "can_respond": roles.can_respond(request.user)}
    return render(request, "incidents/_list.html" if request.htmx else "incidents/list.html", context)


@require_GET
@role_required(roles.can_view)
@vary_on_headers("HX-Request")
def incident_detail(request, pk):
    context = _detail_context(request, pk)
    return render(request, "incidents/_detail.html" if request.htmx else "incidents/detail.html", context)


def _detail_context(request, pk, error=None):
    incident = selectors.incident(request.user, pk)
    return {
        "incident": incident,
        "alerts": selectors.recent_alerts(incident),
        "timeline": selectors.timeline(incident),
        "children": selectors.children(incident),
        "can_respond": roles.can_respond(request.user, incident.service.team_id),
        "severities": Severity.values,
        "error": error,
    }


@require_POST
@role_required(roles.can_respond)
def incident_acknowledge(request, pk):
    return _change(request, pk, services.acknowledge)


@require_POST
@role_required(roles.can_respond)
def incident_unacknowledge(request, pk):
    return _change(request, pk, services.unacknowledge)


@require_POST
@role_required(roles.can_respond)
def incident_resolve(request, pk):
    return _change(request, pk, services.resolve)


@require_POST
@role_required(roles.can_respond)
def incident_note(request, pk):
    # add_note raises ValueError for an empty or overlong note.
    note = partial(services.add_note, text=request.POST.get("text", ""))
    return _change(request, pk, note, refused=(ValueError,))


@require_POST
@role_required(roles.can_respond)
def incident_merge(request, pk):
    _respondable(request, pk)
    number = request.POST.get("into", "").strip().lstrip("#")
    into = selectors.visible(request.user).filter(number=number).first() if number.isdigit() else None
    if into is None:
        return _refuse(request, pk, f"There is no incident #{number}." if number else "Say which incident to merge into.")
    return _change(request, pk, partial(services.merge, into=into))


@require_POST
@role_required(roles.can_respond)
def alert_split(request, pk, alert_pk):
    _respondable(request, pk)
    alert = get_object_or_404(Alert, pk=alert_pk, incident_id=pk)
    try:
        incident = services.split(alert, actor=Actor.of(request.user))
    except services.TransitionError as exc:
        return _refuse(request, pk, str(exc))
    if request.htmx:
        return HttpResponseClientRedirect(reverse("portal:incident-detail", args=[incident.pk]))
    return redirect("portal:incident-detail", pk=incident.pk)


def _refuse(request, pk, error):
    if request.htmx:
        return render(request, "incidents/_detail.html", _detail_context(request, pk, error))
    messages.error(request, error)
    return redirect("portal:incident-detail", pk=pk)


@require_POST
@role_required(roles.can_respond)
def incident_severity(request, pk):
    """A person sets the severity: escalation re-plans, and the LLM no longer overrides it."""
    severity = request.POST.get("severity", "")
    if severity not in Severity.values:
        return HttpResponseBadRequest(f"severity: one of {', '.join(Severity.values)}")
    change = partial(services.change_severity, severity=severity, by="person")
    return _change(request, pk, change)


def _respondable(request, pk) -> Incident:
    """The incident, if the user may act on it: 404 if they may not see it, 403 if they only see it."""
    incident = get_object_or_404(selectors.visible(request.user), pk=pk)
    if not roles.can_respond(request.user, incident.service.team_id):
        raise PermissionDenied
    return incident


def _change(request, pk, change, refused=(services.TransitionError,)):
    """Apply change(incident, actor=…); show why it was refused, if it was, in place."""
    incident = _respondable(request, pk)
    error = None
    try:
        change(incident, actor=Actor.of(request.user))
    except refused as exc:  # e.g. someone else resolved it a moment ago
        error = str(exc)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("portal:incident-detail", pk=pk)
    if request.POST.get("fragment") == "row":  # a button in a list row
        return render(
            request,
            "incidents/_row.html",
            {"incident": _respondable_row(request, pk), "can_respond": True, "error": error},
        )
    return render(request, "incidents/_detail.html", _detail_context(request, pk, error))


def _respondable_row(request, pk) -> Incident:
    incident = selectors.incident(request.user, pk)
    incident.can_respond = True  # _change has checked it
    return incident
