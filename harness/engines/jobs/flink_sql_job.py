"""The windowed click count as a Flink Table API / SQL job: ``python -m harness.engines.jobs.flink_sql_job --spec F``.

Every operator runs in the JVM (no Python function on the hot path); Python only builds the plan and waits.

How it realises the contract of :mod:`harness.workload`
    - Source: the Kafka SQL connector on the input topic from the earliest offsets (the harness creates it fresh
      and empty), JSON format with the fields user, action, ts, seq (``pad`` and other fields are ignored). Event
      time is ``TO_TIMESTAMP_LTZ(ts, 3)``; the session time zone is UTC so window bounds are epoch-aligned and
      convert back to epoch milliseconds exactly.
    - Watermark: ``WATERMARK FOR et AS et - INTERVAL D``, pushed into the Kafka source, so each partition has its
      own watermark and the job's watermark is the minimum over partitions (Spark: maximum minus D, global).
      ``table.exec.source.idle-timeout`` marks a partition without data idle so it cannot hold the watermark
      back forever. The watermark is emitted every ``pipeline.auto-watermark-interval``.
    - Windows: the ``TUMBLE`` / ``HOP`` window table-valued functions grouped by window_start, window_end, user
      with ``COUNT(*)``. A window fires when the watermark reaches ``end − 1 ms``; rows arriving for a window
      that already fired are dropped (late).
    - Output: ``{"user", "window_start", "window_end", "count"}`` (:func:`~harness.workload.result_record`) with
      both bounds as epoch-millisecond BIGINTs, key = user (raw UTF-8), written by the Kafka sink with the
      configured delivery guarantee: ``at-least-once`` (flushed continuously and on checkpoints) or
      ``exactly-once`` (Kafka transactions committed when a checkpoint completes: results become visible only
      then, so result latency includes up to one checkpoint interval).
    - State: checkpoints (if enabled) to ``<state_dir>/flink-checkpoints``. Restarts: none by default (a failure
      ends the job, and the harness reports it instead of measuring a recovering job); on a session cluster the
      engine's ``config`` may set :data:`CLUSTER_RESTART_STRATEGY`, so the loss of a TaskManager (a ``kill-worker``
      fault) is survived from the latest checkpoint, as Spark re-runs the tasks of a lost executor. Not the
      default: with it, a job whose ``flink run -sae`` client was killed was not cancelled (the integration test
      of jobs outliving bench failed), and a job that outlives bench holds the session's slots.

Side channel for the harness: the REST endpoint on ``--rest-port``, where the engine finds the job by its unique
``--job-name``. Locally the MiniCluster (REST, blob server) and PyFlink's Python worker pool listen on
``settings.bind_address`` (127.0.0.1 by default). The job runs through ``StreamExecutionEnvironment.execute``
(the SQL attached to it as a DataStream program): submitted with ``flink run -sae``, that path cancels the job
when the client is terminated.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness.engines.jobs import LOOPBACK, advertised_address
from harness.workload import JobSpec

CHECKPOINT_DIR = "flink-checkpoints"
"""Checkpoint directory inside the spec's ``state_dir``."""
CLUSTER_RESTART_STRATEGY = {
    "restart-strategy.type": "fixed-delay",
    "restart-strategy.fixed-delay.attempts": "10",
    "restart-strategy.fixed-delay.delay": "1 s",
}
"""The restart strategy for ``kill-worker`` runs (``settings.config``): a job on a session cluster restarts after a failure, from its latest completed checkpoint, at most 10 times,
1 s apart (the keys of Flink 2.2's ``RestartStrategyOptions``). Waiting for slots after the loss of a TaskManager
is not an attempt: the restarted tasks wait for a TaskManager up to ``slot.request.timeout`` (5 min)."""
EPOCH = "TIMESTAMP '1970-01-01 00:00:00'"


def sql_interval(millis: int) -> str:
    """An exact SQL interval literal for ``millis`` (``INTERVAL '0 00:00:02.500' DAY TO SECOND(3)``).
    ``INTERVAL 'n' SECOND`` would cut milliseconds and is limited to 2 digits of seconds."""
    if millis < 0:
        raise ValueError(f"interval must not be negative (got {millis} ms)")
    seconds, ms = divmod(millis, 1000)
    minutes, s = divmod(seconds, 60)
    hours, m = divmod(minutes, 60)
    days, h = divmod(hours, 24)
    precision = max(1, len(str(days)))
    return f"INTERVAL '{days} {h:02d}:{m:02d}:{s:02d}.{ms:03d}' DAY({precision}) TO SECOND(3)"


def sql_epoch_ms(column: str) -> str:
    """Epoch milliseconds of a TIMESTAMP(3) column in UTC, exactly. Flink has no TIMESTAMP → epoch-ms cast, and
    ``TIMESTAMPDIFF`` returns INT (milliseconds overflow), so: whole minutes as BIGINT, then seconds and ms."""
    return (
        f"(CAST(TIMESTAMPDIFF(MINUTE, {EPOCH}, {column}) AS BIGINT) * 60000"
        f" + EXTRACT(SECOND FROM {column}) * 1000 + EXTRACT(MILLISECOND FROM {column}))"
    )


def job_configuration(spec: JobSpec, *, rest_port: int, connector_jar: str, job_name: str) -> dict[str, str]:
    """Flink configuration shared by both Flink jobs: parallelism, REST endpoint, checkpointing, connector jar."""
    settings = spec.settings
    config = {
        "pipeline.name": job_name,
        "parallelism.default": str(spec.parallelism),
        "pipeline.jars": Path(connector_jar).resolve().as_uri(),
        "pipeline.auto-watermark-interval": f"{settings['watermark_interval']} ms",
        "table.local-time-zone": "UTC",
    }
    # a failed task ends the job: the harness reports the failure rather than measuring a recovery (a kill-worker
    # scenario sets CLUSTER_RESTART_STRATEGY through the engine's config)
    config["restart-strategy.type"] = "none"
    if rest_port:  # local MiniCluster: its REST endpoint on a port chosen by the engine
        config.update(local_addresses(settings.get("bind_address") or LOOPBACK, rest_port))
        # the REST API serves metrics cached for this long (default 10 s): 1 s gives a per-second series
        config["metrics.fetcher.update-interval"] = "1000"
    interval = settings.get("checkpoint_interval")
    if interval:
        exactly_once = settings["delivery"] == "exactly-once"
        config.update(
            {
                "execution.checkpointing.interval": f"{interval} ms",
                "execution.checkpointing.mode": "EXACTLY_ONCE" if exactly_once else "AT_LEAST_ONCE",
                "execution.checkpointing.dir": (Path(spec.state_dir) / CHECKPOINT_DIR).resolve().as_uri(),
                # kept when the job ends, so a restarted job can resume from the latest one (kill-engine fault)
                "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
            }
        )
    if settings.get("recovery_path"):  # a restart after a kill-engine fault: resume from this checkpoint
        config["execution.state-recovery.path"] = Path(settings["recovery_path"]).resolve().as_uri()
    config.update({key: str(value) for key, value in settings.get("config", {}).items()})
    return config


def local_addresses(bind_address: str, rest_port: int) -> dict[str, str]:
    """Where the local MiniCluster listens: REST endpoint and blob server (``jobmanager.bind-host``; Flink binds
    it to every interface otherwise) on ``bind_address``, and the addresses it gives its own clients."""
    advertised = advertised_address(bind_address)
    return {
        "rest.port": str(rest_port),
        "rest.bind-port": str(rest_port),
        "rest.address": advertised,
        "rest.bind-address": bind_address,
        "jobmanager.bind-host": bind_address,
        "jobmanager.rpc.address": advertised,
        "taskmanager.bind-host": bind_address,
        "taskmanager.host": advertised,
    }


def serve_python_workers(bind_address: str) -> None:
    """Make PyFlink's loopback worker pool (the gRPC service through which a local MiniCluster runs Python
    functions in this process) listen on ``bind_address`` instead of every interface (``[::]:0``, hard-coded in
    ``BeamFnLoopbackWorkerPoolServicer.start``). Its ``start`` is replaced by one that starts a single server on
    ``bind_address`` (PyFlink calls ``start`` for each environment, and the singleton's ``__init__`` forgets the
    address every time). Written against PyFlink 2.2.1; the loopback integration test checks it still holds."""
    import atexit

    import grpc
    from apache_beam.portability.api import beam_fn_api_pb2_grpc
    from apache_beam.utils import thread_pool_executor
    from pyflink.fn_execution.beam.beam_worker_pool_service import BeamFnLoopbackWorkerPoolServicer

    started: list[str] = []

    def start(pool: Any) -> str:
        if not started:
            server = grpc.server(thread_pool_executor.shared_unbounded_instance())
            port = server.add_insecure_port(f"{bind_address}:0")
            beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
            server.start()
            atexit.register(server.stop, 1)
            started.append(f"{advertised_address(bind_address)}:{port}")
        pool._worker_address = started[0]
        return started[0]

    BeamFnLoopbackWorkerPoolServicer.start = start


def source_options(spec: JobSpec, job_name: str) -> dict[str, str]:
    return {
        "connector": "kafka",
        "topic": spec.input_topic,
        "properties.bootstrap.servers": spec.bootstrap,
        "properties.group.id": job_name,
        "scan.startup.mode": "earliest-offset",
        "format": "json",
        "json.fail-on-missing-field": "false",
        "json.ignore-parse-errors": "false",
    }


def sink_options(spec: JobSpec, job_name: str) -> dict[str, str]:
    options = {
        "connector": "kafka",
        "topic": spec.output_topic,
        "properties.bootstrap.servers": spec.bootstrap,
        "key.format": "raw",
        "key.fields": "user",
        "value.format": "json",
        "value.fields-include": "ALL",
        "sink.delivery-guarantee": spec.settings["delivery"],
    }
    if spec.settings["delivery"] == "exactly-once":
        options.update(transactional_options(job_name))
    return options


def transactional_options(job_name: str) -> dict[str, str]:
    """Kafka transactions: an id prefix unique to this run (a stale prefix would fence or abort another run's
    transactions), and a timeout under the broker's ``transaction.max.timeout.ms`` (15 min by default; Flink's
    default of 1 h is refused)."""
    return {"sink.transactional-id-prefix": job_name, "properties.transaction.timeout.ms": "600000"}


def _with(options: dict[str, str]) -> str:
    return ",\n  ".join(f"'{key}' = '{value}'" for key, value in options.items())


def statements(spec: JobSpec, job_name: str) -> tuple[str, str, str]:
    """``CREATE TABLE`` for source and sink, and the ``INSERT`` of the windowed count."""
    windows = spec.windows
    source = f"""CREATE TABLE events (
  `user` STRING,
  `action` STRING,
  `ts` BIGINT,
  `seq` BIGINT,
  et AS TO_TIMESTAMP_LTZ(`ts`, 3),
  WATERMARK FOR et AS et - {sql_interval(windows.watermark_delay_ms)}
) WITH (
  {_with(source_options(spec, job_name))}
)"""
    sink = f"""CREATE TABLE results (
  `user` STRING,
  window_start BIGINT,
  window_end BIGINT,
  `count` BIGINT
) WITH (
  {_with(sink_options(spec, job_name))}
)"""
    if windows.slide_ms == windows.size_ms:
        window = f"TUMBLE(TABLE events, DESCRIPTOR(et), {sql_interval(windows.size_ms)})"
    else:
        window = f"HOP(TABLE events, DESCRIPTOR(et), {sql_interval(windows.slide_ms)}, {sql_interval(windows.size_ms)})"
    insert = f"""INSERT INTO results
SELECT `user`, {sql_epoch_ms('window_start')}, {sql_epoch_ms('window_end')}, COUNT(*)
FROM TABLE({window})
GROUP BY window_start, window_end, `user`"""
    return source, sink, insert


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, type=Path, help="JobSpec JSON file")
    parser.add_argument("--connector-jar", required=True, help="flink-sql-connector-kafka jar")
    parser.add_argument("--job-name", required=True, help="unique per run: job name, group id, transaction prefix")
    parser.add_argument("--rest-port", type=int, default=0, help="local MiniCluster REST port (0: on a cluster)")
    return parser.parse_args(argv)


def configuration(values: dict[str, str]) -> Any:
    from pyflink.common import Configuration

    config = Configuration()
    for key, value in values.items():
        config.set_string(key, value)
    return config


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    spec = JobSpec.from_json(json.loads(args.spec.read_text()))
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    config = configuration(
        job_configuration(spec, rest_port=args.rest_port, connector_jar=args.connector_jar, job_name=args.job_name)
    )
    if args.rest_port:
        serve_python_workers(spec.settings.get("bind_address") or LOOPBACK)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    environment = EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(config).build()
    table_env = StreamTableEnvironment.create(env, environment_settings=environment)
    table_env.get_config().set("table.local-time-zone", "UTC")
    table_env.get_config().set("table.exec.source.idle-timeout", f"{spec.settings['idle_timeout']} ms")
    source, sink, insert = statements(spec, args.job_name)
    print(insert, flush=True)
    table_env.execute_sql(source)
    table_env.execute_sql(sink)
    statement_set = table_env.create_statement_set()
    statement_set.add_insert_sql(insert)
    statement_set.attach_as_datastream()
    env.execute(args.job_name)  # runs until cancelled or failed
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
