"""Logs of the streaming commands stay one line per record, even where kafka-python logs its own errors with a traceback."""

from __future__ import annotations

import io
import logging

from cli.streaming import _OneLine


def test_a_kafka_error_logged_with_a_traceback_becomes_one_line() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(_OneLine())
    logger = logging.getLogger("kafka.net.transport.test")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.ERROR)  # whatever level a streaming command left on the kafka loggers of this process
    try:
        try:
            None.recv(4096)  # type: ignore[attr-defined]
        except AttributeError:
            logger.exception("error receiving from %s", "socket")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    text = out.getvalue()
    assert "Traceback" not in text
    assert text.strip() == "error receiving from socket (AttributeError: 'NoneType' object has no attribute 'recv')"
