"""The Kafka a run uses, chosen by the scenario's ``kafka`` section."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from harness.kafka.admin import wait_for_cluster
from harness.kafka.embedded import EmbeddedKafka
from harness.scenario import KafkaConfig


@dataclass(frozen=True)
class KafkaEndpoint:
    """The cluster a run talks to."""

    bootstrap: str
    mode: str
    broker: EmbeddedKafka | None = None
    """The embedded broker (None for an external cluster, whose processes are not ours to sample)."""

    def processes(self) -> list[psutil.Process]:
        if self.broker is None or self.broker.process is None:
            return []
        return self.broker.process.processes()

    def describe(self) -> dict[str, str]:
        if self.broker is not None:
            return self.broker.versions()
        return {"kafka": "external (version not queried)", "kafka_mode": f"external: {self.bootstrap}"}


@contextmanager
def kafka_service(config: KafkaConfig, work_dir: Path) -> Iterator[KafkaEndpoint]:
    """Yield the endpoint. Embedded: start a broker logging to ``work_dir`` with its topic data in a temporary
    directory (removed afterwards: input topics can be gigabytes, results must stay small) and stop it at the end.
    External: check the cluster answers; it is never started or stopped by the harness."""
    if config.mode == "external":
        assert config.bootstrap is not None  # the scenario model guarantees it
        wait_for_cluster(config.bootstrap)
        yield KafkaEndpoint(config.bootstrap, "external")
        return
    data_dir = Path(tempfile.mkdtemp(prefix="bench-kafka-data-"))
    try:
        with EmbeddedKafka(work_dir, data_dir=data_dir) as broker:
            yield KafkaEndpoint(broker.bootstrap, "embedded", broker)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
