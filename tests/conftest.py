"""Fixtures: one real embedded Valkey per test session, flushed before every test."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading

import pytest
from werkzeug.serving import make_server

# app.py builds a module-level app from the environment, and it counts metrics under DATA_DIR
# (./var by default): this run gets its own, so nothing else running from the same checkout (a
# server, a benchmark, another run) adds to the gauges the tests read.
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="handoff-test-data-"))

from app import create_app
from handoff import jobs
from handoff.config import Config
from handoff.redis_server import EmbeddedServer
from tests import response_conformance
from tests.helpers import API_KEY, AUTH_TOKEN, BASE_URL, Api, Twilio, flush


@pytest.fixture(scope="session", autouse=True)
def answers_match_the_api_document():
    """Every /v1 answer a test receives is one /v1/openapi.json promises
    (tests/response_conformance.py)."""
    with response_conformance.checking():
        yield


@pytest.fixture(scope="session")
def valkey():
    data = tempfile.mkdtemp(prefix="handoff-test-valkey-")
    server = EmbeddedServer(data).start()
    yield server
    server.stop()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def own_valkey(tmp_path):
    """A Valkey of this test's own, for tests that stop it mid-way (Redis down)."""
    server = EmbeddedServer(tmp_path / "valkey").start()
    yield server
    server.stop()


@pytest.fixture
def app_on_own_valkey(config, own_valkey, tmp_path):
    """The app on `own_valkey`, with a data directory (its outage snapshot) of its own."""
    return create_app(config.with_overrides(redis_url=own_valkey.url, data_dir=str(tmp_path / "web")))


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path / "data")


@pytest.fixture
def config(valkey, data_dir):
    return Config(
        redis_url=valkey.url,
        data_dir=data_dir,
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token=AUTH_TOKEN,
        public_base_url=BASE_URL,
        api_keys=(API_KEY, "second-key"),
        sip_domain="sbc.example.com",
        webhook_retry_intervals=(0, 0),
    )


@pytest.fixture
def app(config, valkey):
    flush(valkey.url)
    application = create_app(config)
    jobs.use(application.extensions["handoff"])
    yield application
    jobs.use(None)


@pytest.fixture
def services(app):
    return app.extensions["handoff"]


class HttpResponse:
    """A `requests` response read the way tests read Flask's test responses."""

    def __init__(self, response):
        self.raw = response
        self.status_code = response.status_code
        self.headers = response.headers
        self.mimetype = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        self.data = response.content

    def get_json(self):
        return self.raw.json()

    def get_data(self, as_text=False):
        return self.raw.text if as_text else self.raw.content


class HttpClient:
    """Real HTTP to a server on loopback, with the test client's call shape."""

    def __init__(self, base_url):
        import requests

        self.base_url = base_url
        self.session = requests.Session()

    def open(self, method, path, json=None, data=None, headers=None, query_string=None):
        response = self.session.request(method, self.base_url + path, json=json, data=data,
                                        headers=headers, params=query_string, timeout=30,
                                        allow_redirects=False)
        answer = HttpResponse(response)
        response_conformance.check(method, path, answer)
        return answer

    def __getattr__(self, verb):
        if verb not in ("get", "post", "put", "patch", "delete"):
            raise AttributeError(verb)
        return lambda path, **kwargs: self.open(verb.upper(), path, **kwargs)


@pytest.fixture
def over_http():
    """Story modules override this to True: the same tests then go over real HTTP."""
    return False


@contextlib.contextmanager
def serving(application):
    """Serve an app on a real loopback socket (threaded) for as long as the block runs."""
    server = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def client_of(over_http):
    """A client for an app: Flask's test client, or real HTTP to a threaded server."""
    with contextlib.ExitStack() as servers:
        def client(application):
            if not over_http:
                return application.test_client()
            return HttpClient(servers.enter_context(serving(application)))

        yield client


@pytest.fixture
def client(app, client_of):
    """The app, for requests sent as they are (no key or signing added)."""
    return client_of(app)


@pytest.fixture
def api(app, client_of):
    return Api(client_of(app))


@pytest.fixture
def twilio(app, client_of):
    return Twilio(client_of(app))


os.environ.setdefault("TWILIO_VALIDATE", "true")


@pytest.fixture
def live_server(app):
    """The app over real HTTP on loopback (threaded), for tests with concurrent clients."""
    with serving(app) as url:
        yield url
