# One image for Trading Brain: `trading-brain up` runs the Dagster webserver, daemon and code server.
# State (config, warehouse, Dagster storage) lives in the /home/trader/home volume.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 TRADING_BRAIN_HOME=/home/trader/home
RUN apt-get update && apt-get install -y --no-install-recommends libseccomp2 tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 trader

WORKDIR /opt/trading-brain
COPY pyproject.toml README.md ./
COPY trading_brain ./trading_brain
COPY strategies ./strategies
COPY analyses ./analyses
RUN pip install .

USER trader
VOLUME ["/home/trader/home"]
EXPOSE 3000
# The sandbox needs seccomp and Landlock (Docker's default profile allows both); network
# namespaces are blocked there, so the worker relies on seccomp for the network (reference/sandbox.md).
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["sh", "-c", "trading-brain init --if-needed && exec trading-brain up --host 0.0.0.0 --port 3000"]
