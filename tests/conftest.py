"""Shared fixtures. Integration tests get one real embedded Kafka broker for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.kafka import EmbeddedKafka


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real single-node KRaft broker started from the Maven jars."""
    work_dir: Path = tmp_path_factory.mktemp("kafka")
    with EmbeddedKafka(work_dir) as broker:
        yield broker.bootstrap
