from apps.accounts.tokens import digest
from incident_manager import ratelimit
from incident_manager.versioned_copy import VersionedCopy

from .models import Integration

# Active integrations by token hash, filled as tokens are presented (every ingest
# request presents one).  Unknown tokens are not remembered: a caller trying tokens
# must not grow the copy.
_known = VersionedCopy("integrations", dict)
_known.watch(Integration)


def active_integration(token: str, kind: str, request=None) -> Integration | None:
    """With the sender's `request`, rate-limited (incident_manager/ratelimit.py, which
    raises RateLimited): per integration token, and per source address for tokens that
    match none.  That one is checked before the query, and not for tokens already in
    this process's copy: a guesser who spent it costs no query, and the integrations
    this process serves are not refused for a guesser behind the same address."""
    token_hash = digest(token)
    known = _known.get()
    if token_hash not in known:
        if request is not None:
            ratelimit.refuse_guesses(request)
        found = Integration.objects.filter(token_hash=token_hash, is_active=True).first()
        if found is None:
            if request is not None:
                ratelimit.guessed(request)
            return None
        known[token_hash] = found
    integration = known[token_hash]
    if integration.kind != kind:
        return None
    if request is not None:
        ratelimit.integration_request(integration.pk)
    return integration
