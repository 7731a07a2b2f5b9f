from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.accounts.sealed import SealedSecretError, reseal, sealed_fields
from apps.audit.services import Actor, record


class Command(BaseCommand):
    help = (
        "Seal every sealed secret again under the first of ENCRYPTION_KEYS. Rotate a key by putting a new "
        "one first in ENCRYPTION_KEYS on every machine, running this, then dropping the old key."
    )

    def handle(self, *args, **options):
        counts = {}
        with transaction.atomic():  # all or nothing: never half the rows under a key about to be dropped
            for model, name in sealed_fields():
                rows = model.objects.select_for_update().exclude(**{name: ""}).only("pk", name)
                for row in rows:
                    try:
                        setattr(row, name, reseal(getattr(row, name)))
                    except SealedSecretError:
                        raise CommandError(
                            f"{model._meta.label} {row.pk}: its {name} opens with none of ENCRYPTION_KEYS; "
                            "nothing was changed. Put back the key it was sealed with (after the new one)."
                        ) from None
                    row.save(update_fields=[name])
                counts[f"{model._meta.label}.{name}"] = len(rows)
            record("secrets.resealed", actor=Actor("manage.py rotate_encryption_key"), data=counts)
        for column, count in counts.items():
            self.stdout.write(f"{column}: {count} sealed again")
