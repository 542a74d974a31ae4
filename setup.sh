#!/usr/bin/env bash
# Sets up everything the harness needs, idempotently and quickly when warm:
#   .venv/  a virtualenv with the pinned Python dependencies (requirements.lock) and the harness itself
#   .cache/jars/  the JVM artifacts (Kafka broker, Spark and Flink Kafka connectors) fetched with mvn, checksummed
#   with --tests, also the tools only the test suite uses: .cache/bin/actionlint (built with go)
# Needs python3.11, java 17+ and mvn on PATH (and go for --tests); says what to install when one is missing.
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
    quietly .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
    quietly .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
    echo "$want" > "$stamp"
fi

# JVM artifacts: java/mvn checks, mvn fetch, checksum verification (fast no-op when the cache is complete)
quietly .venv/bin/bench setup

# --tests: actionlint, for the test that lints the nightly workflow (tests/unit/test_workflow.py): built from the Go
# module proxy into the git-ignored .cache/bin (no PyPI package ships the binary); a no-op when that version is
# already there. Not needed to run benchmarks, so the main command does not build it.
ACTIONLINT_VERSION=1.7.12
if [[ $tests == 1 && "$(.cache/bin/actionlint -version 2>/dev/null | head -n 1)" != "v$ACTIONLINT_VERSION" ]]; then
    if ! command -v go >/dev/null 2>&1; then
        echo "setup.sh --tests: go not found, so actionlint cannot be built; install Go 1.22+ (tests/unit/test_workflow.py needs it)" >&2
        exit 1
    fi
    GOBIN="$PWD/.cache/bin" quietly go install "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION"
fi
