from django.contrib.admin.apps import AdminConfig


class AuditedAdminConfig(AdminConfig):
    """django.contrib.admin with a site that writes every save and delete made in it to
    the audit trail (admin_trail.py).  INSTALLED_APPS names this in place of
    "django.contrib.admin"; the app keeps the label "admin"."""

    default_site = "apps.audit.admin_trail.AuditedAdminSite"
