"""docker-compose.yml, offline: valid against the Compose specification, and in step with the harness's cluster
configuration example (scenarios/cluster-example.yaml), harness/versions.py, requirements.lock and jars.lock.

No Docker engine is needed: the schema is the one check-jsonschema vendors (``vendor.compose-spec``)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import versions

from harness.infra import jvm
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {"kafka", "spark-master", "spark-worker", "flink-jobmanager", "flink-taskmanager", "harness"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def example() -> Any:
    return load_scenario(ROOT / "scenarios" / "cluster-example.yaml")


def check_jsonschema() -> str:
    found = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")
    assert found, "check-jsonschema is missing: ./setup.sh installs it from requirements.lock"
    return found


def test_valid_against_the_compose_specification() -> None:
    done = subprocess.run([check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok -- validation done" in done.stdout


def test_the_schema_check_catches_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("    healthcheck:\n", "    health_check:\n", 1))
    done = subprocess.run([check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(broken)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "health_check" in done.stdout + done.stderr


def test_services(services: dict[str, Any]) -> None:
    assert set(services) == SERVICES


def test_every_service_has_a_health_check(services: dict[str, Any]) -> None:
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_ports_are_published_on_loopback_only(services: dict[str, Any]) -> None:
    published = [(name, port) for name, service in services.items() for port in service.get("ports", [])]
    assert published, "the UIs and Kafka's host listener are published"
    for name, port in published:
        assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name}: {port!r} is not bound to 127.0.0.1"
    host_ports = [port.split(":")[1] for _, port in published]
    assert len(host_ports) == len(set(host_ports)), host_ports
    # services that scale publish nothing (a second replica could not bind the same host port)
    assert not services["spark-worker"].get("ports") and not services["flink-taskmanager"].get("ports")


def test_services_wait_for_what_they_need(services: dict[str, Any]) -> None:
    needs = services["harness"]["depends_on"]
    assert {name: need["condition"] for name, need in needs.items()} == {
        "kafka": "service_healthy", "spark-worker": "service_healthy", "flink-taskmanager": "service_healthy"}
    assert services["spark-worker"]["depends_on"]["spark-master"]["condition"] == "service_healthy"
    assert services["flink-taskmanager"]["depends_on"]["flink-jobmanager"]["condition"] == "service_healthy"


# ---------------------------------------------------------------------------------- versions and images
def lock_version(package: str) -> str:
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        name, _, version = line.partition("==")  # "name==version \" then its "--hash=..." lines
        if name.strip().lower() == package:
            return version.split()[0]
    raise AssertionError(f"{package} is not in requirements.lock")


def test_kafka_image_is_the_harness_kafka_version(services: dict[str, Any]) -> None:
    assert services["kafka"]["image"] == f"apache/kafka:{versions.KAFKA}"


def test_spark_images_carry_the_harness_spark_version(services: dict[str, Any]) -> None:
    assert lock_version("pyspark") == versions.SPARK
    for name in ("spark-master", "spark-worker"):
        service = services[name]
        assert service["image"] == f"streambench/spark:{versions.SPARK}"
        assert service["build"]["dockerfile"] == "docker/harness.Dockerfile"
        assert service["build"]["target"] == "spark"
        assert service["build"]["args"]["SPARK_VERSION"] == versions.SPARK
    assert services["harness"]["build"]["args"]["SPARK_VERSION"] == versions.SPARK
    dockerfile = (ROOT / "docker" / "harness.Dockerfile").read_text()
    assert f"ARG SPARK_VERSION={versions.SPARK}\n" in dockerfile
    assert re.search(r"^FROM \S+ AS spark$", dockerfile, re.M) and re.search(r"^FROM spark AS harness$", dockerfile, re.M)


def test_flink_images_carry_the_harness_flink_and_connector_versions(services: dict[str, Any]) -> None:
    assert lock_version("apache-flink") == versions.FLINK
    connector = f"flink-sql-connector-kafka-{versions.FLINK_KAFKA_CONNECTOR}.jar"
    sha256 = jvm.read_lock()[f"flink-kafka/{connector}"]
    dockerfile = (ROOT / "docker" / "flink.Dockerfile").read_text()
    for arg, value in (("FLINK_VERSION", versions.FLINK), ("KAFKA_CONNECTOR_VERSION", versions.FLINK_KAFKA_CONNECTOR),
                       ("KAFKA_CONNECTOR_SHA256", sha256)):
        assert f"ARG {arg}={value}\n" in dockerfile
        for name in ("flink-jobmanager", "flink-taskmanager"):
            assert services[name]["build"]["args"][arg] == value, (name, arg)
    for name in ("flink-jobmanager", "flink-taskmanager"):
        assert services[name]["image"] == f"streambench/flink:{versions.FLINK}"
        assert services[name]["build"]["dockerfile"] == "docker/flink.Dockerfile"


def test_every_build_names_an_existing_dockerfile_with_its_ignore_file(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if "build" in service:
            dockerfile = ROOT / service["build"]["context"] / service["build"]["dockerfile"]
            assert dockerfile.is_file(), name
            # BuildKit's per-Dockerfile ignore file keeps .venv, .cache and results out of the build context
            assert dockerfile.with_name(dockerfile.name + ".dockerignore").is_file(), name


# ------------------------------------------------------------------ the cluster configuration example
def split_host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def flink_properties(service: dict[str, Any]) -> dict[str, str]:
    lines = service["environment"]["FLINK_PROPERTIES"].splitlines()
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines if line.strip())}


def test_example_uses_external_kafka_at_the_compose_broker(example: Any, services: dict[str, Any]) -> None:
    assert example.kafka.mode == "external"
    host, port = split_host_port(example.kafka.bootstrap)
    kafka = services[host]
    assert kafka["hostname"] == host
    assert f"PLAINTEXT://{host}:{port}" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert f"PLAINTEXT://:{port}" in kafka["environment"]["KAFKA_LISTENERS"].split(",")
    assert example.kafka.replication_factor == 1  # one broker in the compose file


def test_example_spark_master_is_the_compose_master(example: Any, services: dict[str, Any]) -> None:
    [spark] = [entry for entry in example.engines if entry.engine == "spark"]
    host, port = split_host_port(spark.settings["master"].removeprefix("spark://"))
    master = services[host]
    assert master["hostname"] == host
    assert f"--host {host} --port {port} " in master["command"][-1]
    assert f"spark://{host}:{port}" in services["spark-worker"]["command"][-1]
    # spark.cores.max is the parallelism: one worker holds all of it
    assert int(services["spark-worker"]["environment"]["SPARK_WORKER_CORES"]) >= example.job_parallelism
    # executors reach the driver in the harness container by its name
    assert spark.settings["conf"]["spark.driver.host"] == services["harness"]["hostname"] == "harness"


def test_example_flink_jobmanager_is_the_compose_rest_endpoint(example: Any, services: dict[str, Any]) -> None:
    [flink] = [entry for entry in example.engines if entry.engine == "flink"]
    host, port = split_host_port(flink.settings["jobmanager"])
    jobmanager = services[host]
    assert jobmanager["hostname"] == host
    properties = flink_properties(jobmanager)
    assert properties["rest.port"] == str(port) and properties["rest.address"] == host
    assert properties["jobmanager.rpc.address"] == host
    assert f"127.0.0.1:{port}:{port}" in jobmanager["ports"]
    assert flink_properties(services["flink-taskmanager"]) == properties
    # every task of the job needs a slot: the example's parallelism fits the one TaskManager started by default
    assert int(properties["taskmanager.numberOfTaskSlots"]) >= example.job_parallelism


def test_state_is_shared_between_driver_and_executors(services: dict[str, Any]) -> None:
    """Checkpoints are written by Spark executors and Flink TaskManagers into the run directory the harness
    names: every such service mounts ./results at the same path."""
    for name in ("harness", "spark-worker", "flink-jobmanager", "flink-taskmanager"):
        mounts = [(v["source"], v["target"]) for v in services[name]["volumes"] if isinstance(v, dict)]
        assert ("./results", "/app/results") in mounts, name
    assert "/app/results" in services["harness"]["command"]


def test_the_harness_runs_the_example(services: dict[str, Any]) -> None:
    command = services["harness"]["command"]
    assert command[:3] == ["bench", "run", "scenarios/cluster-example.yaml"]
