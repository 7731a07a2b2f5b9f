"""Portal pages for on-call (who is on call now, a schedule's next two weeks) and the
secret-URL iCal feeds.  What a service's policy will do is escalation's page."""

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from apps.accounts import roles
from apps.accounts.decorators import role_required
from apps.incidents.models import Service

from . import ical, selectors
from .models import CalendarFeed, Schedule


@require_GET
@role_required(roles.can_view)
def on_call_now(request):
    feed, _ = CalendarFeed.objects.get_or_create(user=request.user)
    return render(
        request,
        "schedules/oncall.html",
        {
            "rows": selectors.on_call_now(),
            "services": Service.objects.select_related("team").order_by("team__name", "name"),
            "my_feed_url": request.build_absolute_uri(reverse("oncall:ical-user", args=[feed.token])),
        },
    )


@require_GET
@role_required(roles.can_view)
def schedule_detail(request, pk):
    schedule = get_object_or_404(Schedule.objects.select_related("team"), pk=pk)
    return render(
        request,
        "schedules/schedule_detail.html",
        {
            "schedule": schedule,
            "shifts": selectors.upcoming_shifts(schedule),
            "feed_url": request.build_absolute_uri(reverse("oncall:ical-schedule", args=[schedule.feed_token])),
        },
    )


def _calendar_response(body: bytes, name: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{name}.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response


@require_GET
def ical_schedule(request, token):
    # The token in the URL is the only credential: calendar apps cannot sign in.
    schedule = Schedule.objects.filter(feed_token=token).first()
    if schedule is None:
        raise Http404
    return _calendar_response(ical.schedule_feed(schedule, timezone.now()), f"oncall-{schedule.pk}")


@require_GET
def ical_user(request, token):
    feed = CalendarFeed.objects.select_related("user").filter(token=token, user__is_active=True).first()
    if feed is None:
        raise Http404
    return _calendar_response(ical.user_feed(feed.user, timezone.now()), "my-oncall")
