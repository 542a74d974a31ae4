"""librdkafka's log lines go to the run's client log (also from spawned processes), not the terminal; without a
run, only errors reach stderr. Real clients against a port nothing listens on: they log connection failures."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from harness.kafka.clientlog import LOG_ENV, client_log_to
from harness.kafka.consume import consumer
from harness.loadgen.producer import ConfluentBackend

NOWHERE = "127.0.0.1:1"


def poll_until_logged(client: object, path: Path | None = None, seconds: float = 5.0) -> None:
    """Serve the client's queued log lines (they are delivered by poll) until ``path`` has some, or timeout."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        client.poll(0.2)  # type: ignore[attr-defined]
        if path is not None and path.exists() and path.stat().st_size:
            return


def produce_nowhere() -> None:
    """In a spawned process, like a generator worker."""
    backend = ConfluentBackend(NOWHERE, "t", linger_ms=5)
    poll_until_logged(backend._producer, Path(os.environ[LOG_ENV]))


def test_client_log_lines_go_to_the_run_log_not_the_terminal(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "kafka-clients.log"
    with client_log_to(log):
        client = consumer(NOWHERE, quiet=False)
        client.subscribe(["t"])
        poll_until_logged(client, log)
        client.close()
    text = log.read_text(encoding="utf-8")
    assert "127.0.0.1:1" in text and "rdkafka#consumer" in text
    err = capfd.readouterr().err
    assert "rdkafka" not in err, err


def test_spawned_workers_write_to_the_same_run_log(tmp_path: Path) -> None:
    log = tmp_path / "kafka-clients.log"
    with client_log_to(log):
        worker = multiprocessing.get_context("spawn").Process(target=produce_nowhere)
        worker.start()
        worker.join(60)
    assert worker.exitcode == 0
    assert "rdkafka#producer" in log.read_text(encoding="utf-8")
