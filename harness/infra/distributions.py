"""Where the Spark and Flink distributions are: the ones inside the pyspark and apache-flink wheels of this venv.

The engines submit with them (``spark-submit``, ``flink run``) and :mod:`harness.infra.cluster` runs its local clusters
from them, so the client and the cluster are always the same version. This is the only place that looks them up.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from harness.errors import SetupError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The directory holding the ``harness`` package: first on every job's PYTHONPATH, and what ships to clusters."""


def _package_dir(module: str, install: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise SetupError(f"{module} is not installed in this Python ({install}; see requirements.lock)")
    return Path(spec.origin).resolve().parent


def spark_home() -> Path:
    """The Spark distribution inside the pyspark wheel (``bin/spark-submit``, ``bin/spark-class``, ``jars/``)."""
    return _package_dir("pyspark", "pip install pyspark")


def flink_home() -> Path:
    """The Flink distribution inside the apache-flink wheel (``bin/flink``, ``lib/``, ``conf/``)."""
    return _package_dir("pyflink", "pip install apache-flink")


def flink_shipped_config() -> dict[str, Any]:
    """PyFlink's own ``conf/config.yaml`` as Flink's dotted keys (``env.java.opts.all`` …): the JVM options Flink
    needs on Java 17. Empty if the file is missing or unreadable."""
    try:
        tree = yaml.safe_load((flink_home() / "conf" / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return flatten_config(tree) if isinstance(tree, Mapping) else {}


def flatten_config(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML keys as Flink's dotted keys (``env: {java: {opts: …}}`` → ``env.java.opts…``), so overrides
    replace them instead of sitting beside them."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, f"{name}."))
        else:
            flat[name] = value
    return flat
