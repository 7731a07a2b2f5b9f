"""`Authorization: Bearer <api key>` for the REST API.

The key, not a person, is what authenticates: request.user is an ApiKeyUser
(so `request.user.is_authenticated` holds) and request.auth is the ApiKey,
whose scopes apps.accounts.permissions checks.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from incident_manager import ratelimit

from apps.audit.services import Actor

from .models import ApiKey
from .tokens import digest

KEYWORD = "Bearer"


class ApiKeyUser:
    """The principal behind a request made with an API key."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = id = None

    def __init__(self, key: ApiKey):
        self.key = key
        self.username = f"apikey:{key.name}"

    def get_username(self) -> str:
        return self.username

    def __str__(self):
        return self.username


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None  # not ours: let session authentication try
        if len(parts) != 2:
            raise AuthenticationFailed("Malformed Authorization header; expected 'Bearer <api key>'.")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid API key.") from None
        # A source that presented too many unknown keys is refused before the query (429).
        ratelimit.refuse_guesses(request)
        key = ApiKey.objects.select_related("created_by").filter(key_hash=digest(token)).first()
        if key is None:
            ratelimit.guessed(request)
            raise AuthenticationFailed("Invalid API key.")
        if key.revoked_at is not None:
            raise AuthenticationFailed(f"API key {key.prefix}… was revoked.")
        if key.created_by is not None and not key.created_by.is_active:
            # A key acts on its creator's behalf (audit, acknowledged_by): it dies with the account.
            raise AuthenticationFailed(f"API key {key.prefix}… belongs to a deactivated user.")
        return ApiKeyUser(key), key

    def authenticate_header(self, request):
        # Being first in DEFAULT_AUTHENTICATION_CLASSES, this makes DRF answer 401
        # (with WWW-Authenticate) rather than 403 when credentials are missing or wrong.
        return f'{KEYWORD} realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Shows the key in the OpenAPI document as an HTTP bearer security scheme."""

    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(header_name="Authorization", token_prefix=KEYWORD)
        return {**scheme, "description": "An API key from `manage.py createapikey`."}


def request_actor(request) -> Actor:
    """Who the audit trail names: the key (acting for its creator, if any) or the signed-in user."""
    if isinstance(request.auth, ApiKey):
        return Actor(label=f"apikey:{request.auth.name}", user=request.auth.created_by)
    return Actor.of(request.user)
