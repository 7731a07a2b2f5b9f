from dataclasses import dataclass

from .models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who asked for a change: a user, an integration, or the system itself."""

    label: str
    user: object | None = None

    @classmethod
    def of(cls, user) -> "Actor":
        return cls(label=user.get_username(), user=user)


SYSTEM = Actor("system")


def entry(verb: str, *, actor: Actor, incident=None, data: dict | None = None) -> AuditEntry:
    """An audit entry not yet written: for record_all()."""
    return AuditEntry(verb=verb, actor=actor.user, actor_label=actor.label, incident=incident, data=data or {})


def record(verb: str, *, actor: Actor, incident=None, data: dict | None = None) -> AuditEntry:
    """Write one audit entry.  Call it inside the transaction of the change it records."""
    audit_entry = entry(verb, actor=actor, incident=incident, data=data)
    audit_entry.save()
    return audit_entry


def record_all(entries: list[AuditEntry]) -> None:
    """Write many entries in one INSERT (a storm opens hundreds of incidents at once)."""
    AuditEntry.objects.bulk_create(entries)
