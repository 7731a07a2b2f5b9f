from django.core.management.base import BaseCommand, CommandError

from apps.incidents.models import Service
from apps.integrations.models import Integration
from apps.integrations.services import create_integration, how_to_send, ingestion_url


class Command(BaseCommand):
    help = (
        "Create an alert integration for a service and print its secret, shown this once: the "
        "ingestion URL (which holds the token), or for PagerDuty and Opsgenie senders the routing "
        "key / API key.  The secret goes to stdout alone; notes go to stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="e.g. 'prometheus-prod'.")
        parser.add_argument("--kind", required=True, choices=Integration.Kind.values, help="The sender's format.")
        parser.add_argument("--service", required=True, metavar="SLUG", help="Slug of the service its alerts open incidents on.")
        parser.add_argument(
            "--heartbeat-minutes", type=int, help="Heartbeats: open an incident when no ping came for this long."
        )

    def handle(self, *args, name, kind, service, heartbeat_minutes=None, **options):
        if not name.strip() or len(name) > Integration._meta.get_field("name").max_length:
            raise CommandError("An integration needs a name of 1 to 100 characters.")
        try:
            target = Service.objects.get(slug=service)
        except Service.DoesNotExist:
            known = ", ".join(Service.objects.order_by("slug").values_list("slug", flat=True)) or "none yet"
            raise CommandError(f"No service with slug {service!r} (known: {known}).") from None
        if (kind == Integration.Kind.HEARTBEAT) != bool(heartbeat_minutes and heartbeat_minutes > 0):
            raise CommandError("--heartbeat-minutes (a positive number) goes with --kind heartbeat, and only with it.")
        integration, token = create_integration(
            name=name, kind=kind, service=target, heartbeat_minutes=heartbeat_minutes
        )
        self.stderr.write(f"Created integration {integration.name!r} ({integration.get_kind_display()}) for {target.slug}.")
        if kind in (Integration.Kind.PAGERDUTY, Integration.Kind.OPSGENIE):
            self.stdout.write(token)
            self.stderr.write(how_to_send(token, kind))
        else:
            self.stdout.write(ingestion_url(token, kind))
        if kind == Integration.Kind.ALERTMANAGER:
            self.stderr.write("Use it as a webhook_configs url in alertmanager.yml.")
        self.stderr.write("Store it now: it holds the secret token and will not be shown again.")
