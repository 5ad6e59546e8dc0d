"""Log configuration: text or JSON lines (AUTH_LOG_FORMAT), and the request id.

The same configuration is applied by `serve` and by uvicorn in every worker,
for the service's own loggers and uvicorn's (its access log included).
"""

import copy
import json
import logging
from datetime import UTC, datetime
from typing import Any

import uvicorn

from .transport import RedactTokens, request_id

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            entry["request_id"] = current
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def log_config(level: str, json_format: bool) -> dict[str, Any]:
    """uvicorn's logging configuration, with the service's loggers (the root
    logger) added, and JSON formatters when asked for."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    # The access log shows the links' paths, never their one-time tokens.
    config["filters"] = {"redact_tokens": {"()": RedactTokens}}
    config["handlers"]["access"]["filters"] = ["redact_tokens"]
    config["formatters"]["service"] = {"format": TEXT_FORMAT}
    config["handlers"]["service"] = {
        "formatter": "service",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["root"] = {"handlers": ["service"], "level": level.upper()}
    # httpx logs every request with its full URL, and a webhook URL may carry
    # the receiver's key; the mail worker logs each delivery without it.
    config["loggers"]["httpx"] = {"level": "WARNING"}
    if json_format:
        for formatter in ("default", "access", "service"):
            config["formatters"][formatter] = {"()": JsonFormatter}
    return config
