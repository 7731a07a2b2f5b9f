"""What Slack and Twilio call back with: Slack's interactivity and slash commands,
Twilio's voice gather (a key pressed on a page call) and its delivery status.
Every change of an incident goes through incidents.services."""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from apps.accounts import roles
from apps.audit.services import Actor
from apps.incidents import services as incident_services
from apps.notifications import delivery_reports
from apps.notifications.models import Notification

from .slack_app import handler_for, team_id_of


@csrf_exempt
@require_POST
def slack_events(request):
    """Slack's interactivity, slash command and events URL.  bolt verifies the signature
    with the workspace's signing secret and answers 401 when it does not match."""
    handler = handler_for(team_id_of(request.body, request.content_type or ""))
    if handler is None:
        return JsonResponse({"error": "unknown workspace"}, status=401)
    return handler.handle(request)


def _signed_by_twilio(request) -> bool:
    """X-Twilio-Signature over our public URL and the posted form, with the auth token."""
    if not settings.TWILIO_AUTH_TOKEN:
        return False
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    url = settings.SITE_URL + request.get_full_path()
    return validator.validate(url, request.POST.dict(), request.headers.get("X-Twilio-Signature", ""))


@csrf_exempt
@require_POST
def twilio_gather(request, notification_id: int):
    """Twilio posts the digit pressed during a call; "1" acknowledges as the person called.
    The request must carry Twilio's signature (X-Twilio-Signature) over our URL and its form."""
    if not _signed_by_twilio(request):
        return HttpResponse("invalid signature", status=403)
    notification = Notification.objects.select_related("recipient", "incident__service").filter(pk=notification_id).first()
    response = VoiceResponse()
    if notification is None or notification.recipient is None or request.POST.get("Digits") != "1":
        response.say("Nothing was changed. Goodbye.")
    elif not roles.can_respond(notification.recipient, notification.incident.service.team_id):
        # Paged once, since left the team or made a viewer: the call no longer acts for them.
        response.say("You are no longer a responder of this incident's team. Nothing was changed. Goodbye.")
    else:
        try:
            incident_services.acknowledge(
                notification.incident_id, actor=Actor(f"{notification.recipient.get_username()} (phone)", notification.recipient)
            )
            response.say("Acknowledged. Goodbye.")
        except incident_services.TransitionError:
            response.say("The incident was already acknowledged or resolved. Goodbye.")
    return HttpResponse(str(response), content_type="application/xml")


@csrf_exempt
@require_POST
def twilio_status(request, notification_id: int):
    """Twilio's StatusCallback for an SMS (MessageStatus) or a call (CallStatus)."""
    if not _signed_by_twilio(request):
        return HttpResponse("invalid signature", status=403)
    form = request.POST
    sid = form.get("MessageSid") or form.get("CallSid", "")
    status = form.get("MessageStatus") or form.get("CallStatus", "")
    try:
        delivery_reports.record_twilio_status(notification_id, sid, status, form.get("ErrorCode", ""))
    except delivery_reports.UnknownMessage:
        return HttpResponse("unknown message", status=404)
    return HttpResponse(status=204)
