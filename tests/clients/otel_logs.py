"""Exports one log record with the OpenTelemetry Python SDK's OTLP/HTTP exporter (PyPI)."""
import logging
import sys

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

provider = LoggerProvider(
    resource=Resource.create({"service.name": "otel-py", "deployment.environment": "test"})
)
exporter = OTLPLogExporter(endpoint=sys.argv[1] + "/otlp/v1/logs")
provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
logger = logging.getLogger("otel-test")
logger.addHandler(handler)
logger.setLevel(logging.INFO)
logger.warning("hello from opentelemetry", extra={"user.id": "u-42"})
provider.force_flush()
provider.shutdown()
