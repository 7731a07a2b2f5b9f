"""django-csp's middleware, with the websocket tier's origin in connect-src.

live.js opens its websocket on the page's own host, at WEBSOCKET_PORT when that is set
(`make run`: the ASGI tier listens on PORT + 1), else on the page's own origin (a proxy
routes /ws/).  'self' covers ws:/wss: of the page's own origin only in browsers that
follow CSP level 3, and never another port, so the origin is named as live.js computes
it: the host the browser asked for (validated against ALLOWED_HOSTS), ws: or wss: as
the page's scheme.  See docs/adr/0012-transport-security.md.
"""

from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.middleware import PolicyParts
from django.conf import settings
from django.core.exceptions import DisallowedHost


def websocket_origin(request) -> str | None:
    try:
        host = request.get_host()
    except DisallowedHost:
        return None  # answered with a 400 already; nothing to connect to
    scheme = "wss" if request.is_secure() else "ws"
    if settings.WEBSOCKET_PORT:
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return f"{scheme}://{hostname}:{settings.WEBSOCKET_PORT}"
    return f"{scheme}://{host}"


class CSPMiddleware(BaseCSPMiddleware):
    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if origin := websocket_origin(request):
            parts.update = {**(parts.update or {})}
            parts.update["connect-src"] = [*parts.update.get("connect-src", []), origin]
        return parts
