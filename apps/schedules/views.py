"""Portal pages for on-call (who is on call now, a schedule's next two weeks) and the
secret-URL iCal feeds.  What a service's policy will do is escalation's page."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from apps.accounts import roles
from apps.accounts.decorators import role_required
from apps.audit.services import Actor
from apps.incidents.models import Service

from . import ical, selectors, services
from .models import Schedule


@require_http_methods(["GET", "POST"])
@role_required(roles.can_view)
def on_call_now(request):
    """POST makes the user a new personal feed URL, shown this once (only its digest is kept)."""
    feed_url = None
    if request.method == "POST":
        feed_url = request.build_absolute_uri(reverse("oncall:ical-user", args=[services.new_user_feed(request.user)]))
    return render(
        request,
        "schedules/oncall.html",
        {
            "rows": selectors.on_call_now(request.user),
            "services": roles.scoped(Service.objects.select_related("team"), request.user, team="team").order_by("team__name", "name"),
            "my_feed_url": feed_url,
        },
    )


@require_http_methods(["GET", "POST"])
@role_required(roles.can_view)
def schedule_detail(request, pk):
    """POST (the team's admins) makes the schedule a new feed URL, shown this once."""
    schedule = get_object_or_404(roles.scoped(Schedule.objects.select_related("team"), request.user, team="team"), pk=pk)
    can_configure = roles.can_configure(request.user, schedule.team_id)
    feed_url = None
    if request.method == "POST":
        if not can_configure:
            raise PermissionDenied
        token = services.new_schedule_feed(schedule, actor=Actor.of(request.user))
        feed_url = request.build_absolute_uri(reverse("oncall:ical-schedule", args=[token]))
    return render(
        request,
        "schedules/schedule_detail.html",
        {"schedule": schedule, "shifts": selectors.upcoming_shifts(schedule), "feed_url": feed_url,
         "can_configure": can_configure},
    )


def _calendar_response(body: bytes, name: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{name}.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response


@require_GET
def ical_schedule(request, token):
    # The token in the URL is the only credential: calendar apps cannot sign in.
    schedule = services.schedule_of_feed(token, request)
    if schedule is None:
        raise Http404
    return _calendar_response(ical.schedule_feed(schedule, timezone.now()), f"oncall-{schedule.pk}")


@require_GET
def ical_user(request, token):
    user = services.user_of_feed(token, request)
    if user is None:
        raise Http404
    return _calendar_response(ical.user_feed(user, timezone.now()), "my-oncall")
