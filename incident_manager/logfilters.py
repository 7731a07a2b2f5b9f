"""Keep secrets out of logs.

Ingestion, heartbeat and calendar-feed URLs carry a secret token in their path
(senders and calendar apps cannot send headers), and Django logs request paths on
4xx and 5xx responses.  This filter, on every handler, masks the tokens.
"""

import logging
import re

_SECRET_IN_PATH = re.compile(r"(/api/v1/ingest/|/api/v1/heartbeat/|/ical/schedule/|/ical/user/)[^/\s\"'.]+")


def redact(text: str) -> str:
    return _SECRET_IN_PATH.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
