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


def record(verb: str, *, actor: Actor, incident=None, data: dict | None = None) -> AuditEntry:
    """Write one audit entry.  Call it inside the transaction of the change it records."""
    return AuditEntry.objects.create(
        verb=verb, actor=actor.user, actor_label=actor.label, incident=incident, data=data or {}
    )
