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


@pytest.fixture(scope="session")
def known_truth(kafka_broker: str, tmp_path_factory: pytest.TempPathFactory) -> object:
    """One run of every known-truth engine on one load (tests/integration/known_truth_run.py), shared by the tests
    that read their engine's verdicts from it."""
    from tests.integration.known_truth_run import run_known_truth

    return run_known_truth(kafka_broker, tmp_path_factory.mktemp("known-truth"))
