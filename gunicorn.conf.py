"""gunicorn settings for the `web` process (Procfile: gunicorn -c gunicorn.conf.py app:app).

Worker model: gevent, through handoff/gunicorn_worker.py. A connection costs a greenlet,
not a thread: with a thread per connection (gthread) ~130 clients trickling a request, or
128 idle long polls, pinned every thread and Twilio's voice webhooks timed out at 15 s.
Each process serves up to WEB_CONNECTIONS connections at once, gives a client
WEB_READ_TIMEOUT seconds to send its request, and holds at most HANDOFF_MAX_LONG_POLLS long
polls (the rest get 429). Tune the process count with WEB_CONCURRENCY.
"""
import os

from handoff.config import Config
from handoff.logs import gunicorn_logconfig
from handoff.metrics import process_exited, remove_stale

_config = Config.from_env()

bind = f"0.0.0.0:{_config.port}"
worker_class = "handoff.gunicorn_worker.BoundedGeventWorker"
workers = _config.web_concurrency
worker_connections = _config.web_connections
# Twilio gives up after 15 s; a long poll lasts at most 30 s plus a slice.
timeout = 45
graceful_timeout = 20
# Keep-alive on; how long an idle kept-alive connection is held is WEB_READ_TIMEOUT under
# the gevent worker (handoff/gunicorn_worker.py).
keepalive = 5
# The request line carries only short fields: /voice/handoff takes its long values in the form
# body (README, "Pointing Twilio at it").
limit_request_line = 4094
accesslog = "-"
errorlog = "-"
# No access line for each answered long poll of the event feed (handoff/gunicorn_worker.py).
logger_class = "handoff.gunicorn_worker.AccessLogger"
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
