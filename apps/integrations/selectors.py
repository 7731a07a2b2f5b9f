from apps.accounts.tokens import digest
from incident_manager.versioned_copy import VersionedCopy

from .models import Integration

# Active integrations by token hash, filled as tokens are presented (every ingest
# request presents one).  Unknown tokens are not remembered: a caller trying tokens
# must not grow the copy.
_known = VersionedCopy("integrations", dict)
_known.watch(Integration)


def active_integration(token: str, kind: str) -> Integration | None:
    token_hash = digest(token)
    known = _known.get()
    if token_hash not in known:
        found = Integration.objects.filter(token_hash=token_hash, is_active=True).first()
        if found is None:
            return None
        known[token_hash] = found
    integration = known[token_hash]
    return integration if integration.kind == kind else None
