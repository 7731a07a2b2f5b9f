"""Grafana unified alerting webhook (message version "1").

Reference: grafana/alerting receivers/webhook/v1/webhook.go (webhookMessage) and
templates/template_data.go (ExtendedData, ExtendedAlert): the Alertmanager
message shape plus Grafana's own fields (title, state, message, orgId; per alert
silenceURL, dashboardURL, panelURL, values, valueString, ruleUID).  Each alert's
`fingerprint` is its dedup key, as for Alertmanager, and credentials are left out of the stored alert as for it.
"""

from .alertmanager import parse_group
from .validation import PayloadError, obj, text


def parse(data):
    obj(data, "body")
    version = data.get("version")
    if version is not None and version != "1":
        raise PayloadError("version", 'must be "1" (Grafana webhook message version 1)')
    title = text(data, "title", "title", max_length=2000)
    return parse_group(data, source="grafana", fallback_title=title.removeprefix("[FIRING:1] ")[:500])
