"""The windowed click count with Flink's DataStream API and Python functions on the hot path:
``python -m harness.engines.jobs.flink_python_job --spec F``.

It computes exactly what :mod:`harness.engines.jobs.flink_sql_job` computes, but every record crosses into a Python
worker: the report compares the two to show what Python functions cost.

How it realises the contract of :mod:`harness.workload`
    - Source: ``KafkaSource`` with ``SimpleStringSchema`` from the earliest offsets; a Python ``map`` parses the
      JSON into ``(user, ts)`` (``action``, ``seq``, ``pad`` are not needed for the count).
    - Watermark: ``WatermarkStrategy.for_bounded_out_of_orderness(D)`` with a Python ``TimestampAssigner`` (``ts``)
      and ``with_idleness``. Flink's bounded out-of-orderness generator emits max ts − D − 1 ms, so a window closes
      when max ts ≥ end + D (the SQL job: ≥ end + D − 1 ms). **Deviation**: a Python timestamp assigner can only
      follow the source (PyFlink's ``from_source`` ignores it), so the watermark is generated per parallel source
      subtask, not per Kafka partition; with fewer subtasks than partitions, a partition read behind the others
      in the same subtask may have records dropped as late. Run with parallelism = partitions to avoid it.
    - Windows: ``key_by(user)`` then ``TumblingEventTimeWindows`` / ``SlidingEventTimeWindows`` (epoch-aligned,
      ``[start, end)``), a Python ``AggregateFunction`` counting and a Python ``ProcessWindowFunction`` writing
      the result. A window fires when the watermark reaches ``end − 1 ms``; records for a fired window are dropped.
    - Output: the JSON of :func:`~harness.workload.result_record` written by ``KafkaSink`` with the configured
      delivery guarantee (see the SQL job). Records carry no key (PyFlink's serialisation schemas cannot pick
      one field as the key); the collector reads values only.

Side channels, addresses and submission as in the SQL job: the REST endpoint on ``--rest-port``, the job found by
its ``--job-name``, run through the blocking ``execute`` (cancelled with its ``flink run -sae`` client). The Python
functions run in this process through PyFlink's loopback worker pool, bound to ``settings.bind_address``.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable

from harness.engines.jobs import LOOPBACK
from harness.engines.jobs.flink_sql_job import (
    configuration,
    job_configuration,
    parse_args,
    serve_python_workers,
    transactional_options,
)
from harness.workload import JobSpec, result_record


def python_configuration(spec: JobSpec) -> dict[str, str]:
    settings = spec.settings
    return {
        "python.executable": settings["python_executable"],
        "python.client.executable": settings["python_executable"],
        "python.execution-mode": settings["python_execution_mode"],
        "python.fn-execution.bundle.size": str(settings["python_bundle_size"]),
        "python.fn-execution.bundle.time": str(settings["python_bundle_time"]),
    }


def parse_event(value: str) -> tuple[str, int]:
    """One input record → ``(user, ts)``."""
    event = json.loads(value)
    return event["user"], int(event["ts"])


def build(env: Any, spec: JobSpec, job_name: str) -> None:
    """Add the windowed count to ``env``: Kafka source → parse (Python) → event time and watermarks (Python
    assigner) → per-user windows → count and emit (Python) → Kafka sink."""
    from pyflink.common import Types, WatermarkStrategy

    event_time, count, emit = python_functions()
    (
        env.from_source(kafka_source(spec, job_name), WatermarkStrategy.no_watermarks(), "kafka-input")
        .map(parse_event, output_type=Types.TUPLE([Types.STRING(), Types.LONG()]))
        .name("parse-json")
        .assign_timestamps_and_watermarks(watermark_strategy(spec, event_time))
        .key_by(lambda event: event[0], key_type=Types.STRING())
        .window(window_assigner(spec))
        .aggregate(count, emit, accumulator_type=Types.LONG(), output_type=Types.STRING())
        .name("count-per-window")
        .sink_to(kafka_sink(spec, job_name))
        .name("kafka-results")
    )


def python_functions() -> tuple[Any, Any, Any]:
    """The Python functions on the hot path besides :func:`parse_event`: the timestamp assigner (``ts``), the
    count (an ``AggregateFunction``) and the window function writing each result record. Defined here, not at
    module level, so that the module imports without PyFlink."""
    from pyflink.common.watermark_strategy import TimestampAssigner
    from pyflink.datastream.functions import AggregateFunction, ProcessWindowFunction

    class EventTime(TimestampAssigner):
        def extract_timestamp(self, value: tuple[str, int], record_timestamp: int) -> int:
            return value[1]

    class Count(AggregateFunction):
        def create_accumulator(self) -> int:
            return 0

        def add(self, value: tuple[str, int], accumulator: int) -> int:
            return accumulator + 1

        def get_result(self, accumulator: int) -> int:
            return accumulator

        def merge(self, a: int, b: int) -> int:
            return a + b

    class Emit(ProcessWindowFunction):
        def process(self, key: str, context: ProcessWindowFunction.Context, counts: Iterable[int]) -> Iterable[str]:
            window = context.window()
            for count in counts:
                yield json.dumps(result_record(key, window.start, window.end, count), separators=(",", ":"))

    return EventTime(), Count(), Emit()


def kafka_source(spec: JobSpec, job_name: str) -> Any:
    """The input topic from its earliest offsets, as strings; the consumer group is the job's name."""
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer, KafkaSource

    return (
        KafkaSource.builder()
        .set_bootstrap_servers(spec.bootstrap)
        .set_topics(spec.input_topic)
        .set_group_id(job_name)
        .set_starting_offsets(KafkaOffsetsInitializer.earliest())
        .set_value_only_deserializer(SimpleStringSchema())
        .build()
    )


def watermark_strategy(spec: JobSpec, event_time: Any) -> Any:
    """Bounded out-of-orderness D with ``event_time`` as the timestamp assigner; idle after ``idle_timeout``."""
    from pyflink.common import Duration, WatermarkStrategy

    # with_idleness before with_timestamp_assigner: PyFlink's with_idleness returns a new strategy that has
    # lost the Python assigner, and the watermarks would silently follow the Kafka record timestamps
    return (
        WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(spec.windows.watermark_delay_ms))
        .with_idleness(Duration.of_millis(spec.settings["idle_timeout"]))
        .with_timestamp_assigner(event_time)
    )


def window_assigner(spec: JobSpec) -> Any:
    """Tumbling windows when the slide is the size, else sliding ones (both epoch-aligned)."""
    from pyflink.common.time import Time
    from pyflink.datastream.window import SlidingEventTimeWindows, TumblingEventTimeWindows

    windows = spec.windows
    if windows.slide_ms == windows.size_ms:
        return TumblingEventTimeWindows.of(Time.milliseconds(windows.size_ms))
    return SlidingEventTimeWindows.of(Time.milliseconds(windows.size_ms), Time.milliseconds(windows.slide_ms))


def kafka_sink(spec: JobSpec, job_name: str) -> Any:
    """The output topic, values only, with the configured delivery guarantee (exactly-once: in transactions
    named after the job, as the SQL job's)."""
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream.connectors.base import DeliveryGuarantee
    from pyflink.datastream.connectors.kafka import KafkaRecordSerializationSchema, KafkaSink

    sink_builder = (
        KafkaSink.builder()
        .set_bootstrap_servers(spec.bootstrap)
        .set_record_serializer(
            KafkaRecordSerializationSchema.builder()
            .set_topic(spec.output_topic)
            .set_value_serialization_schema(SimpleStringSchema())
            .build()
        )
    )
    if spec.settings["delivery"] == "exactly-once":
        options = transactional_options(job_name)
        sink_builder = sink_builder.set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE)
        sink_builder = sink_builder.set_transactional_id_prefix(options["sink.transactional-id-prefix"])
        sink_builder = sink_builder.set_property("transaction.timeout.ms", options["properties.transaction.timeout.ms"])
    else:
        sink_builder = sink_builder.set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE)
    return sink_builder.build()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    spec = JobSpec.from_json(json.loads(args.spec.read_text()))
    from pyflink.datastream import StreamExecutionEnvironment

    values = job_configuration(spec, rest_port=args.rest_port, connector_jar=args.connector_jar, job_name=args.job_name)
    values.update(python_configuration(spec))
    if args.rest_port:
        serve_python_workers(spec.settings.get("bind_address") or LOOPBACK)
    env = StreamExecutionEnvironment.get_execution_environment(configuration(values))
    build(env, spec, args.job_name)
    env.execute(args.job_name)  # runs until cancelled or failed
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
