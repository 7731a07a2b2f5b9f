"""Settings come from the environment (django-environ); see the README's table.

`make run` and `make test` start embedded PostgreSQL and Redis and export
DATABASE_URL / REDIS_URL before Django starts (incident_manager/devstack.py), so
this module only ever reads URLs.
"""

import ipaddress
from pathlib import Path

import environ
from csp.constants import NONCE

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional; never committed

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    # devstack.py writes a random key to var/secret_key on first start; a
    # deployment sets SECRET_KEY.  Never fall back to a constant.
    _key_file = BASE_DIR / "var" / "secret_key"
    if _key_file.exists():
        SECRET_KEY = _key_file.read_text().strip()
    else:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("SECRET_KEY is not set (make run creates var/secret_key)")

# The keys that seal secrets kept in the database (apps/accounts/sealed.py): Fernet
# keys, newest first, comma-separated.  devstack.py writes one to
# var/encryption_keys on first start; a deployment sets ENCRYPTION_KEYS.  A missing
# or malformed key stops every process at start (apps/accounts/apps.py).
ENCRYPTION_KEYS = env.list("ENCRYPTION_KEYS", default=[])
if not ENCRYPTION_KEYS and (_keys_file := BASE_DIR / "var" / "encryption_keys").exists():
    ENCRYPTION_KEYS = _keys_file.read_text().split()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Absolute base of this site, used to print ingestion URLs and links.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# The browser opens websockets on this port of the page's host; empty means the
# page's own origin (a reverse proxy routes /ws/ to the ASGI tier).
WEBSOCKET_PORT = env("WEBSOCKET_PORT", default="")

INSTALLED_APPS = [
    "apps.audit.admin_apps.AuditedAdminConfig",  # django.contrib.admin, its edits audited
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "allauth",
    "allauth.account",
    # Single sign-on (README "Single sign-on"): off until a provider is configured.
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",  # Okta, Keycloak, Azure AD (Entra ID), Google Workspace, ...
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.saml",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django_htmx",
    "channels",
    "django_celery_beat",
    "apps.accounts",
    "apps.audit",
    "apps.incidents",
    "apps.integrations",
    "apps.schedules",
    "apps.escalation",
    # After escalation: its lifecycle receivers run after escalation's, so an incident's
    # timer is written before its announcement rows, in the order of the calls they replaced.
    "apps.notifications",
    "apps.assist",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "incident_manager.csp.CSPMiddleware",
    "incident_manager.middleware.refuse_nul",
    "incident_manager.unavailable.ServiceUnavailableMiddleware",
    "incident_manager.ratelimit.RateLimitMiddleware",  # sign-in POSTs; answers RateLimited
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# Alert senders' endpoints (apps/integrations/urls.py: token in the URL or a header,
# JSON in and out, CSRF-exempt) need none of the portal's sessions, users, messages
# or static files: served through this stack alone (incident_manager/wsgi.py).
SENDER_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "incident_manager.middleware.refuse_nul",
    # Outermost but for those: a database outage becomes a 503 senders retry.
    "incident_manager.unavailable.ServiceUnavailableMiddleware",
    # A sender over its rate limit: a 503 with Retry-After too (ratelimit.py).
    "incident_manager.ratelimit.RateLimitMiddleware",
]

ROOT_URLCONF = "incident_manager.urls"
WSGI_APPLICATION = "incident_manager.wsgi.application"
ASGI_APPLICATION = "incident_manager.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.incidents.context_processors.portal",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL")}
# Django turns psycopg's prepared statements off (for PgBouncer in transaction mode,
# which needs max_prepared_statements, 1.21+, to carry them).  The ORM's cursors
# never prepare whatever this says; ingest's few statements ask to be prepared
# (apps/incidents/prepared.py): planning them costs more than running them.
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
if env.bool("DATABASE_POOL", default=False):
    # The ASGI tier runs views in threads; a pool bounds its connections.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": 8}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL")
# Seconds any Redis client waits for an answer (or a connection): a Redis that
# answers nothing must not hold a sender's request (incident_manager/redis_outage.py).
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.5)
_REDIS_TIMEOUTS = {"socket_timeout": REDIS_SOCKET_TIMEOUT, "socket_connect_timeout": REDIS_SOCKET_TIMEOUT}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "im",
        "OPTIONS": _REDIS_TIMEOUTS,
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # Consumers block on the layer (BZPOPMIN, 5 s at a time): reads may take longer;
        # publishers never wait for them (apps/incidents/live.py).
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_connect_timeout": REDIS_SOCKET_TIMEOUT, "socket_timeout": 10}],
                   "prefix": "im-asgi"},
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a killed worker's task is redelivered; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Enqueueing happens after commits inside requests: give up fast rather than hang
# the request when Redis is away (the database, not the broker, holds timers).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# Workers wait on the broker with BRPOP for a second at a time, so their reads may
# take longer than a request may wait; the web process shortens both (wsgi.py).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300, "socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BEAT_SCHEDULER = "incident_manager.beat:Scheduler"  # django-celery-beat's, going on without the broker
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True  # redelivered, as acks are late
CELERY_WORKER_CONSUMER = "incident_manager.celery:Consumer"  # back within 2 s of the broker
# Delivery waits on Slack, Twilio, SMTP and webhooks, not on CPU: it has a queue of its
# own, served by a worker with a thread pool (devstack, deploy/Procfile), so a burst of
# messages neither waits behind nor holds up the CPU-bound tasks on the default queue.
NOTIFY_QUEUE = "notify"
CELERY_TASK_ROUTES = {
    name: {"queue": NOTIFY_QUEUE}
    for name in (
        "apps.notifications.outbox.deliver_notifications",
        "apps.notifications.outbox.deliver_due",
        "apps.notifications.channels.slack.update_slack_messages",
        "apps.notifications.channels.slack.post_slack_followup",
    )
}
# Synced into django-celery-beat's tables on start, where admins see and tune them.
CELERY_BEAT_SCHEDULE = {
    # New incidents still settling 30 s after they opened: their task was lost (apps/incidents/settle.py).
    "settle-overdue-incidents": {"task": "apps.incidents.tasks.settle_overdue", "schedule": 5.0, "options": {"expires": 10}},
    "second-opinions-overdue": {"task": "apps.incidents.tasks.second_opinions_overdue", "schedule": 30.0,
                                "options": {"expires": 25}},
    "auto-resolve-stale-incidents": {"task": "apps.incidents.tasks.auto_resolve_stale", "schedule": 60.0},
    # Due escalation levels -> Notification rows (apps/escalation/engine.py).  A tick
    # not started within 10 s is dropped: the next one does the same work.
    "escalation-tick": {"task": "apps.escalation.tasks.tick", "schedule": 2.0, "options": {"expires": 10}},
    # Notifications whose next attempt is due (retries, and any whose task was lost).
    "deliver-due-notifications": {"task": "apps.notifications.outbox.deliver_due", "schedule": 1.0},
    "check-heartbeats": {"task": "apps.integrations.tasks.check_heartbeats", "schedule": 30.0},
    # Summaries, embeddings and postmortem drafts the incident pages are missing.
    "assist-sweep": {"task": "apps.assist.tasks.sweep", "schedule": 30.0, "options": {"expires": 25}},
}
# The sweeps beat runs itself while the broker is away (incident_manager/beat.py): what
# pages, from state in PostgreSQL, safe to run twice at once.
BEAT_RUN_WITHOUT_BROKER = {
    "apps.incidents.tasks.settle_overdue",
    "apps.escalation.tasks.tick",
    "apps.notifications.outbox.deliver_due",
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
SITE_ID = 1
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portal:incident-list"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_ADAPTER = "apps.accounts.adapter.InviteOnlyAdapter"
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False

# Single sign-on: identity providers from these variables and/or "Social applications" in
# admin; the groups they send map to teams and roles in admin ("Group mappings",
# apps/accounts/sso.py).  None configured: password sign-in only.
SOCIALACCOUNT_ADAPTER = "apps.accounts.adapter.SingleSignOnAdapter"
# An address the identity provider says it verified signs in the local user who has it,
# and links the two; an unverified one never does.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
# PKCE for every OpenID Connect app, those made in admin too.
SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"OAUTH_PKCE_ENABLED": True}}
if env("OIDC_SERVER_URL", default=""):
    SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"] = [{
        "provider_id": env("OIDC_PROVIDER_ID", default="oidc"),
        "name": env("OIDC_NAME", default="single sign-on"),
        "client_id": env("OIDC_CLIENT_ID"),
        "secret": env("OIDC_CLIENT_SECRET", default=""),
        "settings": {
            "server_url": env("OIDC_SERVER_URL"),
            "scope": env.list("OIDC_SCOPES", default=["openid", "profile", "email"]),
            "groups_claim": env("OIDC_GROUPS_CLAIM", default="groups"),
        },
    }]
for _provider in ("github", "google"):
    if env(f"{_provider.upper()}_CLIENT_ID", default=""):
        SOCIALACCOUNT_PROVIDERS[_provider] = {"APP": {
            "client_id": env(f"{_provider.upper()}_CLIENT_ID"), "secret": env(f"{_provider.upper()}_CLIENT_SECRET"),
        }}
if env("SAML_IDP_METADATA_URL", default=""):
    SOCIALACCOUNT_PROVIDERS["saml"] = {"APPS": [{
        "name": env("SAML_NAME", default="SAML"),
        "client_id": env("SAML_SLUG", default="saml"),  # the slug in /accounts/saml/<slug>/...
        "settings": {
            "idp": {"entity_id": env("SAML_IDP_ENTITY_ID"), "metadata_url": env("SAML_IDP_METADATA_URL")},
            "advanced": {"want_assertion_signed": True},
        },
    }]}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["incident_manager.ratelimit.ApiThrottle"],  # RATELIMIT_API_KEY
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # DRF's, refusing NUL and JSON nested too deep (incident_manager/input_limits.py).
    "DEFAULT_PARSER_CLASSES": [
        "incident_manager.input_limits.JSONParser",
        "incident_manager.input_limits.FormParser",
        "incident_manager.input_limits.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "incident_manager.openapi.AutoSchema",  # documents the errors too
    "EXCEPTION_HANDLER": "apps.incidents.api.exception_handler",  # maps TransitionError to 409
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LLM Incident Manager API",
    "DESCRIPTION": "Incidents, alerts and their lifecycle. Authenticate with `Authorization: Bearer <api key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",  # tags endpoints "incidents", not "v1"
    "ENUM_NAME_OVERRIDES": {
        "IncidentStatusEnum": "apps.incidents.models.Incident.Status",
        "AlertStatusEnum": "apps.incidents.models.Alert.Status",
        "SeverityEnum": "apps.incidents.models.Severity",
        "IntegrationKindEnum": "apps.integrations.models.Integration.Kind",
        "ContactMethodKindEnum": "apps.notifications.models.ContactMethod.Kind",
    },
}

# Outbound notifications (apps/integrations): see the README's table.
# EMAIL_URL like smtp://user:pass@host:587/?tls=True (django-environ); unset: printed to the console.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="incidents@localhost")
SLACK_API_URL = env("SLACK_API_URL", default="https://slack.com/api/")
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM = env("TWILIO_FROM", default="")
TWILIO_API_BASE = env("TWILIO_API_BASE", default="")  # e.g. a local fake; empty: Twilio's own hosts
NOTIFY_TIMEOUT = env.float("NOTIFY_TIMEOUT", default=5.0)  # seconds per outbound request
NOTIFY_RETRY_DELAYS = [1, 2, 4, 8, 16]  # seconds before retry 1..5; then the row fails
NOTIFY_BREAKER_THRESHOLD = 5  # consecutive failures that open a channel's circuit
NOTIFY_BREAKER_OPEN_SECONDS = 60  # then one trial request
NOTIFY_FALLBACK_CHAIN = env.list("NOTIFY_FALLBACK_CHAIN", default=["slack", "email", "webhook"])
# Outbound webhooks reach public addresses only (apps/notifications/egress.py); these
# CIDRs are let through all the same, e.g. "10.20.0.0/16,fd00:1::/64".  A malformed
# one stops the process here, at start.
WEBHOOK_ALLOWED_NETWORKS = [
    str(ipaddress.ip_network(cidr, strict=False)) for cidr in env.list("WEBHOOK_ALLOWED_NETWORKS", default=[])
]

# LLM classification (apps/incidents/llm.py): off unless ANTHROPIC_API_KEY is set.
ANTHROPIC_API_KEY = env("ANTHROPIC_API_KEY", default="")
ANTHROPIC_BASE_URL = env("ANTHROPIC_BASE_URL", default="")
LLM_MODEL = env("LLM_MODEL", default="claude-haiku-4-5")
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=20.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=3)
LLM_CONFIDENCE_THRESHOLD = env.float("LLM_CONFIDENCE_THRESHOLD", default=0.8)
LLM_MONTHLY_BUDGET_USD = env.float("LLM_MONTHLY_BUDGET_USD", default=50.0)
LLM_PRICE_INPUT_PER_MTOK = env.float("LLM_PRICE_INPUT_PER_MTOK", default=1.0)  # USD, Haiku-class
LLM_PRICE_OUTPUT_PER_MTOK = env.float("LLM_PRICE_OUTPUT_PER_MTOK", default=5.0)
LLM_CACHE_SECONDS = 3600

# Similarity (apps/incidents/embeddings.py): the embedding model, and how alike a new
# incident must be to an open one of its service to merge into it (per service in admin).
EMBEDDING_BACKEND = env("EMBEDDING_BACKEND", default="apps.incidents.embeddings.MiniLM")
SIMILARITY_THRESHOLD = env.float("SIMILARITY_THRESHOLD", default=0.85)

# Low-severity digest entries go out once a day, at this hour (UTC).
NOTIFY_DIGEST_HOUR_UTC = env.int("NOTIFY_DIGEST_HOUR_UTC", default=8)

# Rate limits (incident_manager/ratelimit.py, README "Rate limits"): token buckets in
# Redis, "N/PERIOD" = N requests at once and N per PERIOD after (s, m, h, d; "10/10m"),
# or "off".  The senders' and the API's defaults are far above what one machine serves
# (README "Benchmarks": ~1,200 single-alert requests/s in all), so that a storm is
# never refused: they are a backstop, to be lowered to a deployment's own figures.
# Without Redis nothing is refused.
RATELIMIT_ENABLED = env.bool("RATELIMIT_ENABLED", default=True)
RATELIMIT_INTEGRATION = env("RATELIMIT_INTEGRATION", default="10000/s")  # per integration token
RATELIMIT_API_KEY = env("RATELIMIT_API_KEY", default="1000/s")  # per API key, or portal user
RATELIMIT_UNKNOWN_TOKEN = env("RATELIMIT_UNKNOWN_TOKEN", default="100/m")  # per source address
RATELIMIT_LOGIN_IP = env("RATELIMIT_LOGIN_IP", default="60/m")  # sign-in POSTs per source address
RATELIMIT_LOGIN_USERNAME = env("RATELIMIT_LOGIN_USERNAME", default="20/10m")  # ... and per username
# Proxies in front whose X-Forwarded-For is trusted (deploy/nginx.conf: 1); the client
# is the address the outermost one saw.  0: REMOTE_ADDR, and the header is ignored
# (a client can write anything in it).
RATELIMIT_TRUSTED_PROXIES = env.int("RATELIMIT_TRUSTED_PROXIES", default=0)

# Largest alert payload accepted at the ingestion endpoints (bytes).
INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(INGEST_MAX_BODY_BYTES, 2_621_440)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"redact_secrets": {"()": "incident_manager.logfilters.RedactSecrets"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "httpx": {"level": "WARNING"}, "twilio.http_client": {"level": "WARNING"}},
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Transport (docs/adr/0012-transport-security.md).  The hardening that needs HTTPS
# (Secure cookies, HSTS, the redirect, trusting the proxy's scheme header) is on when
# the site is served over HTTPS: SITE_URL says so, or SECURE_TRANSPORT=true.  `make run`
# and the tests serve plain HTTP on 127.0.0.1 (SITE_URL http://...) and get none of it,
# or their cookies would never come back.  Each setting can be overridden on its own.
SECURE_TRANSPORT = env.bool("SECURE_TRANSPORT", default=SITE_URL.startswith("https://"))
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=SECURE_TRANSPORT)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=SECURE_TRANSPORT)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if SECURE_TRANSPORT else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_TRANSPORT)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)  # a promise to the preload list: opt in
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SECURE_TRANSPORT)
# A load balancer's or Kubernetes' probes come over plain HTTP, straight to the process.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# "Header-Name,value": the request was HTTPS when the proxy in front sets that header
# to that value (deploy/nginx.conf sets X-Forwarded-Proto, overwriting the client's).
# Empty: no header is trusted (nothing in front, or a proxy that forwards the client's).
_proxy_ssl_header = env.list(
    "SECURE_PROXY_SSL_HEADER", default=["X-Forwarded-Proto", "https"] if SECURE_TRANSPORT else []
)
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured('SECURE_PROXY_SSL_HEADER is "Header-Name,value", e.g. "X-Forwarded-Proto,https"')
    _name = _proxy_ssl_header[0].strip().upper().replace("-", "_")
    SECURE_PROXY_SSL_HEADER = (_name if _name.startswith("HTTP_") else "HTTP_" + _name, _proxy_ssl_header[1].strip())

# Content-Security-Policy (django-csp; incident_manager/csp.py adds the websocket
# tier's origin to connect-src per request).  Scripts and styles come from static/
# only: no inline script, event handler, style or eval anywhere in our templates
# (htmx's own eval and indicator styles are off, base.html).  An inline script that
# must be, carries nonce="{{ request.csp_nonce }}".  CSP_REPORT_ONLY=true sends the
# same policy as Content-Security-Policy-Report-Only instead, to try a change.
_CSP = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],  # the nonce only on pages that use request.csp_nonce
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
}
if SECURE_TRANSPORT:
    _CSP["DIRECTIVES"]["upgrade-insecure-requests"] = True
if env.bool("CSP_REPORT_ONLY", default=False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP
