"""JVM artifacts: fetched with Maven from Maven Central into a cache outside git, checksummed, found by bundle.

A *bundle* is a named set of Maven coordinates whose jars (with their runtime dependencies, unless the bundle is a
shaded jar) land in ``CACHE/<bundle>/``. ``bench setup`` fetches every bundle; Maven verifies each download
against the repository's checksum (``--strict-checksums``), and the harness then checks every jar's SHA-256
against ``harness/resources/jars.lock``, committed with the code, so a cache that changed under us is caught.
Every run checks again (:func:`classpath`), hashing only jars whose size, times or inode changed since the last
check (the digest stamp, :data:`STAMP_FILE`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import versions
from harness.errors import SetupError

LOCK_FILE = Path(__file__).resolve().parents[1] / "resources" / "jars.lock"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


@dataclass(frozen=True)
class Bundle:
    name: str
    coordinates: tuple[str, ...]
    transitive: bool = True
    purpose: str = ""
    keep: tuple[str, ...] = ()
    """If set, only jars whose names start with one of these are kept: the rest the engine already ships."""


BUNDLES: dict[str, Bundle] = {
    bundle.name: bundle
    for bundle in (
        Bundle(
            "kafka",
            (
                f"org.apache.kafka:kafka_2.13:{versions.KAFKA}",
                f"org.apache.kafka:kafka-tools:{versions.KAFKA}",
                f"org.apache.logging.log4j:log4j-slf4j2-impl:{versions.LOG4J}",
                f"org.apache.logging.log4j:log4j-core:{versions.LOG4J}",
                # named so it wins Maven's nearest-first mediation: a 1.7 API (pulled in transitively)
                # ignores the SLF4J 2 provider and the broker would log nothing
                f"org.slf4j:slf4j-api:{versions.SLF4J}",
            ),
            purpose="embedded KRaft broker and kafka-producer-perf-test",
        ),
        Bundle(
            "spark-kafka",
            (f"org.apache.spark:spark-sql-kafka-0-10_{versions.SCALA_BINARY}:{versions.SPARK}",),
            purpose="Spark Structured Streaming Kafka source and sink (spark.jars)",
            # pyspark's own jars/ already hold Scala, Hadoop, lz4, snappy and slf4j; a second copy on the
            # classpath in another version is a conflict, so only the connector and what pyspark lacks is kept
            keep=("spark-sql-kafka-0-10", "spark-token-provider-kafka-0-10", "kafka-clients", "commons-pool2"),
        ),
        Bundle(
            "flink-kafka",
            (f"org.apache.flink:flink-sql-connector-kafka:{versions.FLINK_KAFKA_CONNECTOR}",),
            transitive=False,  # a shaded jar with kafka-clients inside
            purpose="Flink Kafka SQL connector (pipeline.jars)",
        ),
    )
}


def cache_dir() -> Path:
    """``$BENCH_CACHE/jars``, else ``.cache/jars`` in a source checkout, else ``~/.cache/streambench/jars``."""
    if os.environ.get("BENCH_CACHE"):
        return Path(os.environ["BENCH_CACHE"]) / "jars"
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").exists() and (checkout / "harness").is_dir():
        return checkout / ".cache" / "jars"
    return Path.home() / ".cache" / "streambench" / "jars"


# ---------------------------------------------------------------------------------------------------- tools
def find_java() -> Path:
    """The ``java`` of ``$JAVA_HOME`` or ``PATH``, checked to be 17 or newer."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path))
    for java in candidates:
        if java.exists():
            version = java_version(java)
            if version >= 17:
                return java
            raise SetupError(
                f"{java} is Java {version}; the harness needs Java 17 or newer "
                "(Debian: apt-get install openjdk-17-jre-headless; or set JAVA_HOME)"
            )
    raise SetupError("java not found: install Java 17+ (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME")


def java_version(java: Path) -> int:
    out = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise SetupError(f"cannot tell the version of {java}: {out.strip()[:200]}")
    major = int(match[1])
    return int(match[2]) if major == 1 and match[2] else major


def java_home() -> Path:
    return find_java().resolve().parent.parent


def find_mvn() -> Path:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SetupError("mvn not found: install Maven 3.8+ (Debian: apt-get install maven); it fetches the JVM jars")
    return Path(mvn)


# -------------------------------------------------------------------------------------------------- fetching
def bundle_dir(name: str) -> Path:
    return cache_dir() / name / "lib"


def classpath(name: str) -> list[Path]:
    """The jars of a fetched bundle, each checked against ``jars.lock`` (called on every run, by whatever starts a
    JVM: cheap through the digest stamp, see :func:`check_digests`); :class:`SetupError` telling to run
    ``./setup.sh`` when a jar is absent or changed."""
    if name not in BUNDLES:
        raise KeyError(name)
    jars = sorted(bundle_dir(name).glob("*.jar"))
    if not jars or not (cache_dir() / name / ".complete").exists():
        raise SetupError(f"JVM artifacts '{name}' are not in {cache_dir()}: run `bench setup` (or ./setup.sh)")
    check_digests(name, jars)
    return jars


def jar(name: str, prefix: str) -> Path:
    """The one jar of bundle ``name`` whose file name starts with ``prefix``."""
    found = [path for path in classpath(name) if path.name.startswith(prefix)]
    if len(found) != 1:
        raise SetupError(f"expected one {prefix}*.jar in {bundle_dir(name)}, found {len(found)}: run `bench setup`")
    return found[0]


def fetch(name: str, *, log: Callable[[str], object] = print, relock: bool = False) -> list[Path]:
    """Fetch bundle ``name`` with Maven unless complete; verify checksums (with ``relock``, record them in
    ``jars.lock`` instead: for a deliberate version change). Returns its jars."""
    bundle = BUNDLES[name]
    root = cache_dir() / name
    marker = root / ".complete"
    if marker.exists() and marker.read_text() == _bundle_key(bundle) and not relock:
        try:
            verify(name)
            return classpath_unchecked(name)
        except SetupError as exc:  # a jar changed or went missing after setup: fetch the bundle again
            log(f"{name}: {str(exc).splitlines()[0]}; fetching it again")
    find_java()
    mvn = find_mvn()
    if root.exists():
        shutil.rmtree(root)
    (root / "lib").mkdir(parents=True)
    (root / "pom.xml").write_text(_pom(bundle))
    log(f"fetching {name}: {', '.join(bundle.coordinates)}")
    command = [
        str(mvn), "-B", "-q", "--strict-checksums", "-f", str(root / "pom.xml"),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        f"-DoutputDirectory={root / 'lib'}", "-DincludeScope=runtime",
    ]
    if not bundle.transitive:
        command.append("-DexcludeTransitive=true")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n    ".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SetupError(f"mvn could not fetch {name} ({', '.join(bundle.coordinates)}):\n    {tail}")
    if bundle.keep:
        for path in classpath_unchecked(name):
            if not path.name.startswith(bundle.keep):
                path.unlink()
    if relock:
        update_lock([name])
    verify(name)
    marker.write_text(_bundle_key(bundle))
    return classpath_unchecked(name)


def classpath_unchecked(name: str) -> list[Path]:
    return sorted(bundle_dir(name).glob("*.jar"))


def verify(name: str) -> None:
    """Hash every jar of the bundle and check it against ``jars.lock`` (a jar not in the lock is an error too);
    called by ``bench setup``. Renews the digest stamp, so later runs need not hash again."""
    lock = read_lock()
    problems = []
    jars = classpath_unchecked(name)
    if not jars:
        problems.append(f"no jars in {bundle_dir(name)}")
    stamp = {}
    for path in jars:
        expected = lock.get(f"{name}/{path.name}")
        actual = sha256(path)
        if expected is None:
            problems.append(f"{path.name} is not in {LOCK_FILE.name} (run `bench setup --update-lock` if intended)")
        elif expected != actual:
            problems.append(f"{path.name}: sha256 {actual} != {expected} in {LOCK_FILE.name}")
        else:
            stamp[path.name] = _stamp_entry(path, actual)
    if problems:
        raise SetupError(f"checksum check of '{name}' in {bundle_dir(name)} failed:\n    " + "\n    ".join(problems)
                         + "\n  hint: run ./setup.sh (or `bench setup`) again: it fetches the bundle anew")
    _write_stamp(name, stamp)


STAMP_FILE = ".digests.json"
"""Per bundle, next to ``.complete``: ``{jar name: {size, mtime_ns, ctime_ns, ino, sha256}}`` of jars whose digest
matched the lock. A jar whose size, times and inode are unchanged and whose stamped digest is still the lock's is not
hashed again; any change (a rewritten, replaced or touched jar — ctime cannot be set back —, a new lock) means a
full hash."""


def check_digests(name: str, jars: list[Path] | None = None) -> int:
    """Check the bundle's jars against ``jars.lock`` on every run, hashing only the jars the stamp does not vouch
    for; returns how many were hashed. :class:`SetupError` (one line, naming the jar and what to do) for a jar
    whose digest does not match or that is not in the lock."""
    lock = read_lock()
    stamp = _read_stamp(name)
    hashed = 0
    changed = False
    for path in jars if jars is not None else classpath_unchecked(name):
        expected = lock.get(f"{name}/{path.name}")
        if expected is None:
            raise SetupError(f"{path}: not in {LOCK_FILE.name}, so it cannot be trusted: run ./setup.sh to fetch "
                             f"the '{name}' jars anew")
        entry = _stamp_entry(path, expected)
        if stamp.get(path.name) == entry:
            continue
        hashed += 1
        if sha256(path) != expected:
            raise SetupError(f"{path}: SHA-256 does not match {LOCK_FILE.name} (the jar changed after setup): run "
                             f"./setup.sh to fetch the '{name}' jars anew")
        stamp[path.name] = entry
        changed = True
    if changed:
        _write_stamp(name, stamp)
    return hashed


def _stamp_entry(path: Path, digest: str) -> dict[str, int | str]:
    info = path.stat()
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "ctime_ns": info.st_ctime_ns, "ino": info.st_ino,
            "sha256": digest}


def _read_stamp(name: str) -> dict[str, Any]:
    """The bundle's stamp; empty when absent or unreadable (then every jar is hashed)."""
    try:
        data = json.loads((cache_dir() / name / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_stamp(name: str, stamp: dict[str, Any]) -> None:
    """Atomically; a cache we cannot write (read-only) only costs the next run a rehash."""
    path = cache_dir() / name / STAMP_FILE
    temporary = path.with_name(f"{STAMP_FILE}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(stamp, sort_keys=True))
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)


def update_lock(names: list[str]) -> None:
    """Rewrite ``jars.lock`` entries of ``names`` from the jars in the cache (after a version change)."""
    lock = {key: value for key, value in read_lock().items() if key.split("/", 1)[0] not in names}
    for name in names:
        for path in classpath_unchecked(name):
            lock[f"{name}/{path.name}"] = sha256(path)
    LOCK_FILE.write_text("".join(f"{digest}  {key}\n" for key, digest in sorted(lock.items())))


def read_lock() -> dict[str, str]:
    if not LOCK_FILE.exists():
        return {}
    entries = {}
    for line in LOCK_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, key = line.split(None, 1)
            entries[key.strip()] = digest
    return entries


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _bundle_key(bundle: Bundle) -> str:
    return f"{bundle.coordinates} transitive={bundle.transitive} keep={bundle.keep}\n"


def _pom(bundle: Bundle) -> str:
    deps = []
    for coordinate in bundle.coordinates:
        group, artifact, version = coordinate.split(":")
        deps.append(
            f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version></dependency>"
        )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by harness/infra/jvm.py: the jars of bundle '{bundle.name}' -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>streambench.cache</groupId>
  <artifactId>{bundle.name}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{chr(10).join(deps)}
  </dependencies>
</project>
"""
