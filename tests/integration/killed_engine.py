"""A real Spark engine whose job is killed (SIGKILL to its process group) a few seconds into the load: the runner
must record it as failed, with its error and log tail, and still run the next engine."""

from __future__ import annotations

import os
import signal
import threading

from harness.engines.spark import SparkEngine

KILL_AFTER_READY_S = 8.0


class KilledSparkEngine(SparkEngine):
    name = "spark-killed"
    description = "Spark, killed mid-run (test double for failure handling)"

    def wait_ready(self, timeout: float) -> None:
        super().wait_ready(timeout)
        threading.Timer(KILL_AFTER_READY_S, self._kill).start()

    def _kill(self) -> None:
        for process in self.processes():
            try:
                os.kill(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
