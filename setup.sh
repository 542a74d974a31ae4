#!/usr/bin/env bash
# Sets up everything the harness needs, idempotently and quickly when warm:
#   .venv/  a virtualenv with the pinned Python dependencies (requirements.lock) and the harness itself
#   .cache/jars/  the JVM artifacts (Kafka broker, Spark and Flink Kafka connectors) fetched with mvn, checksummed
# Needs python3.11, java 17+ and mvn on PATH; says what to install when one is missing.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "setup.sh: Python 3.11 is required (apache-flink 2.2 and pyspark 4.2 wheels); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

stamp=.venv/.installed
want="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
    [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
    echo "$want" > "$stamp"
fi

# JVM artifacts: java/mvn checks, mvn fetch, checksum verification (fast no-op when the cache is complete)
.venv/bin/bench setup

# actionlint, for the test that lints the nightly workflow: built from the Go module proxy into the git-ignored
# .cache/bin (no PyPI package ships the binary); a no-op when that version is already there. Only needed for tests.
ACTIONLINT_VERSION=1.7.12
if [[ "$(.cache/bin/actionlint -version 2>/dev/null | head -n 1)" != "v$ACTIONLINT_VERSION" ]]; then
    if command -v go >/dev/null 2>&1; then
        GOBIN="$PWD/.cache/bin" go install "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION"
    else
        echo "setup.sh: go not found, so actionlint is not installed; tests/unit/test_workflow.py will fail" >&2
    fi
fi
