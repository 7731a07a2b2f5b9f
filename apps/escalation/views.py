"""Portal page: what a service's escalation policies will do, who they page now."""

from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from apps.accounts import roles
from apps.accounts.decorators import role_required
from apps.incidents.models import Service

from . import selectors


@require_GET
@role_required(roles.can_view)
def service_paging(request, pk):
    service = get_object_or_404(roles.scoped(Service.objects.select_related("team"), request.user, team="team"), pk=pk)
    return render(
        request,
        "escalation/service_paging.html",
        {"service": service, "plans": list(selectors.dry_run(service).items())},
    )
