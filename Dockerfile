# newswatch as a container: `newswatch run` (crawler, scheduler, delivery, /healthz, /metrics).
#
#   docker build -t newswatch .
#   docker run -d --name newswatch --stop-timeout 40 \
#       -v newswatch-data:/data -v "$PWD/config:/app/config:ro" \
#       -e WEBHOOK_SECRET -p 127.0.0.1:9180:9180 newswatch
#
# The archive lives on the /data volume; the config is /app/config/newswatch.toml (the repo's
# config/ is the default, a mount replaces it). The config says where to listen and where the
# archive is through ${NEWSWATCH_LISTEN:-...} and ${NEWSWATCH_ARCHIVE:-...}, set below.
# docs/operations.md has the details (compose, backups, upgrades, monitoring).

# --- build: install newswatch and its dependencies into a virtualenv -----------------------
FROM python:3.11.14-slim-bookworm AS build

# (pip compiles the installed modules to bytecode here: the runtime user cannot write it.)
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# The pip of older Python images crashes resolving trafilatura: upgrade it first, on purpose
# to the newest (the project's own dependencies are bounded in pyproject.toml).
# (`python3` here is the image's: /opt/venv/bin comes first on PATH only once it exists.)
# hadolint ignore=DL3013
RUN python3 -m venv /opt/venv \
    && python -m pip install --no-cache-dir --upgrade pip

WORKDIR /src
COPY pyproject.toml README.md ./
COPY crawler/ crawler/
COPY scheduler/ scheduler/
# A regular (non-editable) install, without the test extras.
RUN python -m pip install --no-cache-dir . \
    && newswatch --help > /dev/null

# --- runtime ---------------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm

LABEL org.opencontainers.image.title="newswatch" \
      org.opencontainers.image.description="News monitoring and alerts" \
      org.opencontainers.image.licenses="MIT"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NEWSWATCH_CONFIG=/app/config/newswatch.toml \
    NEWSWATCH_LISTEN=0.0.0.0:9180 \
    NEWSWATCH_ARCHIVE=/data/newswatch.db

RUN groupadd --system --gid 10001 newswatch \
    && useradd --system --uid 10001 --gid newswatch --create-home \
       --home-dir /home/newswatch --shell /usr/sbin/nologin newswatch \
    && mkdir -p /data \
    && chown newswatch:newswatch /data

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# The default config; mount your own directory over /app/config (read-only is fine).
COPY config/ /app/config/

# numeric, so runtimes can verify it is not root (runAsNonRoot); 10001 is newswatch
USER 10001:10001

# The archive (SQLite with its -wal and -shm files). A new named volume takes the
# ownership above (uid 10001); a bind mount must be writable by uid 10001.
VOLUME /data

EXPOSE 9180

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9180/healthz', timeout=4)"]

# newswatch finishes the running pass, flushes due deliveries and exits 0 (within 30 s):
# give it that long: `docker run --stop-timeout 40` or compose's `stop_grace_period: 40s` (the
# default 10 s may cut a pass short; nothing archived or queued is lost either way).
STOPSIGNAL SIGTERM

ENTRYPOINT ["newswatch"]
CMD ["run"]
