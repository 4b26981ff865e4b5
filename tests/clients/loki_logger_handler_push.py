"""Pushes through loki-logger-handler (PyPI): gzip-compressed JSON with structured metadata."""
import logging
import sys

from loki_logger_handler.loki_logger_handler import LokiLoggerHandler

handler = LokiLoggerHandler(
    url=sys.argv[1] + "/loki/api/v1/push",
    labels={"application": "pyhandler"},
    enable_structured_loki_metadata=True,
    loki_metadata={"team": "core"},
)
logger = logging.getLogger("handler-test")
logger.addHandler(handler)
logger.setLevel(logging.INFO)
logger.warning("hello from loki-logger-handler")
# Send now and surface errors (the handler's background thread would only print them).
handler._send()
