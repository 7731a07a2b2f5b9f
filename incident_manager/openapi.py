"""The REST API's OpenAPI document (drf-spectacular), with the errors every operation
can answer: without a valid key (401), without its scope (403), for an unknown object
or page (404), where it reads a body or query parameters, for a bad one (400), and
for a body of a type it does not read (415), over a rate limit (429); all in the one error shape of
apps.incidents.api.exception_handler."""

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse

from apps.incidents.serializers import ErrorSerializer

ERRORS = {
    "400": "A request field or query parameter is not valid; `field` names it.",
    "401": "No API key, or not a valid one.",
    "403": "The key lacks the scope, or the user the role, this operation needs.",
    "404": "No such object, or page.",
    "415": "The body is neither JSON nor a form.",
    "429": "Over a rate limit (README \"Rate limits\"), which `error` names; come back after `Retry-After` seconds.",
}


class AutoSchema(openapi.AutoSchema):
    def _get_response_bodies(self, direction="response"):
        # (drf-spectacular's hook for an operation's responses; documented ones win.)
        responses = super()._get_response_bodies(direction)
        takes_body = self.method in ("POST", "PUT", "PATCH")
        for code, description in ERRORS.items():
            if (code == "400" and not (takes_body or self._is_list_view())) or (code == "415" and not takes_body):
                continue
            error = OpenApiResponse(ErrorSerializer, description=description)
            responses.setdefault(code, self._get_response_for_code(error, code, direction=direction))
        return responses
