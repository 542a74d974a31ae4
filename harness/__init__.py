"""streambench harness: the same event-time windowed count on Spark and Flink, driven through Kafka, measured.

The public surface is the ``bench`` command (:mod:`harness.cli`); modules:

- :mod:`harness.scenario` — strict scenario files; :mod:`harness.workload` — the semantics, once
- :mod:`harness.kafka` — embedded or external broker; :mod:`harness.infra.jvm` — JVM artifacts
- :mod:`harness.loadgen` — open-loop generator; :mod:`harness.analysis.oracle` — expected counts and the diff
- :mod:`harness.engines` — one class per engine; :mod:`harness.run.runner` — the phases of a run
- :mod:`harness.run.collector`, :mod:`harness.results`, :mod:`harness.report.document`, :mod:`harness.report.compare`
"""

__version__ = "0.1.0"
