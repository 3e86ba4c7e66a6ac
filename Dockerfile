# The reference service in a container: `docker build -t pgarena .` then
# `docker run -e DATABASE_URL=postgresql://user:pass@host/db -e PGARENA_STACK=async-raw -p 8000:8000 pgarena`.
# PGARENA_STACK picks the stack (`pgarena stacks` lists them); every PGARENA_* setting of the
# README's Configuration table works the same way. compose.yaml runs it beside PostgreSQL,
# PgBouncer, Prometheus and Locust.
#
# Two stages: the first builds a virtual environment with pip, the second copies only that
# environment onto a clean image of the same Python, so no compiler, pip cache or source
# tree ships. The image runs as an unprivileged user and reports its health from /health.

# One pinned base for both stages (Debian bookworm, whose pgbouncer is 1.18).
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m venv /opt/pgarena
COPY pyproject.toml README.md ./
COPY src ./src
# Every stack and server, and Locust for `pgarena locust` masters and workers; no embedded
# PostgreSQL: a container is given DATABASE_URL.
RUN /opt/pgarena/bin/pip install --no-cache-dir ".[psycopg2,psycopg,servers,locust]"

FROM ${PYTHON_IMAGE}
# pgbouncer: `pgarena serve --pooler pgbouncer` starts it, and compose.yaml runs it from this
# image. Debian's version, whatever the current point release of bookworm is.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends pgbouncer \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 pgarena \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --create-home pgarena
COPY --from=build /opt/pgarena /opt/pgarena
ENV PATH=/opt/pgarena/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PGARENA_STACK=async \
    PGARENA_HOST=0.0.0.0 \
    PGARENA_PORT=8000
# By number: Kubernetes' runAsNonRoot can check a number, not a name.
USER 10001:10001
WORKDIR /home/pgarena
EXPOSE 8000
# 200 from /health means the service reaches PostgreSQL; 503 (or nothing) is unhealthy.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/health' % os.environ.get('PGARENA_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]
CMD ["pgarena", "serve"]
