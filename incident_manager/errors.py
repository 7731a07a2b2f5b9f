"""Error pages: the API answers an unknown URL in its own JSON error shape, as it
answers everything else; the portal with Django's page."""

from django.http import JsonResponse
from django.views import defaults


def not_found(request, exception):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
