"""Portal pages of responder assistance: postmortems (read, draft, edit, export) and runbooks.

Viewers read; responders draft and edit (apps/accounts/roles.py), as on the incident page.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts import roles
from apps.accounts.decorators import role_required
from apps.audit.services import Actor
from apps.incidents import selectors, triage
from apps.incidents.models import Service

from . import postmortems, tasks
from .forms import PostmortemForm
from .models import Postmortem, Runbook


@require_http_methods(["GET", "POST"])
@role_required(roles.can_view)
def postmortem(request, pk):
    incident = selectors.incident(request.user, pk)
    existing = Postmortem.objects.select_related("updated_by").filter(incident=incident).first()
    can_respond = roles.can_respond(request.user, incident.service.team_id)
    form, status = None, 200
    if request.method == "POST":
        if not can_respond:
            return HttpResponse("Only responders edit postmortems.", status=403)
        if existing is None:
            return HttpResponse("This incident has no postmortem to edit; draft one first.", status=404)
        form = PostmortemForm(request.POST, instance=Postmortem.objects.get(pk=existing.pk))
        if form.is_valid():
            postmortems.update(existing, changes=form.cleaned_data, actor=Actor.of(request.user))
            messages.success(request, "Postmortem saved.")
            return redirect("assist:postmortem", pk=pk)
        status = 400
    elif existing is not None and can_respond:
        form = PostmortemForm(instance=existing)
    context = {
        "incident": incident,
        "postmortem": existing,
        "form": form,
        "can_respond": can_respond,
        "eligible": postmortems.eligible(incident),
        "markdown": postmortems.to_markdown(existing) if existing else "",
    }
    return render(request, "assist/postmortem.html", context, status=status)


@require_POST
@role_required(roles.can_respond)
def postmortem_draft(request, pk):
    incident = selectors.incident(request.user, pk)
    if not roles.can_respond(request.user, incident.service.team_id):
        raise PermissionDenied
    try:
        postmortems.draft(incident, actor=Actor.of(request.user))
    except postmortems.NotEligible as exc:
        return HttpResponse(str(exc), status=409)
    if triage.llm_status() == "active":
        tasks.improve_postmortem.delay(incident.pk)
    return redirect("assist:postmortem", pk=pk)


@require_GET
@role_required(roles.can_view)
def postmortem_markdown(request, pk):
    postmortem = get_object_or_404(Postmortem.objects.select_related("incident", "updated_by"),
                                   incident__in=selectors.visible(request.user), incident_id=pk)
    response = HttpResponse(postmortems.to_markdown(postmortem), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="incident-{postmortem.incident.number}-postmortem.md"'
    return response


@require_GET
@role_required(roles.can_view)
def runbook(request, pk):
    # A runbook of no service is everyone's; one of a service, its team's.
    runbooks = Runbook.objects.defer("embedding").filter(
        Q(service__isnull=True) | Q(service__in=roles.scoped(Service.objects.all(), request.user, team="team"))
    )
    return render(request, "assist/runbook.html", {"runbook": get_object_or_404(runbooks, pk=pk)})
