"""The floor for bench/wrk_run.py: a bare Flask JSON endpoint, as gunicorn's sync workers
serve it (`gunicorn -k sync -w 2 bench.floor_app:app`). Nothing of the service is loaded."""
from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")
