"""The output side of the calibration job (:mod:`harness.engines.jobs.python_count_job`): result records
encoded, the bad records of the ``malformed`` knob, and the writer that produces final windows to the output
topic, at once or held (``delay_ms``), falsified (``wrong_every``), or in Kafka transactions (``transactional``).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from harness.engines.jobs.python_count_state import FinalWindow
from harness.workload import result_record

MALFORMED_KINDS = (
    "not-json",
    "empty",
    "user-object",
    "window-start-string",
    "count-null",
    "count-float",
    "missing-field",
    "extra-field",
    "two-objects",
)
"""Bad result records the ``malformed`` knob can write. ``two-objects`` is ``{...},{...}``: one Kafka record
holding two JSON objects separated by a comma (a reader that joins values with commas sees two records)."""

_quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]  # json.dumps' own string encoder


def encode_result(user: str, start: int, end: int, count: int) -> bytes:
    """One result record value: :func:`~harness.workload.result_record` as compact JSON, byte for byte what
    ``json.dumps(result_record(...), separators=(",", ":"))`` writes (a unit test holds them equal) at a fraction
    of its cost: json.dumps took ~11 µs per record on the 2-core development machine, this ~1 µs."""
    return f'{{"user":{_quote(user)},"window_start":{start},"window_end":{end},"count":{count}}}'.encode()


def malformed_value(kind: str, user: str, start: int, end: int, count: int) -> bytes:
    """A bad result record of ``kind`` (:data:`MALFORMED_KINDS`) about the pair (``user``, window)."""
    record: dict[str, Any] = result_record(user, start, end, count)
    if kind == "not-json":
        return b"not json {"
    if kind == "empty":
        return b""
    if kind == "two-objects":
        one = json.dumps(record, separators=(",", ":")).encode()
        return one + b"," + one
    changes: dict[str, Callable[[dict[str, Any]], None]] = {
        "user-object": lambda r: r.update(user={"id": user}),
        "window-start-string": lambda r: r.update(window_start=str(start)),
        "count-null": lambda r: r.update(count=None),
        "count-float": lambda r: r.update(count=count + 0.5),
        "missing-field": lambda r: r.pop("count"),
        "extra-field": lambda r: r.update(extra="not a result field"),
    }
    if kind not in changes:
        raise ValueError(f"unknown malformed kind {kind!r}; one of {', '.join(MALFORMED_KINDS)}")
    changes[kind](record)
    return json.dumps(record, separators=(",", ":")).encode()


@dataclass
class _Due:
    window: FinalWindow
    final_ms: int
    due_ms: int


class ResultWriter:
    """Writes final windows to the output topic. With the default knobs it writes at once; ``delay_ms`` holds a
    window until ``final_ms + delay_ms``; ``transactional`` writes each window in a transaction committed
    ``commit_delay_ms`` later (one transaction open at a time: later windows wait for the commit).

    :meth:`submit` is called for each window that became final, :meth:`pump` on every turn of the job's loop,
    :meth:`close` on stop. ``producer`` is a confluent-kafka Producer (a fake in unit tests)."""

    def __init__(
        self,
        producer: Any,
        topic: str,
        *,
        delay_ms: int = 0,
        wrong_every: int | None = None,
        malformed: Iterable[str] = (),
        transactional: bool = False,
        commit_delay_ms: int = 0,
        transactions_log: TextIO | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.delay_ms = delay_ms
        self.wrong_every = wrong_every
        self.malformed = tuple(malformed)
        self.transactional = transactional
        self.commit_delay_ms = commit_delay_ms
        self.transactions_log = transactions_log
        self.clock_ms = clock_ms
        self.results = 0
        """Genuine result records written."""
        self._queue: deque[_Due] = deque()
        self._open: dict[str, Any] | None = None
        """The transaction written but not committed yet (its log line, with ``commit_due_ms``)."""
        self._direct = delay_ms == 0 and not transactional

    def submit(self, windows: list[FinalWindow], final_ms: int) -> None:
        """Windows that became final at ``final_ms`` (epoch ms): write now, or queue them."""
        if self._direct:
            for window in windows:
                self._write(window)
            self.producer.flush()
            return
        self._queue.extend(_Due(window, final_ms, final_ms + self.delay_ms) for window in windows)
        self.pump()

    def pump(self) -> None:
        """Commit an open transaction whose delay has passed; write the queued windows that are due."""
        now = self.clock_ms()
        if self._open is not None and now >= self._open["commit_due_ms"]:
            self._commit()
        while self._queue and self._queue[0].due_ms <= now and self._open is None:
            due = self._queue.popleft()
            if not self.transactional:
                self._write(due.window)
                self.producer.flush()
                continue
            self.producer.begin_transaction()
            records = self._write(due.window)
            self.producer.flush()
            write_ms = self.clock_ms()
            self._open = {"window_start": due.window.start, "window_end": due.window.end, "records": records,
                          "final_ms": due.final_ms, "write_ms": write_ms,
                          "commit_due_ms": write_ms + self.commit_delay_ms}
            if self.commit_delay_ms == 0:
                self._commit()
        self.producer.poll(0)

    def close(self, timeout: float = 5.0) -> None:
        """Flush what was written; an uncommitted transaction is aborted (the run is over)."""
        if self._open is not None:
            self.producer.abort_transaction(timeout)
            self._open = None
        self.producer.flush(timeout)

    def _commit(self) -> None:
        assert self._open is not None
        self.producer.commit_transaction()
        line = {key: value for key, value in self._open.items() if key != "commit_due_ms"}
        line["commit_ms"] = self.clock_ms()
        self._open = None
        if self.transactions_log is not None:
            self.transactions_log.write(json.dumps(line) + "\n")
            self.transactions_log.flush()

    def _write(self, window: FinalWindow) -> int:
        """Produce one window's records (malformed ones first, then the genuine ones); returns genuine records."""
        start, end = window.start, window.end
        if self.malformed and window.counts:
            user, count = next(iter(window.counts.items()))
            for kind in self.malformed:
                self._produce(user.encode(), malformed_value(kind, user, start, end, count))
        every = self.wrong_every
        for user, count in window.counts.items():
            self.results += 1
            if every is not None and self.results % every == 0:
                count += 1
            self._produce(user.encode(), encode_result(user, start, end, count))
        return len(window.counts)

    def _produce(self, key: bytes, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(self.topic, value=value, key=key)
                return
            except BufferError:  # the local queue is full: send it now (linger would hold it), then retry
                self.producer.flush()
