"""The windowed click count as a Spark Structured Streaming job: ``python -m harness.engines.jobs.spark_job --spec F``.

How it realises the contract of :mod:`harness.workload`
    - Source: the Kafka input topic from the earliest offsets (the harness creates it fresh and empty). The value
      is parsed by ``from_json`` with an explicit schema (user, action, ts, seq; ``pad`` is ignored) and event
      time is ``timestamp_millis(ts)``; everything runs in the JVM, no Python UDF.
    - Windows: ``groupBy(window(event_time, W[, S]), user).count()``. Spark aligns windows to the epoch, so they
      are the ``[start, end)`` windows of :class:`~harness.workload.Windows`, tumbling when S = W.
    - Watermark: ``withWatermark(event_time, D)``. Spark's watermark is the largest event time seen in *any*
      partition minus D (not the minimum over partitions as in Flink), and it moves only between micro-batches:
      a batch's rows advance it for the next batch. A window is final once ``watermark >= end``; its rows that
      arrive after that are dropped (late).
    - Output: ``{"user", "window_start", "window_end", "count"}`` with both bounds as epoch milliseconds
      (:func:`~harness.workload.result_record`), key = user, written by the Kafka sink (at-least-once).
      ``append`` (the default) writes each pair once, in the first micro-batch after its window became final —
      with no new data Spark still runs that batch (a "no-data batch") once the watermark has moved; ``update``
      writes a pair's count again in every micro-batch that changed it, the last one wins.
    - State and offsets: checkpointed every micro-batch to ``<state_dir>/spark-checkpoint``.

Deviations from the contract: none in what is counted. The moment a window closes differs from Flink by design:
watermark ≥ end (Flink: ≥ end − 1 ms), and only at the next micro-batch boundary.

Side channels for the harness: one ``StreamingQueryProgress`` per micro-batch as a JSON line in the progress file
(``settings.progress_file``), and the line :data:`READY_MARKER` on stdout once the query runs, has resolved its
starting offsets and finished its first trigger.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from harness.engines.jobs import LOOPBACK, WILDCARD_ADDRESSES
from harness.units import parse_duration_ms
from harness.workload import JobSpec

READY_MARKER = "BENCH_READY"
"""Printed on a line of its own when the query reads the input topic; the engine waits for it."""
PROGRESS_FILE = "spark-progress.jsonl"
"""Default progress file name (in the run directory): one StreamingQueryProgress JSON per line."""
CHECKPOINT_DIR = "spark-checkpoint"
"""Checkpoint directory inside the spec's ``state_dir``."""

LOG4J_FILE = "spark-log4j2.properties"
"""The job's log configuration, written beside the spec (and shipped to executors with ``--files`` on a cluster)."""
LOG4J2 = """\
# Written by harness.engines.jobs.spark_job: WARN and above on stderr (into the run's spark.log).
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss.SSS} %p %c{1}: %m%n%ex
# harmless on every start: no native Hadoop library on this platform
logger.nativecode.name = org.apache.hadoop.util.NativeCodeLoader
logger.nativecode.level = error
"""


def build_query(spark: Any, spec: JobSpec, checkpoint: Path) -> Any:
    """The streaming query of the windowed count, not yet started."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    settings = spec.settings
    schema = StructType(
        [
            StructField("user", StringType()),
            StructField("action", StringType()),
            StructField("ts", LongType()),
            StructField("seq", LongType()),
        ]
    )
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", spec.bootstrap)
        .option("subscribe", spec.input_topic)
        .option("startingOffsets", "earliest")
    )
    if settings.get("max_offsets_per_trigger"):
        reader = reader.option("maxOffsetsPerTrigger", str(settings["max_offsets_per_trigger"]))
    events = (
        reader.load()
        .select(F.from_json(F.col("value").cast("string"), schema).alias("e"))
        .select("e.user", F.timestamp_millis(F.col("e.ts")).alias("event_time"))
        .withWatermark("event_time", f"{spec.watermark_delay_ms} milliseconds")
    )
    size = f"{spec.window_size_ms} milliseconds"
    if spec.window_slide_ms == spec.window_size_ms:
        window = F.window("event_time", size)
    else:
        window = F.window("event_time", size, f"{spec.window_slide_ms} milliseconds")
    counts = events.groupBy(window.alias("window"), F.col("user")).count()
    records = counts.select(
        F.col("user").alias("key"),
        F.to_json(
            F.struct(
                F.col("user"),
                F.unix_millis(F.col("window.start")).alias("window_start"),
                F.unix_millis(F.col("window.end")).alias("window_end"),
                F.col("count"),
            )
        ).alias("value"),
    )
    trigger_ms = parse_duration_ms(settings.get("trigger", "0s"))
    return (
        records.writeStream.format("kafka")
        .queryName("windowed-count")
        .option("kafka.bootstrap.servers", spec.bootstrap)
        .option("topic", spec.output_topic)
        .option("checkpointLocation", str(checkpoint))
        .outputMode(settings.get("output_mode", "append"))
        .trigger(processingTime=f"{trigger_ms} milliseconds")
    )


def spark_conf(spec: JobSpec, log4j_config: Path) -> dict[str, str]:
    """Every Spark configuration the job sets (also printed to the log, so a run shows what it used)."""
    settings = spec.settings
    master = settings.get("master") or f"local[{spec.parallelism}]"
    standalone = master.startswith("spark://")
    java_options = f"-Xss32m -Dlog4j2.configurationFile=file:{log4j_config}"
    # executors on a cluster find the file shipped with --files in their working directory, not at our path
    executor_log4j = log4j_config.name if standalone else f"file:{log4j_config}"
    conf = {
        "spark.master": master,
        "spark.app.name": "streambench-windowed-count",
        "spark.jars": ",".join(settings.get("jars", [])),
        "spark.driver.memory": settings.get("driver_memory", "2g"),
        # -Xss: stopping a streaming query could overflow the default thread stack (a harmless but alarming
        # StackOverflowError in the log); a bigger stack only reserves address space
        "spark.driver.extraJavaOptions": java_options,
        "spark.executor.extraJavaOptions": f"-Xss32m -Dlog4j2.configurationFile={executor_log4j}",
        "spark.sql.shuffle.partitions": str(spec.parallelism),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "true" if settings.get("ui") else "false",
        "spark.ui.showConsoleProgress": "false",  # a progress bar of carriage returns in the log
        "spark.sql.streaming.stateStore.providerClass": _STATE_STORES[settings.get("state_store", "hdfs")],
    }
    conf.update(_driver_address(settings.get("bind_address") or LOOPBACK))
    if standalone:
        # a standalone application takes every core of the cluster unless capped: run with the scenario's
        # parallelism, as Flink does with its slots
        conf["spark.cores.max"] = str(spec.parallelism)
    conf.update({str(key): str(value) for key, value in (settings.get("conf") or {}).items()})
    return conf


def _driver_address(bind_address: str) -> dict[str, str]:
    """Where the driver's RPC endpoint and block manager listen, and the address it gives executors: the bind
    address itself, or Spark's own choice of this host's name when it binds every interface."""
    conf = {"spark.driver.bindAddress": bind_address}
    if bind_address not in WILDCARD_ADDRESSES:
        conf["spark.driver.host"] = bind_address
    return conf


_STATE_STORES = {
    "hdfs": "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider",
    "rocksdb": "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
}


def _progress_listener(path: Path) -> Any:
    from pyspark.sql.streaming import StreamingQueryListener

    class ProgressWriter(StreamingQueryListener):
        """Appends every StreamingQueryProgress (one per micro-batch, plus idle reports) as one JSON line."""

        def __init__(self) -> None:
            self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the job's lifetime

        def onQueryStarted(self, event: Any) -> None:
            pass

        def onQueryProgress(self, event: Any) -> None:
            self.file.write(event.progress.json + "\n")
            self.file.flush()

        def onQueryIdle(self, event: Any) -> None:
            pass

        def onQueryTerminated(self, event: Any) -> None:
            self.file.flush()

    return ProgressWriter()


def _offsets_resolved(query: Any, checkpoint: Path) -> bool:
    """True once the first trigger is over: the Kafka source has written its starting offsets into the checkpoint
    and the query is waiting for data (or has run a batch)."""
    if not (checkpoint / "sources" / "0" / "0").exists():
        return False
    status = query.status
    return query.lastProgress is not None or (
        not status["isTriggerActive"] and status["message"] in ("Waiting for data to arrive", "Waiting for next trigger")
    )


def run(spec_path: Path) -> int:
    spec = JobSpec.from_json(json.loads(spec_path.read_text()))
    state_dir = Path(spec.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = state_dir / CHECKPOINT_DIR
    log4j_config = spec_path.parent / LOG4J_FILE
    log4j_config.write_text(LOG4J2)
    progress_path = Path(spec.settings.get("progress_file") or spec_path.parent / PROGRESS_FILE)

    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        # the JVM got the same TERM: the py4j call in flight fails next, and py4j would log it as an error
        logging.disable(logging.CRITICAL)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    from pyspark.errors import StreamingQueryException
    from pyspark.sql import SparkSession

    try:
        conf = spark_conf(spec, log4j_config)
        print("spark conf: " + json.dumps(conf, sort_keys=True), flush=True)
        builder = SparkSession.builder
        for key, value in conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
        spark.streams.addListener(_progress_listener(progress_path))
        query = build_query(spark, spec, checkpoint).start()
        print(f"query started: id={query.id} checkpoint={checkpoint}", flush=True)
        ready = False
        while not stopping:
            if not ready and _offsets_resolved(query, checkpoint):
                ready = True
                print(READY_MARKER, flush=True)
            if query.awaitTermination(0.2 if not ready else 1.0):
                print("query terminated", flush=True)
                return 0
    except StreamingQueryException as exc:
        if not stopping:
            print(f"query failed: {exc}", flush=True)
            return 1
    except Exception:
        if not stopping:
            raise
    _stop_quietly()
    return 0


def _stop_quietly() -> None:
    """On TERM: leave the shutdown to the JVM. The guard TERMs the whole process group, so the JVM is already
    running its shutdown hooks (which stop the SparkContext and with it the query); calling into it now would
    only race them and fill the log with py4j tracebacks. Spark's at-least-once Kafka sink needs no commit."""
    print("stopping on TERM", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, required=True, help="JobSpec JSON written by the Spark engine")
    args = parser.parse_args(argv)
    return run(args.spec)


if __name__ == "__main__":
    sys.exit(main())
