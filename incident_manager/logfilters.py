"""Keep secrets out of logs.

Ingestion URLs carry the integration's secret token in their path (as
Alertmanager's webhook_config expects), and Django logs request paths on 4xx and
5xx responses.  This filter, on every handler, masks the token.
"""

import logging
import re

_INGEST_TOKEN = re.compile(r"(/api/v1/ingest/)[^/\s\"']+")


def redact(text: str) -> str:
    return _INGEST_TOKEN.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
