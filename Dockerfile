# One image for Trading Brain; deploy/compose.yaml runs it three times (code server, webserver,
# daemon: deploy/entrypoint.sh ROLE). Dependencies come from requirements.lock with sha256 hashes
# (pip --require-hashes: a changed or substituted wheel fails the build); the project itself is
# installed from this source tree without dependencies. Runs as the non-root user `trader`.
# The sandbox worker needs seccomp and Landlock in the container: see deploy/RUNBOOK.md
# ("Sandbox in a container"); the code server checks them at start and refuses to run otherwise.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    TRADING_BRAIN_HOME=/home/trader/home DAGSTER_HOME=/home/trader/home/var/dagster-compose
RUN apt-get update && apt-get install -y --no-install-recommends libseccomp2 tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin trader \
    && python -m venv /opt/venv

WORKDIR /opt/trading-brain
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY trading_brain ./trading_brain
COPY strategies ./strategies
COPY analyses ./analyses
COPY deploy/entrypoint.sh deploy/healthcheck.sh deploy/preflight.py \
     deploy/dagster.postgres.yaml deploy/workspace.yaml ./deploy/
RUN pip install --no-deps --no-build-isolation . && pip check \
    && mkdir -p /home/trader/home && chown trader:trader /home/trader/home

USER trader
VOLUME ["/home/trader/home"]
EXPOSE 3000 4000
HEALTHCHECK --interval=30s --timeout=10s --start-period=90s --retries=3 \
    CMD ["/opt/trading-brain/deploy/healthcheck.sh"]
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/trading-brain/deploy/entrypoint.sh"]
CMD ["webserver"]
