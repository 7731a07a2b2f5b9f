"""Refuse NUL characters wherever a client can put them outside a JSON body.

PostgreSQL cannot hold NUL in text: a lookup with one (an iCal token, a session
cookie) raises instead of finding nothing, and a form field with one (a portal note)
cannot be stored.  Bodies are judged where they are parsed: the senders' in
decode_json, the API's by its parsers (input_limits.py), which also see the forms of
PUT and PATCH that Django's request.POST leaves out.
"""

from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError

from .input_limits import NUL_PROBLEM, form_field_with_nul

FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def refuse_nul(get_response):
    def middleware(request):
        if field := _field_with_nul(request):
            return JsonResponse({"error": NUL_PROBLEM, "field": field}, status=400)
        return get_response(request)

    return middleware


def _field_with_nul(request) -> str | None:
    """Where the request holds a NUL: "path", a query or form field's name, or "cookie NAME"."""
    if "\x00" in request.path_info:
        return "path"
    forms = [request.GET]
    if request.method == "POST" and request.content_type in FORMS:
        try:
            # Read whole first, so that a view reading request.body (a Slack or Twilio
            # signature check) still can after request.POST was parsed from it.
            request.body  # noqa: B018
            forms.append(request.POST)
        except MultiPartParserError:
            pass  # the view answers for a body it cannot read (the API in its own shape)
    for form in forms:
        if name := form_field_with_nul(form):
            return name
    for name, value in request.COOKIES.items():
        if "\x00" in name or "\x00" in value:
            return f"cookie {name}"
    return None
