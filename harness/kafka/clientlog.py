"""Where librdkafka's own log lines go (confluent-kafka producers and consumers of the harness).

librdkafka prints its log to stderr by default (``%4|…|GETPID|rdkafka#producer-8|… Coordinator load in
progress``): transient warnings that a run recovers from by itself, written over the live display. Every client
of the harness passes :func:`client_logger` as confluent-kafka's ``logger`` instead, and the lines go

* during ``bench run``: to the run's ``kafka-clients.log`` (:func:`client_log_to`, which the runner opens for the
  whole run), also from the generator's worker processes: spawned processes find the file through the
  environment variable :data:`LOG_ENV`;
* otherwise (tests, ``bench perf``): errors only, to stderr, as librdkafka would print them.

A persistent failure still reaches the user through the clients' error paths (``error_cb``, delivery reports,
consume errors), not through this log.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

LOGGER_NAME = "harness.librdkafka"
LOG_ENV = "STREAMBENCH_KAFKA_CLIENT_LOG"
"""Path of the client log file, inherited by spawned worker processes."""
_FORMAT = "%(asctime)s %(process)d %(levelname)s %(message)s"


def client_logger() -> logging.Logger:
    """The logger every confluent-kafka client of the harness gets as ``logger``; set up on first use in each
    process: to the file named by :data:`LOG_ENV` when set, else errors to stderr."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        path = os.environ.get(LOG_ENV)
        if path:
            logger.addHandler(_file_handler(Path(path)))
        else:
            stderr = logging.StreamHandler()
            stderr.setLevel(logging.ERROR)
            logger.addHandler(stderr)
    return logger


@contextlib.contextmanager
def client_log_to(path: Path) -> Iterator[Path]:
    """Route every client's log lines to ``path`` (appended) while the block runs, in this process and in the
    processes spawned meanwhile; restores the previous routing afterwards."""
    logger = logging.getLogger(LOGGER_NAME)
    saved_handlers, saved_env = list(logger.handlers), os.environ.get(LOG_ENV)
    handler = _file_handler(path)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    os.environ[LOG_ENV] = str(path)
    try:
        yield path
    finally:
        handler.close()
        logger.handlers = saved_handlers
        if saved_env is None:
            os.environ.pop(LOG_ENV, None)
        else:
            os.environ[LOG_ENV] = saved_env


def _file_handler(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, mode="a", encoding="utf-8", delay=True)  # created on the first line
    handler.setFormatter(logging.Formatter(_FORMAT))
    return handler


__all__ = ["LOGGER_NAME", "LOG_ENV", "client_log_to", "client_logger"]
