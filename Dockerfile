# The Procfile's processes as one image, for platforms that build images (Render, Fly.io,
# Cloud Run, Kubernetes, docker compose). The default command is the Procfile's `web`; run the
# `worker` from the same image with the Procfile's worker command (docker-compose.yml does).
# tests/test_packaging.py checks both commands against the Procfile.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=5000 \
    DATA_DIR=/data \
    LOG_FORMAT=json

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.txt

COPY . .
RUN useradd --create-home --uid 10001 handoff && mkdir -p /data && chown handoff /data
USER handoff
# The configuration snapshot (and, without REDIS_URL, the embedded Valkey's data) and the
# metrics samples every process writes: share it between web and worker.
VOLUME /data
EXPOSE 5000

CMD ["gunicorn", "-c", "gunicorn.conf.py", "app:app"]
