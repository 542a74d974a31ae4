"""A stand-in for ``bench`` in the cluster tests: starts the ``flink`` engine against a session cluster, waits until
the job is ready, prints ``READY <job name> <process group of the flink client>`` and then waits to be killed.

``python -m tests.integration.flink_bench_standin JOBMANAGER BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC RUN_DIR``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from harness.engines.base import EngineContext
from harness.engines.flink import FlinkEngine, FlinkSettings
from harness.workload import JobSpec


def main(argv: list[str]) -> int:
    jobmanager, bootstrap, input_topic, output_topic, run_dir = argv
    spec = JobSpec(bootstrap, input_topic, output_topic, 10_000, 10_000, 2_000, 2, 2, str(Path(run_dir) / "state"), {})
    engine = FlinkEngine(FlinkSettings(jobmanager=jobmanager, checkpoint_interval="off"),
                         EngineContext(spec, Path(run_dir)))
    engine.start()
    engine.wait_ready(240)
    assert engine.process is not None
    print(f"READY {engine.job_name} {engine.process.pid}", flush=True)
    time.sleep(3600)  # until killed; the engine is never stopped
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
