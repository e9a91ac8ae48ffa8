# meta-watcher in a container: docker compose up -d (see compose.yaml and README "Docker").
# Config, database and OAuth2 tokens live in the /data volume.

# Build stage: install the package exactly as the README does, into a virtualenv.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/meta-watcher
ENV PATH=/opt/meta-watcher/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md rules.yaml ./
COPY watcher ./watcher
COPY examples ./examples
RUN python3 -m pip install .

# Runtime stage: the same base image, the virtualenv, a non-root user.
FROM python:3.11.11-slim-bookworm
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin meta-watcher \
    && mkdir /data \
    && chown meta-watcher:meta-watcher /data \
    && chmod 0700 /data
COPY --from=build /opt/meta-watcher /opt/meta-watcher
# platformdirs follows XDG: the config is /data/meta-watcher/config.yaml, the database and
# tokens are in /data/meta-watcher/.
ENV PATH=/opt/meta-watcher/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    XDG_CONFIG_HOME=/data \
    XDG_DATA_HOME=/data \
    XDG_STATE_HOME=/data \
    XDG_CACHE_HOME=/tmp
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# meta-watcher exits cleanly on SIGTERM (docker stop): the mail in hand is committed first.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=60s --timeout=15s --start-period=120s --retries=3 \
    CMD ["meta-watcher", "health"]
ENTRYPOINT ["meta-watcher"]
CMD ["run"]
