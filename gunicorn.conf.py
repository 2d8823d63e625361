"""gunicorn settings for the `web` process (Procfile: gunicorn -c gunicorn.conf.py app:app).

Worker model: threads (gthread). Connectors long-poll the event feed for up to 30 s; each
poll holds one thread mostly blocked in Redis, so 2 processes x 64 threads leave room for
50 pollers while voice webhooks keep getting threads of their own. Tune with
WEB_CONCURRENCY and WEB_THREADS.
"""
import os

from handoff.config import Config
from handoff.logs import gunicorn_logconfig
from handoff.metrics import process_exited, remove_stale

_config = Config.from_env()

bind = f"0.0.0.0:{_config.port}"
worker_class = "gthread"
workers = _config.web_concurrency
threads = _config.web_threads
# Twilio gives up after 15 s; a long poll lasts at most 30 s plus a slice.
timeout = 45
graceful_timeout = 20
keepalive = 5
# The request line carries only short fields: /voice/handoff takes its long values in the form
# body (README, "Pointing Twilio at it").
limit_request_line = 4094
accesslog = "-"
errorlog = "-"
# The request id each answer carries (web/observability.py) ties an access line to the app's.
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'
# LOG_FORMAT=json: gunicorn's own lines as JSON too (handoff/logs.py).
logconfig_dict = gunicorn_logconfig(_config.log_format) or {}

_embedded = None


def on_starting(server):
    """Without REDIS_URL, start the embedded Valkey once, in the master, before workers fork."""
    global _embedded
    # Metrics: every process of this run counts into one directory; start it clean.
    os.makedirs(_config.metrics_dir, exist_ok=True)
    remove_stale(_config.metrics_dir)
    if _config.redis_url:
        return
    from handoff.redis_server import ensure_embedded

    url, _embedded = ensure_embedded(_config.data_dir)
    os.environ["REDIS_URL"] = url  # what the workers' Config.from_env() will read
    server.log.info("using embedded Valkey at %s (data in %s)", url, _config.data_dir)


def on_exit(server):
    if _embedded is not None:
        _embedded.stop()


def child_exit(server, worker):
    """A worker is gone: its open long polls stop counting in /metrics."""
    process_exited(_config.metrics_dir, worker.pid)
