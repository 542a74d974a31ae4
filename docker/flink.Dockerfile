# syntax=docker/dockerfile:1
# Flink JobManager / TaskManager image: the Flink distribution inside the apache-flink wheel (PyFlink), so the
# cluster is exactly the version the harness submits with, plus the Kafka SQL connector jar in its lib/.
# The venv sits at /app/.venv like in the harness image: the harness submits Python jobs with
# `-pyexec /app/.venv/bin/python`, which must exist on the TaskManagers too.
# FLINK_VERSION and KAFKA_CONNECTOR_VERSION must equal harness/versions.py FLINK and FLINK_KAFKA_CONNECTOR, and
# KAFKA_CONNECTOR_SHA256 the jar's entry in harness/resources/jars.lock (checked in tests/unit/test_compose.py).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
ARG FLINK_VERSION=2.2.1
ARG KAFKA_CONNECTOR_VERSION=5.0.0-2.2
ARG KAFKA_CONNECTOR_SHA256=5605c691d11a501382c383fecba37a7a552467da5ab7ba904ef5d6f3d62c5616
ARG MAVEN_CENTRAL=https://repo1.maven.org/maven2
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless curl procps \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /usr/lib/jvm/java-17
ENV JAVA_HOME=/usr/lib/jvm/java-17 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH
WORKDIR /app
COPY requirements.lock ./
# apache-flink with the same pins as the harness (the lock is the constraint set)
RUN python -m venv .venv \
 && .venv/bin/pip install --no-cache-dir --disable-pip-version-check "pip>=24" \
 && .venv/bin/pip install --no-cache-dir --disable-pip-version-check -c requirements.lock "apache-flink==${FLINK_VERSION}" pyyaml
ENV FLINK_HOME=/app/.venv/lib/python3.11/site-packages/pyflink
RUN jar="flink-sql-connector-kafka-${KAFKA_CONNECTOR_VERSION}.jar" \
 && curl -fsSL -o "$FLINK_HOME/lib/$jar" \
      "${MAVEN_CENTRAL}/org/apache/flink/flink-sql-connector-kafka/${KAFKA_CONNECTOR_VERSION}/$jar" \
 && echo "${KAFKA_CONNECTOR_SHA256}  $FLINK_HOME/lib/$jar" | sha256sum -c -
COPY docker/flink-entrypoint.py /usr/local/bin/flink-entrypoint
ENTRYPOINT ["/app/.venv/bin/python", "/usr/local/bin/flink-entrypoint"]
CMD ["jobmanager"]
