"""Kafka for the harness: an embedded KRaft broker started from Maven jars, or an external cluster; topics and
consumers. Which of the two a run uses is :mod:`harness.run.kafka_service`."""

from harness.kafka.admin import create_topics, delete_topics, topic_config, wait_for_cluster
from harness.kafka.consume import iter_records, read_json_records
from harness.kafka.embedded import EmbeddedKafka

__all__ = ["EmbeddedKafka", "iter_records", "read_json_records", "create_topics", "delete_topics", "topic_config", "wait_for_cluster"]
