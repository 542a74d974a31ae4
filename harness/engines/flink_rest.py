"""A small client of Flink's REST API, as the Flink engines use it: find a job by name, probe readiness, read the
metrics of a snapshot and the source's record count, cancel jobs.

The same API serves a local MiniCluster (the job's own JVM) and a session cluster's JobManager. Every call is one
HTTP request with a short timeout; errors surface as :class:`OSError` (connection, timeout, HTTP status) or
:class:`ValueError` (a body that is not JSON) for the caller to treat as "not yet" or "gone".
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from typing import Any

TERMINAL_STATES = ("FAILED", "CANCELED", "FINISHED")
"""Job states after which a job never runs again."""

_SOURCE_PARTITION = re.compile(
    r"\.KafkaSourceReader\.topic\.(?P<topic>.+)\.partition\.(?P<partition>\d+)\.currentOffset$"
)
_TASK_METRICS = (
    "numRecordsInPerSecond",
    "numRecordsOutPerSecond",
    "busyTimeMsPerSecond",
    "backPressuredTimeMsPerSecond",
    "idleTimeMsPerSecond",
    "currentInputWatermark",
)
_NO_WATERMARK = -9.2e18  # Long.MIN_VALUE as the REST API's double: no watermark yet


def _is_source_records_in(name: str) -> bool:
    """The source operator's record counter (``Source__events[1].numRecordsIn``, ``Source__kafka-input…``)."""
    return name.startswith("Source__") and name.endswith(".numRecordsIn")


class FlinkRest:
    """The REST API at ``base_url`` (``http://host:port``). Stateless but for a cache of metric names per vertex
    (they do not change while a job runs), so one instance may serve several threads."""

    def __init__(self, base_url: str, *, timeout: float = 3.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._metric_names: dict[tuple[str, str], list[str]] = {}

    # ------------------------------------------------------------------------------------------------ http
    def get(self, path: str) -> Any:
        return self._request(path, "GET")

    def _request(self, path: str, method: str) -> Any:
        request = urllib.request.Request(self.base_url + path, method=method)
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - our own URL
            body = response.read()
        return json.loads(body) if body else None

    # ------------------------------------------------------------------------------------------------ jobs
    def jobs(self) -> list[dict[str, Any]]:
        """Every job the cluster knows (``jid``, ``name``, ``state``, ``tasks`` …), running and finished."""
        return list(self.get("/jobs/overview").get("jobs", []))

    def find_job(self, name: str) -> dict[str, Any] | None:
        """The newest job called ``name``, or None."""
        named = [job for job in self.jobs() if job.get("name") == name]
        return max(named, key=lambda job: job.get("start-time", 0)) if named else None

    def job(self, job_id: str) -> dict[str, Any]:
        return self.get(f"/jobs/{job_id}")

    def failure_times(self, job_id: str) -> list[int]:
        """When the job failed (epoch ms, the JobManager's clock), from its exception history: each entry is one
        failure that made the job (or a region of it) restart, e.g. the loss of a TaskManager."""
        history = self.get(f"/jobs/{job_id}/exceptions").get("exceptionHistory") or {}
        return [int(entry["timestamp"]) for entry in history.get("entries", []) if entry.get("timestamp")]

    def cancel(self, job_id: str) -> None:
        self._request(f"/jobs/{job_id}?mode=cancel", "PATCH")

    def cancel_named(self, name: str) -> list[str]:
        """Cancel every job called ``name`` that has not ended; the ids cancelled."""
        cancelled = []
        for job in self.jobs():
            if job.get("name") == name and job.get("state") not in TERMINAL_STATES:
                self.cancel(job["jid"])
                cancelled.append(job["jid"])
        return cancelled

    def wait_terminal(self, job_id: str, timeout: float) -> str | None:
        """Poll until the job has ended (its state) or ``timeout`` seconds pass (None)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.job(job_id).get("state")
            if state in TERMINAL_STATES:
                return state
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)

    # --------------------------------------------------------------------------------------------- metrics
    def vertex_metric_names(self, job_id: str, vertex_id: str) -> list[str]:
        """Names of a vertex's subtask metrics without the subtask prefix (``numRecordsIn``,
        ``Source__events[1].numRecordsIn`` …); cached once the vertex lists any."""
        key = (job_id, vertex_id)
        if key not in self._metric_names:
            names = sorted({
                metric["id"].split(".", 1)[1]
                for metric in self.get(f"/jobs/{job_id}/vertices/{vertex_id}/metrics")
                if "." in metric["id"]
            })
            if not names:
                return []
            self._metric_names[key] = names
        return self._metric_names[key]

    def subtask_metrics(self, job_id: str, vertex_id: str, names: list[str]) -> dict[str, dict[str, float]]:
        """Aggregates (``min``, ``max``, ``avg``, ``sum``) over a vertex's subtasks of each metric in ``names``.
        Ask only for metrics the vertex has: the REST API answers nothing at all if one is missing."""
        if not names:
            return {}
        wanted = urllib.parse.quote(",".join(names), safe=",")
        return {item["id"]: item for item in self.get(f"/jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics?get={wanted}")}

    def assigned_partitions(self, job_id: str, topic: str) -> set[int]:
        """Partitions of ``topic`` whose reader the Kafka source has registered (a ``currentOffset`` metric)."""
        assigned: set[int] = set()
        for vertex in self.job(job_id)["vertices"]:
            if not vertex["name"].startswith("Source"):
                continue
            for metric in self.get(f"/jobs/{job_id}/vertices/{vertex['id']}/metrics"):
                match = _SOURCE_PARTITION.search(metric["id"])
                if match and match["topic"] == topic:
                    assigned.add(int(match["partition"]))
        return assigned

    def source_records_in(self, job_id: str) -> int | None:
        """Records the job's Kafka source operators have read so far, summed over their subtasks; None while no
        source reports the counter yet."""
        total: float | None = None
        for vertex in self.job(job_id)["vertices"]:
            if not vertex["name"].startswith("Source"):
                continue
            names = [name for name in self.vertex_metric_names(job_id, vertex["id"]) if _is_source_records_in(name)]
            if not names:
                # listed before the source registered its counter (seen after a restore from a checkpoint, where
                # the list was cached without it and the counter never showed): list the names again next time
                self._metric_names.pop((job_id, vertex["id"]), None)
                continue
            for item in self.subtask_metrics(job_id, vertex["id"], names).values():
                total = (total or 0.0) + float(item.get("sum") or 0.0)
        return None if total is None else int(total)

    def snapshot(self, job_id: str) -> dict[str, Any]:
        """The job's state, per-vertex rates, busy/backpressured time, watermarks, late records and checkpoints
        now: one entry of ``flink-metrics.json``."""
        job = self.job(job_id)
        vertices = []
        totals = {"source_records_per_s": 0.0, "source_records_total": None, "late_records_dropped": 0.0}
        for vertex in job["vertices"]:
            names = self._snapshot_metric_names(job_id, vertex["id"])
            values = self.subtask_metrics(job_id, vertex["id"], names)
            vertices.append(_vertex_summary(vertex, values))
            _add_operator_totals(totals, values)
        checkpoints = self.get(f"/jobs/{job_id}/checkpoints")
        latest = (checkpoints.get("latest") or {}).get("completed") or {}
        summary = checkpoints.get("summary") or {}
        return {
            "time": time.time(),
            "job_state": job["state"],
            **totals,
            "backpressured": any((v["backpressured_ms_per_s_max"] or 0) > 100 for v in vertices),
            "vertices": vertices,
            "checkpoints": {
                "counts": checkpoints.get("counts"),
                "latest_duration_ms": latest.get("end_to_end_duration"),
                "latest_size_bytes": latest.get("checkpointed_size"),
                "duration_ms": summary.get("end_to_end_duration"),
            },
        }

    def _snapshot_metric_names(self, job_id: str, vertex_id: str) -> list[str]:
        """The task metrics a vertex has, records read by its source operator and late records dropped by its
        window operator."""
        names = self.vertex_metric_names(job_id, vertex_id)
        operator = [
            name for name in names
            if (name.startswith("Source__") and name.endswith((".numRecordsInPerSecond", ".numRecordsIn")))
            or name.endswith(".numLateRecordsDropped")
        ]  # fmt: skip
        return [name for name in _TASK_METRICS if name in names] + operator


def _vertex_summary(vertex: dict[str, Any], values: dict[str, dict[str, float]]) -> dict[str, Any]:
    def agg(metric: str, how: str) -> float | None:
        return values[metric][how] if metric in values else None

    watermark = agg("currentInputWatermark", "min")
    return {
        "name": vertex["name"],
        "parallelism": vertex["parallelism"],
        "status": vertex["status"],
        "records_in_per_s": agg("numRecordsInPerSecond", "sum"),
        "records_out_per_s": agg("numRecordsOutPerSecond", "sum"),
        "busy_ms_per_s_max": agg("busyTimeMsPerSecond", "max"),
        "backpressured_ms_per_s_max": agg("backPressuredTimeMsPerSecond", "max"),
        "idle_ms_per_s_max": agg("idleTimeMsPerSecond", "max"),
        "input_watermark_ms": None if watermark is None or watermark < _NO_WATERMARK else int(watermark),
        "records_read_total": vertex["metrics"].get("read-records"),
        "records_written_total": vertex["metrics"].get("write-records"),
    }


def _add_operator_totals(totals: dict[str, Any], values: dict[str, dict[str, float]]) -> None:
    """Add a vertex's source rate, source record count and late records dropped to the job's totals."""
    for name, item in values.items():
        value = float(item.get("sum") or 0.0)
        if name.startswith("Source__") and name.endswith(".numRecordsInPerSecond"):
            totals["source_records_per_s"] += value
        elif _is_source_records_in(name):
            totals["source_records_total"] = (totals["source_records_total"] or 0.0) + value
        elif name.endswith(".numLateRecordsDropped"):
            totals["late_records_dropped"] += value
