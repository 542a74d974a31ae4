"""Producer backends: librdkafka (confluent-kafka) and kafka-python behind one small interface.

Settings, the same for both backends and written into every result:

- ``acks=all`` with idempotence on: a retried batch is neither duplicated nor reordered, so every planned
  record is in the topic exactly once and in order per partition — a duplicate made by the generator would
  otherwise be blamed on the engine by the oracle. On the single-node embedded broker acks=all costs nothing
  over acks=1; on a replicated cluster it is what a production pipeline would use.
- ``linger`` from the scenario (``load.producer.linger``), compression none (the CPU goes to the engines).
- Keyed by user with the Java client's murmur2 partitioner (librdkafka's default is CRC32), so a user lands on
  the same partition whichever backend sent it — and wherever a Java producer would have put it.

``auto`` picks confluent-kafka: it sends several times more records per second per process than kafka-python
(docs/methodology.md, "Load generator"), and a process that keeps up with the schedule has the smaller publish delay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from harness.errors import ServiceError

BackendName = Literal["confluent", "kafka-python"]

AUTO_BACKEND: BackendName = "confluent"
"""What ``producer.backend: auto`` means (the faster backend in ``producer_perf``)."""

CAPACITY_PER_WORKER: dict[BackendName, float] = {"confluent": 150_000.0, "kafka-python": 10_000.0}
"""Events/s one paced worker process is planned for; ``workers: auto`` divides the peak rate by it. About a
quarter (confluent) and a half (kafka-python) of the unpaced generate+encode+send rate measured with
``producer_perf(include_encoding=True)`` on a 2-core machine next to the broker (620k/s and 17k/s): the margin
keeps publish delay low while the broker and the engines compete for the same cores."""


class Backend(Protocol):
    """A connected producer for one topic. Created once per worker process before the load starts; ``send`` is
    called from the send loop for every batch of due events, ``flush`` once at the end."""

    name: BackendName

    def partitions(self) -> int:
        """Partitions of the topic (a metadata round-trip: also proves the connection before the load)."""
        ...

    def send(self, values: Sequence[bytes], keys: Sequence[bytes]) -> None:
        """Hand records to the client (asynchronous; delivery errors surface in :meth:`flush`)."""
        ...

    def send_to(self, partition: int, value: bytes, key: bytes) -> None:
        """One record to an explicit partition (the end-of-run records)."""
        ...

    def flush(self, timeout_s: float) -> None:
        """Wait until every record is acknowledged; raise :class:`ServiceError` on any delivery failure."""
        ...

    def close(self) -> None: ...


def resolve_backend(name: str) -> BackendName:
    """``auto`` → :data:`AUTO_BACKEND`; other names pass through."""
    if name == "auto":
        return AUTO_BACKEND
    if name in ("confluent", "kafka-python"):
        return name  # type: ignore[return-value]
    raise ValueError(f"unknown producer backend {name!r}: use auto, confluent or kafka-python")


def make_backend(name: BackendName, bootstrap: str, topic: str, *, linger_ms: int) -> Backend:
    """Connect a producer; called in each worker process (clients must not cross a fork or spawn)."""
    if name == "confluent":
        return ConfluentBackend(bootstrap, topic, linger_ms=linger_ms)
    return KafkaPythonBackend(bootstrap, topic, linger_ms=linger_ms)


class ConfluentBackend:
    """librdkafka through confluent-kafka: the C client batches and sends on its own threads."""

    name: BackendName = "confluent"

    def __init__(self, bootstrap: str, topic: str, *, linger_ms: int) -> None:
        from confluent_kafka import Producer

        from harness.kafka.clientlog import client_logger

        self.topic = topic
        self.bootstrap = bootstrap
        self._errors: list[str] = []
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": linger_ms,
                "compression.type": "none",
                "partitioner": "murmur2_random",
                # A typo in the topic name must fail, not auto-create a one-partition topic on an external cluster.
                "allow.auto.create.topics": False,
                # Room for a few seconds of backlog at high rates before produce() pushes back.
                "queue.buffering.max.messages": 2_000_000,
                "queue.buffering.max.kbytes": 1_048_576,
                # Only failed deliveries call back: a Python call per record would cost a third of the rate.
                "delivery.report.only.error": True,
                "on_delivery": self._on_delivery,
                "error_cb": self._on_error,
                "logger": client_logger(),  # librdkafka's log lines to the run's log, not the terminal
            }
        )

    def _on_delivery(self, err: object, msg: object) -> None:
        if err is not None and len(self._errors) < 10:
            self._errors.append(str(err))

    def _on_error(self, err: object) -> None:
        # Fatal errors (idempotence broken) end the run; transient ones (a reconnect) librdkafka retries itself.
        if getattr(err, "fatal", lambda: False)() and len(self._errors) < 10:
            self._errors.append(str(err))

    def partitions(self) -> int:
        from confluent_kafka import KafkaException

        try:
            metadata = self._producer.list_topics(self.topic, timeout=30)
        except KafkaException as exc:
            raise ServiceError(f"cannot read metadata of topic {self.topic!r} from {self.bootstrap}: {exc}") from None
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise ServiceError(
                f"topic {self.topic!r} does not exist on {self.bootstrap} "
                f"({topic.error if topic is not None else 'no metadata'}); hint: create it before generating"
            )
        return len(topic.partitions)

    def send(self, values: Sequence[bytes], keys: Sequence[bytes]) -> None:
        produce, topic = self._producer.produce, self.topic
        for value, key in zip(values, keys):
            while True:
                try:
                    produce(topic, value, key)
                    break
                except BufferError:
                    # The local queue is full: serve the client until there is room; the wait shows up as
                    # publish delay, as it should.
                    self._producer.poll(0.05)
        self._producer.poll(0)

    def send_to(self, partition: int, value: bytes, key: bytes) -> None:
        self._producer.produce(self.topic, value, key, partition=partition)

    def flush(self, timeout_s: float) -> None:
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise ServiceError(
                f"{remaining} records to {self.topic!r} not acknowledged by {self.bootstrap} within {timeout_s:g} s"
            )
        self._raise_errors()

    def _raise_errors(self) -> None:
        if self._errors:
            raise ServiceError(f"producing to {self.topic!r} on {self.bootstrap} failed: {'; '.join(self._errors)}")

    def close(self) -> None:
        self._producer.flush(5)
        # The error callback is a bound method: producer -> callback -> self -> producer is a cycle, and the
        # client would keep reconnecting until a GC pass. Breaking it here frees the client now.
        del self._producer


class KafkaPythonBackend:
    """The pure-Python client: slower per record; kept as the dependency-light alternative."""

    name: BackendName = "kafka-python"

    def __init__(self, bootstrap: str, topic: str, *, linger_ms: int) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        self.topic = topic
        self.bootstrap = bootstrap
        self._errors: list[str] = []
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap.split(","),
                acks="all",
                enable_idempotence=True,
                linger_ms=linger_ms,
                compression_type=None,
                batch_size=256 * 1024,
            )
        except KafkaError as exc:
            raise ServiceError(f"kafka-python cannot connect to {bootstrap}: {exc}") from None

    def _on_error(self, exc: BaseException) -> None:
        if len(self._errors) < 10:
            self._errors.append(repr(exc))

    def partitions(self) -> int:
        from kafka.errors import KafkaError

        try:
            found = self._producer.partitions_for(self.topic)
        except KafkaError as exc:
            raise ServiceError(
                f"cannot read metadata of topic {self.topic!r} from {self.bootstrap}: {exc}; "
                "hint: does the topic exist?"
            ) from None
        if not found:
            raise ServiceError(f"topic {self.topic!r} does not exist on {self.bootstrap}; hint: create it first")
        return len(found)

    def send(self, values: Sequence[bytes], keys: Sequence[bytes]) -> None:
        send, topic, on_error = self._producer.send, self.topic, self._on_error
        for value, key in zip(values, keys):
            send(topic, value=value, key=key).add_errback(on_error)

    def send_to(self, partition: int, value: bytes, key: bytes) -> None:
        self._producer.send(self.topic, value=value, key=key, partition=partition).add_errback(self._on_error)

    def flush(self, timeout_s: float) -> None:
        from kafka.errors import KafkaTimeoutError

        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaTimeoutError:
            raise ServiceError(
                f"records to {self.topic!r} not acknowledged by {self.bootstrap} within {timeout_s:g} s"
            ) from None
        if self._errors:
            raise ServiceError(f"producing to {self.topic!r} on {self.bootstrap} failed: {'; '.join(self._errors)}")

    def close(self) -> None:
        self._producer.close(timeout=5)
