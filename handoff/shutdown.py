"""Whether this web process has been asked to stop (SIGTERM: a deploy or a restart).

Set by the gunicorn worker (handoff/gunicorn_worker.py); long polls of the event feed end
early when it is, answering what they have, so the process stops within a second instead
of holding its graceful timeout (20 s) and then cutting connectors off mid-poll."""
import threading

stopping = threading.Event()
