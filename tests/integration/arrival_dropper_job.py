"""A test engine's job whose drops are known: it reads the whole input topic, drops exactly the events its stated
watermark rule makes late given the order the broker appended them in (and, with ``--one-more``, one event more),
counts the rest per (tumbling window, user) and writes one result per pair, then exits.

Written apart from :mod:`harness.analysis.arrival` on purpose — a plain loop over the records — so the test compares two
readings of the same rule, not the judge with itself::

    python tests/integration/arrival_dropper_job.py BOOTSTRAP INPUT OUTPUT --rule per-partition \\
        --window-ms 2000 --delay-ms 1000 [--one-more]

``per-partition``: an event is dropped when its ts is below the largest ts before it in its own partition − D.
``global``: below the largest ts appended (broker LogAppendTime) in an earlier millisecond on any partition − D.
Records of the end-of-run user are read to the end of every partition and never counted.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

FLUSH_USER = "__flush__"


def read_all(bootstrap: str, topic: str) -> list[tuple[int, int, int, str, int]]:
    """(partition, offset, append ms, user, ts) of every record, up to each partition's end offset now."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "arrival-dropper", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    rows, done = [], {p for p in partitions if ends[p] == 0}
    while len(done) < len(partitions):
        for message in consumer.consume(1_000, timeout=1.0):
            if message.error() is not None:
                if message.error().code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(str(message.error()))
                continue
            event = json.loads(message.value())
            rows.append((message.partition(), message.offset(), message.timestamp()[1], event["user"], event["ts"]))
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
    consumer.close()
    return rows


def dropped(rows: list[tuple[int, int, int, str, int]], rule: str, delay_ms: int) -> set[tuple[int, int]]:
    """(partition, offset) of every event ``rule`` makes late."""
    out = set()
    if rule == "per-partition":
        newest: dict[int, int] = {}
        for partition, offset, _, _, ts in sorted(rows):
            if partition in newest and ts < newest[partition] - delay_ms:
                out.add((partition, offset))
            newest[partition] = max(newest.get(partition, ts), ts)
    else:
        for partition, offset, append, _, ts in rows:
            earlier = [t for _, _, a, _, t in rows if a < append]
            if earlier and ts < max(earlier) - delay_ms:
                out.add((partition, offset))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--rule", choices=["global", "per-partition"], required=True)
    parser.add_argument("--window-ms", type=int, required=True)
    parser.add_argument("--delay-ms", type=int, required=True)
    parser.add_argument("--one-more", action="store_true", help="drop the first event the rule keeps, too")
    args = parser.parse_args()

    rows = read_all(args.bootstrap, args.input)
    drop = dropped(rows, args.rule, args.delay_ms)
    if args.one_more:
        drop.add(next((p, o) for p, o, _, user, _ in sorted(rows) if user != FLUSH_USER and (p, o) not in drop))
    counts: Counter[tuple[int, str]] = Counter()
    for partition, offset, _, user, ts in rows:
        if user != FLUSH_USER and (partition, offset) not in drop:
            counts[(ts - ts % args.window_ms, user)] += 1
    producer = Producer({"bootstrap.servers": args.bootstrap})
    for (start, user), count in sorted(counts.items()):
        value = {"user": user, "window_start": start, "window_end": start + args.window_ms, "count": count}
        producer.produce(args.output, key=user.encode(), value=json.dumps(value, separators=(",", ":")).encode())
    if producer.flush(30) != 0:
        raise SystemExit("results not delivered")
    print(json.dumps({"dropped": sorted(drop)}))


if __name__ == "__main__":
    main()
