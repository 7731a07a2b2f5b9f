import pytest
from django.db import DatabaseError, connection, transaction

from apps.audit.models import AuditEntry
from apps.audit.services import SYSTEM, record

pytestmark = pytest.mark.django_db


def test_database_refuses_update_and_delete_of_audit_entries():
    entry = record("incident.note_added", actor=SYSTEM, data={"text": "first"})

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(verb="tampered")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    # Raw SQL, bypassing the ORM, is refused the same way.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditentry SET data = '{}'::jsonb")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditentry")

    entry.refresh_from_db()
    assert (entry.verb, entry.data) == ("incident.note_added", {"text": "first"})


def test_appending_still_works():
    record("a", actor=SYSTEM)
    record("b", actor=SYSTEM)
    assert list(AuditEntry.objects.values_list("verb", flat=True)) == ["a", "b"]
