# syntax=docker/dockerfile:1
# One image for every pickup process: api, worker, notifier, operator and the hook jobs
# (migrate, bootstrap). The process is chosen by the arguments: `pickup api`, `pickup worker`...
#
# Build:  docker build -t pickup:0.1.0 .
# Runs as UID/GID 10001 with a read-only root filesystem; only /tmp must be writable
# (the chart mounts an emptyDir there).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- builder: resolve nothing, install exactly what uv.lock says -----------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/pickup/venv

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /src

# Dependencies first: this layer is rebuilt only when the lock changes, not on every code edit.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# Then the project itself, installed as a wheel (not editable) so /src is not needed at run time.
COPY README.md ./
COPY services ./services
COPY web ./web
COPY migrations ./migrations
COPY operators ./operators
RUN uv sync --frozen --no-dev --no-editable

# --- runtime: the interpreter, the virtualenv, nothing else ------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="pickup" \
      org.opencontainers.image.description="Order-ahead pickup ordering platform" \
      org.opencontainers.image.licenses="Apache-2.0"

# pip, setuptools and wheel are build tools: the runtime installs nothing.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
    && groupadd --system --gid 10001 pickup \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin pickup

# Owned by root and not writable by the process: the code cannot be changed at run time.
COPY --from=builder /opt/pickup/venv /opt/pickup/venv

# Bytecode was compiled at build time; HOME and every temporary file live on /tmp, the only
# writable path under a read-only root filesystem.
ENV PATH=/opt/pickup/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    PICKUP_HTTP_HOST=0.0.0.0

WORKDIR /tmp
USER 10001:10001
EXPOSE 8000

ENTRYPOINT ["pickup"]
CMD ["api"]
