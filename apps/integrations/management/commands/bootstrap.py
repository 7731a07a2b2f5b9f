import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import Membership, Team
from apps.incidents.models import Service
from apps.integrations.models import Integration
from apps.integrations.services import create_integration, ingestion_url


class Command(BaseCommand):
    help = "First start only: create a demo team, the 'demo' service, an admin user and an Alertmanager integration."

    def handle(self, *args, **options):
        if Service.objects.filter(slug="demo").exists():
            self.stdout.write(
                "Demo data exists. Sign in as 'admin' (reset with: make manage ARGS='changepassword admin'); "
                "new ingestion URLs: make manage ARGS='createintegration NAME --kind alertmanager --service demo'."
            )
            return
        password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        with transaction.atomic():
            team, _ = Team.objects.get_or_create(slug="demo", defaults={"name": "Demo team"})
            service = Service.objects.create(team=team, name="Demo service", slug="demo")
            User = get_user_model()
            admin = User.objects.filter(username="admin").first()
            if admin is None:
                admin = User.objects.create_superuser("admin", "admin@example.org", password)
            else:
                password = "(unchanged: the user existed already)"
            Membership.objects.get_or_create(user=admin, team=team, defaults={"role": Membership.Role.ADMIN})
            _, token = create_integration(name="Demo Alertmanager", kind=Integration.Kind.ALERTMANAGER, service=service)
            url = ingestion_url(token, Integration.Kind.ALERTMANAGER)
        self.stdout.write(
            self.style.SUCCESS("First start: demo data created.\n")
            + f"  Portal:            {settings.SITE_URL}/\n"
            + f"  Admin login:       admin / {password}\n"
            + f"  Alertmanager URL:  {url}\n"
            + "  (the password and the URL are shown only now; the URL holds a secret token)\n"
        )
