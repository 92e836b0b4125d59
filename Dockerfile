# syntax=docker/dockerfile:1
# One image for all four services (and the one-shot topic/seed jobs). The command picks the process:
#   docker run IMAGE python -m komponent_registration      (default: catalogue)
# Stages: `rules` fetches the official e-invoice validation artefacts with Maven (billing validates every
# invoice against them and refuses to send without them); `build` installs the locked environment with uv;
# the final stage carries only the venv, the sources, the rules and the fonts, and runs as a non-root user.

# --- official e-invoice rules (Peppol BIS 3.0, OIOUBL, UBL 2.1 XSDs) from Maven Central -----------------
FROM maven:3.9-eclipse-temurin-17 AS rules
# The fetch script needs mvn, java and unzip; the Maven image lacks only unzip.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends unzip \
    && rm -rf /var/lib/apt/lists/*
COPY services/billing/tools/fetch_einvoice_rules.sh /tmp/fetch_einvoice_rules.sh
# The script pins every artefact version, so the same rules land in every build.
RUN EINVOICE_RULES_DIR=/opt/einvoice-rules bash /tmp/fetch_einvoice_rules.sh \
    && rm -rf /opt/einvoice-rules/jars /root/.m2

# --- locked Python environment -------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS build
# Same uv as ./dev, so `--frozen` reads uv.lock exactly as the developers' machines do.
RUN pip install --no-cache-dir "uv==0.13.9"
ENV UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON=/usr/local/bin/python3.11
WORKDIR /app
# Manifests first: the dependency layer is rebuilt only when the lock or a member's pyproject changes.
COPY pyproject.toml uv.lock ./
COPY contracts/pyproject.toml contracts/
COPY runtime/pyproject.toml runtime/
COPY services/catalogue/pyproject.toml services/catalogue/
COPY services/registration/pyproject.toml services/registration/
COPY services/billing/pyproject.toml services/billing/
COPY services/notifications/pyproject.toml services/notifications/
RUN uv sync --frozen --no-dev --no-install-workspace
# Then the sources; workspace members are installed editable, pointing at /app, which the final stage
# keeps at the same path (SQL migrations are read from the package folders at start-up).
COPY contracts contracts
COPY runtime runtime
COPY services services
RUN uv sync --frozen --no-dev

# --- runtime image -------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm
# DejaVu Sans is embedded in every invoice PDF (core PDF fonts cannot print "–" or "€").
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 komponent \
    && useradd --system --uid 10001 --gid komponent --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin komponent \
    && install -d -o komponent -g komponent /var/lib/komponent/access-point
WORKDIR /app
COPY --from=build /app /app
COPY --from=rules /opt/einvoice-rules /opt/einvoice-rules
# Sources and venv stay root-owned and read-only for the service user; nothing is written under /app,
# so Kubernetes can mount the root filesystem read-only (bytecode was compiled at build time). The one
# place a service writes is billing's e-invoice folder (FolderAccessPoint), owned by the service user so
# that a volume mounted there starts out writable.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    EINVOICE_RULES_DIR=/opt/einvoice-rules \
    BILLING_PDF_FONT_DIR=/usr/share/fonts/truetype/dejavu \
    BILLING_ACCESS_POINT_DIR=/var/lib/komponent/access-point \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=8000
USER 10001:10001
EXPOSE 8000
# Liveness only (the process answers HTTP); readiness (database, broker, migrations) is for orchestrators.
# python's urllib, because the slim image has neither curl nor wget. The one-shot jobs (topics, seed)
# run without an HTTP server: compose disables the check for them.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('HTTP_PORT', '8000'), timeout=2)"]
CMD ["python", "-m", "komponent_catalogue"]
