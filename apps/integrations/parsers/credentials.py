"""Senders' credentials are never stored with their alerts.

A sender may carry its key in the body: PagerDuty Events v2 its `routing_key` (v1
its `service_key`), Opsgenie's older clients their `apiKey`, a generic sender
whatever its author chose.  The parsers have read it by then, and the stored
payload (Alert.payload) is shown to every viewer and returned by the API, where the
key would let anyone trigger and resolve that service's incidents.

The rule: a top-level key of an event whose name, lower-cased and without `_` and
`-`, is one of CREDENTIAL_NAMES is left out of the stored payload.  Nested objects
are the sender's own data (labels, details) and are kept as sent.  Migration
incidents/0016 applies the same rule to alerts stored before.
"""

CREDENTIAL_NAMES = frozenset({
    "routingkey", "servicekey", "integrationkey", "apikey", "geniekey",
    "token", "accesstoken", "authtoken", "secret", "password",
})


def is_credential(name: str) -> bool:
    return name.lower().replace("_", "").replace("-", "") in CREDENTIAL_NAMES


def without_credentials(payload: dict) -> dict:
    """`payload` as it is stored: the event without the sender's credentials."""
    if not any(is_credential(name) for name in payload):
        return payload  # nearly always (an Alertmanager storm's alerts): no copy
    return {name: value for name, value in payload.items() if not is_credential(name)}
