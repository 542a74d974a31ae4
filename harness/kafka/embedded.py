"""A real single-node Apache Kafka broker in KRaft combined mode (broker + controller), run from the Maven jars.

Storage is formatted in the given work directory (the run's own), both listeners bind 127.0.0.1 on free ports,
readiness is an admin round-trip, and :meth:`EmbeddedKafka.stop` is TERM then KILL through
:class:`~harness.infra.proc.ManagedProcess`, so no broker outlives the harness.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from harness import versions

from harness.infra import jvm
from harness.errors import ServiceError
from harness.kafka.admin import probe
from harness.infra.ports import free_port
from harness.infra.proc import ManagedProcess

_LOG4J_CONFIG = Path(__file__).resolve().parent.parent / "resources" / "kafka-log4j2.properties"


class EmbeddedKafka:
    """``with EmbeddedKafka(work_dir) as kafka: kafka.bootstrap`` → ``"127.0.0.1:PORT"``."""

    def __init__(
        self, work_dir: Path, *, heap: str = "1g", port: int | None = None, data_dir: Path | None = None
    ) -> None:
        self.work_dir = Path(work_dir)
        self.data_dir = Path(data_dir) if data_dir is not None else self.work_dir / "data"
        """Topic data: a run keeps it outside the results (it can be gigabytes); the log stays in work_dir."""
        self.heap = heap
        self.port = port or free_port()
        self.controller_port = free_port()
        self.process: ManagedProcess | None = None
        self._argv: list[str] | None = None
        """The broker's command line, from :meth:`start` on (a restart reuses it)."""

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "broker.log"

    def start(self, timeout: float = 90.0) -> EmbeddedKafka:
        """Format storage, start the broker, and return once an admin round-trip succeeds.
        If anything fails the broker is stopped before the error propagates."""
        java = jvm.find_java()
        classpath = ":".join(str(path) for path in jvm.classpath("kafka"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        properties = self.work_dir / "server.properties"
        properties.write_text(self._server_properties())
        # urlsafe base64 may start with "-": hence --cluster-id=ID, never "-t ID"
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        base = [str(java), f"-Dlog4j2.configurationFile={_LOG4J_CONFIG}", "-cp", classpath]
        formatted = subprocess.run(
            [*base, "kafka.tools.StorageTool", "format", "--standalone", f"--cluster-id={cluster_id}", "-c", str(properties)],
            capture_output=True, text=True, check=False,
        )
        (self.work_dir / "format.log").write_text(formatted.stdout + formatted.stderr)
        if formatted.returncode != 0:
            raise ServiceError(
                f"Kafka storage format failed (exit {formatted.returncode}): "
                f"{(formatted.stdout + formatted.stderr).strip()[-800:]}"
            )
        self._argv = [
            str(java), f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dkafka.logs.dir={self.work_dir}", *base[1:],
            "kafka.Kafka", str(properties),
        ]
        self._launch(timeout)
        return self

    def restart(self, timeout: float = 90.0) -> EmbeddedKafka:
        """Start the broker again after :meth:`stop` (a ``restart-broker`` fault): same storage (not formatted
        again), same ports; returns once an admin round-trip succeeds."""
        if self._argv is None:
            raise ServiceError("kafka broker: restart() before start()")
        self._launch(timeout)
        return self

    def _launch(self, timeout: float) -> None:
        assert self._argv is not None
        self.process = ManagedProcess("kafka broker", self._argv, self.log_path)
        self.process.start()
        try:
            self.process.wait_until(
                lambda: probe(self.bootstrap, timeout=1.0) > 0,
                timeout,
                what=f"an admin round-trip to {self.bootstrap}",
                hint="another process may hold the port; the broker log above says why it stopped",
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=20)

    def __enter__(self) -> EmbeddedKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def versions(self) -> dict[str, str]:
        return {"kafka": versions.KAFKA, "kafka_mode": "embedded KRaft combined (broker+controller), 1 node"}

    def _server_properties(self) -> str:
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # consumers join at once instead of waiting 3 s for more members
            "group.initial.rebalance.delay.ms": "0",
            "delete.topic.enable": "true",
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())
