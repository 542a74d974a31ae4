"""External clusters are left as found (issue 12 item 4): the per-run topics the harness creates on an external
cluster are deleted after each repetition once its result is written, ``kafka.keep_topics`` keeps them, and a topic
the harness did not create is never deleted. The real broker (the session's embedded one, reached as an external
cluster), the real generator and the calibration engine, through :func:`harness.run.runner.run_scenario`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from harness.kafka import create_topics, topic_config
from harness.kafka.admin import admin
from harness.kafka.consume import end_offsets
from harness.run.progress import ProgressDisplay
from harness.report.document import write_report
from harness.run.runner import RunOutcome, run_scenario
from harness.scenario import parse_scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run(bootstrap: str, run_dir: Path, *, repetitions: int = 1, **kafka: Any) -> RunOutcome:
    """5 s of load at 500/s (1 s warm-up) with 1 s windows on the calibration engine; three measured windows."""
    scenario = parse_scenario({
        "name": "topics",
        "duration": "5s",
        "warmup": "1s",
        "repetitions": repetitions,
        "drain_timeout": "30s",
        "load": {"rate": 500, "users": 20},
        "window": {"size": "1s", "watermark_delay": "200ms"},
        "kafka": {"bootstrap": bootstrap, "partitions": 2, **kafka},
        "engines": ["calibration"],
    }, source="test_external_topics")
    return run_scenario(scenario, run_dir.parent, display=ProgressDisplay(live=False), run_dir=run_dir)


def topics(bootstrap: str) -> set[str]:
    return set(admin(bootstrap).list_topics(timeout=10).topics)


def test_per_run_topics_are_deleted_after_each_repetition_and_other_topics_stay(kafka_broker: str,
                                                                                  tmp_path: Path) -> None:
    create_topics(kafka_broker, {"users-own-topic": 1})
    outcome = run(kafka_broker, tmp_path / "gone", repetitions=2)
    assert outcome.status == "complete", outcome.failures
    left = topics(kafka_broker)
    assert not [t for t in left if t.startswith("bench-gone-")], left
    assert "users-own-topic" in left
    # the input topic was read back before it went: the input path's delay is in the summary and the report
    for rep in (1, 2):
        summary = json.loads((outcome.run_dir / "calibration" / f"rep-{rep}" / "summary.json").read_text())
        assert summary["input_delay"]["events"] > 0 and summary["input_delay"]["negative"] == 0
    assert "### Input path" in write_report(outcome.run_dir).read_text()


def test_keep_topics_keeps_them(kafka_broker: str, tmp_path: Path) -> None:
    outcome = run(kafka_broker, tmp_path / "kept", keep_topics=True)
    assert outcome.status == "complete", outcome.failures
    assert {"bench-kept-calibration-r1-in", "bench-kept-calibration-r1-out"} <= topics(kafka_broker)
    for topic in ("bench-kept-calibration-r1-in", "bench-kept-calibration-r1-out"):
        assert topic_config(kafka_broker, topic)["message.timestamp.type"] == "LogAppendTime"


def test_a_topic_the_harness_did_not_create_is_never_deleted(kafka_broker: str, tmp_path: Path) -> None:
    """The user's topic has the name this repetition's result topic would get: the repetition fails, the input
    topic it did create is removed, the user's topic stays with its records."""
    theirs = "bench-taken-calibration-r1-out"
    create_topics(kafka_broker, {theirs: 1})
    producer = Producer({"bootstrap.servers": kafka_broker})
    producer.produce(theirs, b"their record")
    assert producer.flush(10) == 0
    outcome = run(kafka_broker, tmp_path / "taken")
    assert outcome.status == "failed" and "already exists" in " ".join(outcome.failures)
    left = topics(kafka_broker)
    assert theirs in left and end_offsets(kafka_broker, theirs) == {0: 1}
    assert "bench-taken-calibration-r1-in" not in left
