"""Local mode listens on loopback only: during a real run of each built-in engine, every listening socket of the
engine's whole process tree (JVMs, Python driver, PyFlink's Python workers) is bound to 127.0.0.1 or ::1.

A socket on every interface would expose the job (Flink's blob server, py4j's gateway, PyFlink's worker pool,
Spark's block manager) to the network of the machine the benchmark runs on; nothing the harness starts in local
mode needs that. One known exception is pinned below: ``flink-python``'s JVM side of Apache Beam's Fn API.
"""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from confluent_kafka import Producer

from harness import workload
from harness.engines.base import EngineContext
from harness.engines.process import ProcessEngine
from harness.engines.registry import resolve_engine
from harness.kafka import create_topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READY_TIMEOUT = 240.0
SAMPLE_FOR_S = 12.0
"""How long sockets are sampled while events flow: Python workers and late-opened servers show up in this time."""


@dataclass(frozen=True)
class Listener:
    ip: str
    port: int
    pid: int
    process: str
    """The owning process's name (``java``, ``python3.11`` …)."""

    @property
    def loopback(self) -> bool:
        """127.0.0.0/8 or ::1, also as an IPv4-mapped IPv6 address (``::ffff:127.0.0.1``: a JVM's dual-stack
        socket bound to 127.0.0.1)."""
        address = ipaddress.ip_address(self.ip.split("%", 1)[0])
        mapped = getattr(address, "ipv4_mapped", None)
        return bool((mapped or address).is_loopback)


def listeners(processes: list[psutil.Process]) -> set[Listener]:
    """Every socket in LISTEN state of these processes and their descendants."""
    tree: dict[int, psutil.Process] = {}
    for proc in processes:
        try:
            tree[proc.pid] = proc
            tree.update({child.pid: child for child in proc.children(recursive=True)})
        except psutil.NoSuchProcess:
            continue
    found = set()
    for proc in tree.values():
        try:
            connections = proc.net_connections(kind="inet")
            name = proc.name()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        found |= {Listener(c.laddr.ip, c.laddr.port, proc.pid, name) for c in connections
                  if c.status == psutil.CONN_LISTEN}
    return found


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    now = int(time.time() * 1000)
    for seq in range(count):
        user = workload.user_id(seq % 4, 4)
        event = {"user": user, "action": workload.ACTION, "ts": now + seq, "seq": seq}
        producer.produce(topic, key=user, value=json.dumps(event))
    assert producer.flush(30) == 0


def run_and_listen(name: str, bootstrap: str, tmp_path: Path) -> set[Listener]:
    """Start the engine with its default settings, wait until ready, send events, and collect the listening
    sockets of its process tree once a second for :data:`SAMPLE_FOR_S`."""
    suffix = uuid.uuid4().hex[:8]
    input_topic, output_topic = f"loop-in-{suffix}", f"loop-out-{suffix}"
    create_topics(bootstrap, {input_topic: 2})
    create_topics(bootstrap, {output_topic: 1}, log_append_time=True)
    spec = workload.JobSpec(bootstrap, input_topic, output_topic, 10_000, 10_000, 2_000, 2, 2,
                            str(tmp_path / "state"), {})
    engine_class = resolve_engine(name)
    engine = engine_class(engine_class.Settings(), EngineContext(spec, tmp_path))
    assert isinstance(engine, ProcessEngine)
    seen: set[Listener] = set()
    engine.start()
    try:
        engine.wait_ready(READY_TIMEOUT)
        produce(bootstrap, input_topic, 200)
        deadline = time.monotonic() + SAMPLE_FOR_S
        while time.monotonic() < deadline:
            engine.check()
            seen |= listeners(engine.processes())
            time.sleep(1.0)
    finally:
        engine.stop()
    assert seen, "no listening socket found: the sampling did not see the engine's processes"
    return seen


@pytest.fixture(scope="module", params=["spark", "flink", "flink-python"])
def engine_listeners(request: pytest.FixtureRequest, kafka_broker: str,
                     tmp_path_factory: pytest.TempPathFactory) -> tuple[str, set[Listener]]:
    name = request.param
    return name, run_and_listen(name, kafka_broker, tmp_path_factory.mktemp(f"loopback-{name}"))


def test_every_listening_socket_is_loopback(engine_listeners: tuple[str, set[Listener]]) -> None:
    name, seen = engine_listeners
    exposed = sorted(f"{s.ip}:{s.port} ({s.pid} {s.process})" for s in seen if not s.loopback)
    if name == "flink-python" and exposed and all(s.process == "java" for s in seen if not s.loopback):
        pytest.xfail("Apache Beam's Fn API servers in Flink's JVM (control, data, state, logging, provisioning of "
                     "each Python worker) listen on every interface: Beam's ServerFactory builds them with "
                     "NettyServerBuilder.forPort(port), and neither Beam nor Flink has an option to bind them")
    assert exposed == [], f"listening on non-loopback addresses; all listeners: {sorted(seen, key=str)}"


def test_python_side_of_pyflink_is_loopback(engine_listeners: tuple[str, set[Listener]]) -> None:
    """The Python processes (PyFlink's py4j callback server and the Beam worker pool the harness rebinds) never
    listen beyond loopback, for any engine."""
    name, seen = engine_listeners
    python = [s for s in seen if s.process.startswith("python")]
    assert python, f"{name}: no Python listener seen (py4j's callback server always listens)"
    assert [s for s in python if not s.loopback] == []
