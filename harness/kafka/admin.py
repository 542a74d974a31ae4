"""Topic administration and readiness against any Kafka cluster (embedded or external), via librdkafka."""

from __future__ import annotations

import time
from collections.abc import Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from harness.errors import ServiceError

LOG_APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}
"""Result topics: the broker stamps each record with the time it was appended, the one clock for latency."""


def admin(bootstrap: str, *, quiet: bool = True) -> AdminClient:
    """An admin client. ``quiet`` silences librdkafka's own connection log lines (expected while probing a
    starting broker, and when a client outlives a stopped broker); failures still raise from each call."""
    config: dict[str, object] = {"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 3000}
    if quiet:
        config["log_level"] = 0
    return AdminClient(config)


def probe(bootstrap: str, timeout: float = 2.0) -> int:
    """One admin round-trip (cluster metadata); returns the number of brokers, raises if none answers."""
    metadata = admin(bootstrap, quiet=True).list_topics(timeout=timeout)
    if not metadata.brokers:
        raise ServiceError(f"Kafka at {bootstrap} answered with no brokers")
    return len(metadata.brokers)


def wait_for_cluster(bootstrap: str, timeout: float = 30.0) -> None:
    """Block until an admin round-trip to ``bootstrap`` succeeds (never a sleep-and-hope)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            probe(bootstrap)
            return
        except (KafkaException, ServiceError) as exc:
            last = str(exc)
            time.sleep(0.2)
    raise ServiceError(
        f"Kafka at {bootstrap} did not answer an admin request within {timeout:g} s (last error: {last}); "
        "hint: check kafka.bootstrap in the scenario and that the cluster is reachable from this host"
    )


def create_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    log_append_time: bool = False,
    replication_factor: int = 1,
    timeout: float = 30.0,
    recreate: bool = False,
) -> None:
    """Create fresh topics ``{name: partitions}``. A topic of that name that already exists is never deleted
    unless ``recreate`` (the harness leaves what it did not create as it found it): :class:`ServiceError`.
    With ``log_append_time`` the topics use broker append time as record timestamps (result topics).
    Returns when every partition has a leader."""
    client = admin(bootstrap)
    existing = set(client.list_topics(timeout=timeout).topics)
    stale = [name for name in topics if name in existing]
    if stale and not recreate:
        raise ServiceError(
            f"topic {', '.join(sorted(stale))} already exists on {bootstrap}; the harness does not delete a topic it "
            "did not create: choose another topic name, or allow it with --recreate"
        )
    if stale:
        delete_topics(bootstrap, stale, timeout=timeout)
    config = dict(LOG_APPEND_TIME) if log_append_time else {}
    new = [NewTopic(name, partitions, replication_factor, config=config) for name, partitions in topics.items()]
    for name, future in client.create_topics(new, request_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            raise ServiceError(f"cannot create topic {name!r} on {bootstrap}: {exc}") from None
    _wait_for_leaders(client, topics, timeout)


def delete_topics(bootstrap: str, names: list[str], *, timeout: float = 30.0) -> None:
    client = admin(bootstrap)
    for name, future in client.delete_topics(names, request_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if "UNKNOWN_TOPIC" not in str(exc):
                raise ServiceError(f"cannot delete topic {name!r} on {bootstrap}: {exc}") from None
    deadline = time.monotonic() + timeout
    while set(names) & set(client.list_topics(timeout=timeout).topics):
        if time.monotonic() > deadline:
            raise ServiceError(f"topics {names} still exist on {bootstrap} {timeout:g} s after deletion")
        time.sleep(0.1)


def topic_config(bootstrap: str, name: str, timeout: float = 10.0) -> dict[str, str]:
    """The effective configuration of a topic, as the broker reports it."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    client = admin(bootstrap)  # held: the futures fail if the client is collected first
    result = client.describe_configs([resource], request_timeout=timeout)[resource].result(timeout)
    return {key: entry.value for key, entry in result.items()}


def _wait_for_leaders(client: AdminClient, topics: Mapping[str, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        metadata = client.list_topics(timeout=timeout).topics
        ready = all(
            name in metadata
            and metadata[name].error is None
            and len(metadata[name].partitions) == count
            and all(p.leader >= 0 for p in metadata[name].partitions.values())
            for name, count in topics.items()
        )
        if ready:
            return
        if time.monotonic() > deadline:
            raise ServiceError(f"topics {sorted(topics)} have no leader for every partition after {timeout:g} s")
        time.sleep(0.1)
