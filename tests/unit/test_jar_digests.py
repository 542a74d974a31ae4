"""Jar digests are checked on every run (``jvm.classpath``), cheaply through the digest stamp (issue 12 item 5).

A fake bundle in a temporary cache: two small jars, a lock with their SHA-256, the ``.complete`` marker.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from harness.infra import jvm
from harness.errors import SetupError


@pytest.fixture()
def bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The 'kafka' bundle of a temporary cache, with a lock file of its own; returns its lib directory."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    lib = jvm.bundle_dir("kafka")
    lib.mkdir(parents=True)
    lines = []
    for name, content in (("a-1.0.jar", b"first jar"), ("b-2.0.jar", b"second jar")):
        (lib / name).write_bytes(content)
        lines.append(f"{hashlib.sha256(content).hexdigest()}  kafka/{name}\n")
    lock = tmp_path / "jars.lock"
    lock.write_text("".join(lines))
    monkeypatch.setattr(jvm, "LOCK_FILE", lock)
    (lib.parent / ".complete").write_text("x")
    return lib


def count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record every jar jvm.sha256 hashes from now on."""
    hashed: list[Path] = []
    real = jvm.sha256

    def counting(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(jvm, "sha256", counting)
    return hashed


def test_intact_jars_are_hashed_once_then_vouched_for_by_the_stamp(bundle: Path, monkeypatch) -> None:
    hashed = count_hashes(monkeypatch)
    assert [p.name for p in jvm.classpath("kafka")] == ["a-1.0.jar", "b-2.0.jar"]
    assert len(hashed) == 2
    assert (bundle.parent / jvm.STAMP_FILE).exists()
    jvm.classpath("kafka")
    jvm.classpath("kafka")
    assert len(hashed) == 2  # the stamp: no rehash while size, times and inode are unchanged


def test_a_tampered_jar_is_refused_naming_it_and_setup(bundle: Path) -> None:
    jvm.classpath("kafka")  # stamped as intact
    jar = bundle / "b-2.0.jar"
    info = jar.stat()
    jar.write_bytes(b"second jaR")  # same size
    os.utime(jar, ns=(info.st_atime_ns, info.st_mtime_ns))  # and the old mtime: only ctime tells
    with pytest.raises(SetupError) as caught:
        jvm.classpath("kafka")
    message = str(caught.value)
    assert "\n" not in message
    assert str(jar) in message and "does not match" in message and "./setup.sh" in message


def test_a_replaced_jar_is_rehashed_and_refused_even_with_a_stamp(bundle: Path, monkeypatch) -> None:
    jvm.classpath("kafka")
    jar = bundle / "a-1.0.jar"
    replacement = bundle / "new.tmp"
    replacement.write_bytes(b"other jar")
    os.replace(replacement, jar)  # another inode and size
    hashed = count_hashes(monkeypatch)
    with pytest.raises(SetupError, match="a-1.0.jar: SHA-256 does not match"):
        jvm.classpath("kafka")
    assert [p.name for p in hashed] == ["a-1.0.jar"]


def test_a_jar_not_in_the_lock_is_refused(bundle: Path) -> None:
    (bundle / "c-3.0.jar").write_bytes(b"smuggled")
    with pytest.raises(SetupError, match=r"c-3.0.jar: not in jars.lock.*run ./setup.sh"):
        jvm.classpath("kafka")


def test_a_changed_lock_invalidates_the_stamp(bundle: Path, monkeypatch) -> None:
    jvm.classpath("kafka")
    lock = jvm.LOCK_FILE
    lock.write_text(lock.read_text().replace(hashlib.sha256(b"first jar").hexdigest(), "0" * 64))
    hashed = count_hashes(monkeypatch)
    with pytest.raises(SetupError, match="a-1.0.jar: SHA-256 does not match"):
        jvm.classpath("kafka")
    assert [p.name for p in hashed] == ["a-1.0.jar"]


def test_a_damaged_stamp_only_costs_a_rehash(bundle: Path, monkeypatch) -> None:
    jvm.classpath("kafka")
    (bundle.parent / jvm.STAMP_FILE).write_text("{not json")
    hashed = count_hashes(monkeypatch)
    assert len(jvm.classpath("kafka")) == 2
    assert len(hashed) == 2


def test_setup_fetches_a_tampered_bundle_anew(bundle: Path, monkeypatch) -> None:
    """``bench setup`` (jvm.fetch) on a complete but tampered bundle does not stop at the mismatch: it fetches the
    bundle again (here: stopped at the point where it would need java and mvn)."""
    bundle_key = jvm._bundle_key(jvm.BUNDLES["kafka"])
    (bundle.parent / ".complete").write_text(bundle_key)
    (bundle / "a-1.0.jar").write_bytes(b"tampered!")
    logged: list[str] = []

    def no_java() -> Path:
        raise SetupError("java wanted")

    monkeypatch.setattr(jvm, "find_java", no_java)
    with pytest.raises(SetupError, match="java wanted"):
        jvm.fetch("kafka", log=logged.append)
    assert logged and "fetching it again" in logged[0] and "kafka" in logged[0]
