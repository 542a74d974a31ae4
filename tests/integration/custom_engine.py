"""A third-party engine plugged in by ``module:Class`` path (not registered): a thin subclass of the Spark engine,
as someone tuning Spark for their own runs might write. Used by test_spark_engine to check that such an engine is
resolved by :func:`harness.engines.registry.resolve_engine` and runs end to end."""

from __future__ import annotations

from typing import ClassVar

from harness.engines.spark import SparkEngine


class LabelledSparkEngine(SparkEngine):
    """The Spark engine under another name, recording that it is a plug-in in its fairness report."""

    name: ClassVar[str] = "spark-plugin"
    description: ClassVar[str] = "Spark engine loaded by module:Class path (test plug-in)"

    def fairness(self) -> dict[str, str]:
        return {**super().fairness(), "deployment": f"{self.deployment} (plug-in {type(self).__name__})"}
