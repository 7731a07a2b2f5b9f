from django.core.management.base import BaseCommand, CommandError

from apps.incidents.models import Service
from apps.integrations.models import Integration
from apps.integrations.services import create_integration


class Command(BaseCommand):
    help = (
        "Create an alert integration for a service and print its ingestion URL.  The URL holds "
        "the secret token and is shown this once.  The URL goes to stdout alone; notes go to stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="e.g. 'prometheus-prod'.")
        parser.add_argument("--kind", required=True, choices=Integration.Kind.values, help="The sender's format.")
        parser.add_argument("--service", required=True, metavar="SLUG", help="Slug of the service its alerts open incidents on.")

    def handle(self, *args, name, kind, service, **options):
        if not name.strip() or len(name) > Integration._meta.get_field("name").max_length:
            raise CommandError("An integration needs a name of 1 to 100 characters.")
        try:
            target = Service.objects.get(slug=service)
        except Service.DoesNotExist:
            known = ", ".join(Service.objects.order_by("slug").values_list("slug", flat=True)) or "none yet"
            raise CommandError(f"No service with slug {service!r} (known: {known}).") from None
        integration, url = create_integration(name=name, kind=kind, service=target)
        self.stderr.write(f"Created integration {integration.name!r} ({integration.get_kind_display()}) for {target.slug}.")
        self.stdout.write(url)
        if kind == Integration.Kind.ALERTMANAGER:
            self.stderr.write("Use it as a webhook_configs url in alertmanager.yml.")
        self.stderr.write("Store it now: the URL holds the secret token and will not be shown again.")
