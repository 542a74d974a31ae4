"""The Kafka a run uses, chosen by the scenario's ``kafka`` section."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.kafka.admin import wait_for_cluster
from harness.kafka.embedded import EmbeddedKafka
from harness.scenario import KafkaConfig


@contextmanager
def kafka_service(config: KafkaConfig, work_dir: Path) -> Iterator[str]:
    """Yield a bootstrap string. Embedded: start a broker in ``work_dir`` and stop it afterwards. External:
    check the cluster answers; it is never started or stopped by the harness."""
    if config.mode == "external":
        assert config.bootstrap is not None  # the scenario model guarantees it
        wait_for_cluster(config.bootstrap)
        yield config.bootstrap
        return
    with EmbeddedKafka(work_dir) as broker:
        yield broker.bootstrap
