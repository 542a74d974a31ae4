"""Entry point of the Flink image: ``jobmanager`` or ``taskmanager``, in the foreground (logs on stdout).

Writes ``$FLINK_CONF_DIR/config.yaml``: PyFlink's shipped configuration (its JVM options for Java 17) with the
``key: value`` lines of ``$FLINK_PROPERTIES`` applied on top — as flat keys, so a setting replaces the shipped one
instead of sitting beside it — then execs PyFlink's ``bin/jobmanager.sh`` / ``bin/taskmanager.sh``.
"""

import os
import shutil
import sys
from pathlib import Path

import yaml


def flatten(tree, prefix=""):
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def main() -> None:
    role = sys.argv[1] if len(sys.argv) > 1 else "jobmanager"
    if role not in ("jobmanager", "taskmanager"):
        os.execvp(role, sys.argv[1:])  # anything else: run it (e.g. bash for debugging)
    home = Path(os.environ["FLINK_HOME"])
    conf_dir = Path(os.environ.get("FLINK_CONF_DIR", "/app/flink-conf"))
    conf_dir.mkdir(parents=True, exist_ok=True)
    config = flatten(yaml.safe_load((home / "conf" / "config.yaml").read_text()) or {})
    for line in os.environ.get("FLINK_PROPERTIES", "").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition(":")
            config[key.strip()] = yaml.safe_load(value.strip()) if value.strip() else ""
    (conf_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
    for name in ("log4j-console.properties", "log4j.properties", "log4j-cli.properties"):
        shutil.copy(home / "conf" / name, conf_dir / name)
    os.environ["FLINK_CONF_DIR"] = str(conf_dir)
    script = home / "bin" / f"{role}.sh"
    os.execvp("bash", ["bash", str(script), "start-foreground", *sys.argv[2:]])


if __name__ == "__main__":
    main()
