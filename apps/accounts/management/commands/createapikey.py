from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import ApiKey, Team
from apps.accounts.services import create_api_key
from apps.audit.services import Actor


class Command(BaseCommand):
    help = (
        "Create an API key and print it.  Only its digest is stored: the key is shown this once.  "
        "The key goes to stdout alone (KEY=$(manage.py createapikey …) works); notes go to stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="What the key is for, e.g. 'grafana' or 'ci'.")
        parser.add_argument("--scopes", nargs="+", required=True, metavar="SCOPE",
                            help=f"One or more of: {', '.join(ApiKey.Scope.values)}.")
        parser.add_argument("--user", metavar="USERNAME",
                            help="Act on this user's behalf (audit trail, acknowledged_by); the key dies with the account.")
        parser.add_argument("--team", metavar="SLUG",
                            help="Read and act in this team only (required with --user, unless the user is an "
                                 "organisation admin); without it the key acts in every team.")

    def handle(self, *args, name, scopes, user, team, **options):
        scopes = [s for arg in scopes for s in arg.split(",") if s]  # "a,b" works too
        created_by = None
        if user:
            try:
                created_by = get_user_model().objects.get(username=user, is_active=True)
            except get_user_model().DoesNotExist:
                raise CommandError(f"No active user named {user!r}.") from None
        if team:
            try:
                team = Team.objects.get(slug=team)
            except Team.DoesNotExist:
                raise CommandError(f"No team with the slug {team!r}.") from None
        try:
            key, plaintext = create_api_key(
                name=name, scopes=scopes, created_by=created_by, team=team or None, actor=Actor("manage.py createapikey")
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"Created API key {key.name!r} ({key.prefix}…) with scopes {', '.join(key.scopes)}.")
        self.stdout.write(plaintext)
        self.stderr.write("Store it now: it will not be shown again.  Send it as 'Authorization: Bearer <key>'.")
