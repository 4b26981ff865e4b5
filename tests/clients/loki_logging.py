"""Pushes one line through python-logging-loki (PyPI), exactly as an application would."""
import logging
import sys

import logging_loki

handler = logging_loki.LokiHandler(
    url=sys.argv[1] + "/loki/api/v1/push",
    tags={"application": "pyapp"},
    version="1",
)
# The handler swallows failures into handleError; make them fail the test instead.
def fail(record):
    raise SystemExit(f"push failed: {sys.exc_info()[1]!r}")
handler.handleError = fail

logger = logging.getLogger("lode-test")
logger.addHandler(handler)
logger.setLevel(logging.INFO)
logger.error("hello from python-logging-loki", extra={"tags": {"service": "checkout"}})
