"""The Flask app factory, and `app` for `gunicorn app:app`."""
from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from handoff.config import Config
from handoff.preflight import config_warnings
from handoff.services import Services

log = logging.getLogger("handoff")


def create_app(config: Config | None = None) -> Flask:
    config = config or Config.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    from web.strict_json import StrictJSONProvider

    app.json = StrictJSONProvider(app)
    app.json.sort_keys = False
    app.extensions["handoff"] = Services(config)
    if not config.twilio_validate:
        log.warning("TWILIO_VALIDATE=false: Twilio signatures are NOT checked. Local development only!")
    for problem in config_warnings(config):
        log.warning(problem)

    from web import (  # noqa: F401
        api,
        chat,
        consult,
        errors,
        handoffs_yaml,
        health,
        openapi,
        polyai,
        routing,
        sms,
        studio,
        studio_routing,
        voice,
    )

    for blueprint in (health.bp, voice.bp, sms.bp, api.bp, chat.bp, openapi.bp, studio.bp, polyai.bp,
                      handoffs_yaml.bp, routing.bp, routing.voice_bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(consult.bp)
    errors.register(app)
    from web import observability

    observability.init_app(app, config)
    from web.feed_polls import FeedPolls

    # Behind a PaaS router, X-Forwarded-Proto/Host say what URL Twilio used (and signed).
    # Inside it, the event feed's long polls are answered without Flask (web/feed_polls.py).
    app.wsgi_app = ProxyFix(FeedPolls(app.wsgi_app, app), x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)
    return app


if not logging.getLogger().handlers:
    from handoff.logs import configure as configure_logging

    configure_logging(Config.from_env().log_format)

app = create_app()
