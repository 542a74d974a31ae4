# syntax=docker/dockerfile:1
# The harness image: Python 3.11, Java 17, the pinned venv (requirements.lock: pyspark, apache-flink, ...) and the
# JVM jars of `bench setup`. Two targets:
#   spark    the Spark standalone master and workers: the Spark distribution inside the pyspark wheel, so the
#            cluster is exactly the version the driver submits with (Spark requires driver == cluster version)
#   harness  the above plus the harness code and jars: runs `bench` (driver of Spark jobs, client of Flink jobs)
# Built by docker-compose.yml; SPARK_VERSION must equal harness/versions.py SPARK (checked at build time and in
# tests/unit/test_compose.py).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE} AS spark
ARG SPARK_VERSION=4.2.0
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven procps \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /usr/lib/jvm/java-17
ENV JAVA_HOME=/usr/lib/jvm/java-17 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH
WORKDIR /app
COPY requirements.lock pyproject.toml ./
RUN python -m venv .venv \
 && .venv/bin/pip install --no-cache-dir --disable-pip-version-check "pip>=24" \
 && .venv/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.lock \
 && .venv/bin/python -c "import pyspark, sys; sys.exit(pyspark.__version__ != '${SPARK_VERSION}' and 'pyspark ' + pyspark.__version__ + ' != SPARK_VERSION ${SPARK_VERSION}')"
ENV SPARK_HOME=/app/.venv/lib/python3.11/site-packages/pyspark \
    SPARK_NO_DAEMONIZE=1
# the master and workers log to stdout (docker logs); their ports come from the compose command lines
CMD ["bash", "-c", "exec \"$SPARK_HOME/bin/spark-class\" org.apache.spark.deploy.master.Master"]

FROM spark AS harness
COPY . /app
# setup.sh is idempotent: the venv above is reused (same lock stamp), it adds the harness and fetches the jars
RUN ./setup.sh
ENV BENCH_IN_CONTAINER=1
CMD ["bench", "--help"]
