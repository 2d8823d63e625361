"""The floors for bench/wrk_run.py, as gunicorn's sync workers serve them (`gunicorn -k sync
-w 2 bench.floor_app:app`). Nothing of the service is loaded:

- `GET /healthz`: a bare Flask JSON endpoint, the floor of goal 4;
- `POST /voice/handoff`: what any voice webhook does at least, with nothing stored: read
  Twilio's form, check its signature with the twilio library, answer TwiML built with it.
  How far this falls below `/healthz` bounds what goal 1 (the webhook at 60 % of
  `/healthz`) can reach in Flask at all.
"""
import os

from flask import Flask, Response, jsonify, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

app = Flask(__name__)
validator = RequestValidator(os.environ.get("TWILIO_AUTH_TOKEN", ""))


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


@app.post("/voice/handoff")
def voice_handoff():
    if not validator.validate(request.url, request.form, request.headers.get("X-Twilio-Signature", "")):
        return Response("forged", status=403)
    answer = VoiceResponse()
    answer.dial().sip(f"sip:{request.form['destination']}@sbc.example.com")
    return Response(str(answer), mimetype="text/xml")
