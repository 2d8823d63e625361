"""The "Call handoffs" page: destinations managed in a browser, on the same service as /v1.

Server-rendered forms that work without JavaScript (POST → redirect → GET); the script only
hides fields that do not apply, adds header, route and opening-hours rows and confirms
deletes in a dialog. People
sign in once with an API key; the session cookie keeps a fingerprint of it, never the key,
so removing a key from HANDOFF_API_KEYS signs its sessions out, and names a session kept in
Redis, so signing out ends it for every copy of the cookie.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from marshmallow import Schema, ValidationError
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from handoff import adk
from handoff.config import Config
from handoff.destinations import MAX_SIMULTANEOUS, Destinations
from handoff.errors import ConfirmationRequired, Conflict, NotFound, TooManyRequests, ValidationFailed
from handoff.hours import DAYS
from handoff.services import REDIS_ERRORS
from handoff.sessions import StudioSessions
from schemas.common import patch_schema
from schemas.destinations import DestinationInput, load_destination

from . import throttling
from .context import matching_key, services
from .studio_settings import (
    ADVANCED_DEFAULTS,
    ADVANCED_ERROR_KEYS,
    DAY_NAMES,
    INTROS,
    ON_FAILURE,
    TRANSFER_MODES,
    hours_errors,
    hours_fields,
    hours_value,
    read_hours,
    settings_lines,
    time_zones,
    zone_known,
)

bp = Blueprint("studio", __name__, url_prefix="/studio", template_folder="templates",
               static_folder="static/studio", static_url_path="/static")

METHOD_LABELS = {"sip_refer": "SIP REFER", "sip_invite": "SIP INVITE", "sip_bye": "SIP BYE",
                 "twilio_flex": "Twilio Flex"}
ENCRYPTION_LABELS = {"tls_srtp": "TLS + SRTP (encrypted)", "udp_rtp": "UDP + RTP (not encrypted)"}
WARNING_LABELS = {"method_mismatch": "Method mismatch", "no_default": "No default",
                  "route_not_editable": "Route not editable",
                  "sip_headers_unsupported": "SIP headers unsupported", "closed": "Closed now",
                  "caller_id_missing": "No caller ID"}
# Cards on one page: at thousands of destinations the page stays quick ("More destinations").
CARDS_PER_PAGE = 100
# Rows a browser without JavaScript gets to type new headers into.
BLANK_HEADER_ROWS = 3
# Spare "Route 2", "Route 3"… rows (simultaneous ring) offered without JavaScript.
BLANK_ROUTE_ROWS = 2
SETTINGS_HELPERS = {"transfer_modes": TRANSFER_MODES, "failure_choices": ON_FAILURE, "intros": INTROS,
                    "day_names": DAY_NAMES, "time_zones": time_zones, "zone_known": zone_known,
                    "settings_lines": settings_lines}
PUBLIC_ENDPOINTS = {"studio.sign_in", "studio.static"}
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


# -- session cookie -------------------------------------------------------------------
class StudioSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, marked Secure whenever the request came over https.

    A fixed SESSION_COOKIE_SECURE would either lose the cookie on plain-http local
    development or send it in clear behind TLS; ProxyFix has already applied
    X-Forwarded-Proto, so `request.is_secure` is what the browser used."""

    def get_cookie_secure(self, app) -> bool:
        return super().get_cookie_secure(app) or (has_request_context() and request.is_secure)

    def open_session(self, app, request):
        # Twilio and API clients never send the studio cookie: an empty session for them,
        # without building a signing serializer on every webhook (~5 % of a voice handoff's
        # CPU in a py-spy profile of bench/wrk_run.py's load).
        if app.config["SESSION_COOKIE_NAME"] not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def session_secret(config: Config) -> bytes:
    """A signing key every process derives alike from secrets the service already holds,
    so sessions survive restarts and span gunicorn workers without another setting."""
    material = "\n".join((config.twilio_auth_token, *sorted(config.api_keys))).encode()
    return hmac.new(material, b"handoff studio session cookie v1", hashlib.sha256).digest()


@bp.record_once
def configure_sessions(state) -> None:
    app = state.app
    if not app.secret_key:
        app.secret_key = session_secret(app.extensions["handoff"].config)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    app.session_interface = StudioSessionInterface()


# -- sign-in --------------------------------------------------------------------------
def _secret_bytes() -> bytes:
    secret = current_app.secret_key
    return secret if isinstance(secret, bytes) else str(secret).encode()


def key_fingerprint(key: str) -> str:
    return hmac.new(_secret_bytes(), b"studio api key\n" + key.encode(), hashlib.sha256).hexdigest()


def server_sessions() -> StudioSessions:
    return StudioSessions(services().store, int(current_app.permanent_session_lifetime.total_seconds()))


def signed_in() -> bool:
    if "signed_in" in g:
        return g.signed_in
    g.signed_in = False  # what an error page rendered after a store failure below shows
    held = str(session.get("key", "")).encode()
    matched = False
    for key in services().config.api_keys:
        matched |= hmac.compare_digest(held, key_fingerprint(key).encode())
    # The cookie alone is not enough: its session must still exist (sign-out ends it).
    live = bool(held) and matched and hmac.compare_digest(
        (server_sessions().fingerprint(str(session.get("sid", ""))) or "").encode(), held)
    g.signed_in = live
    return live


def start_session(key: str) -> None:
    # A fresh session (and CSRF token) at sign-in: nothing planted before it survives.
    session.clear()
    session.permanent = True
    session["key"] = key_fingerprint(key)
    session["sid"] = server_sessions().start(session["key"])
    session["csrf"] = secrets.token_urlsafe(32)
    g.pop("signed_in", None)


def end_session() -> None:
    server_sessions().end(str(session.get("sid", "")))
    session.clear()
    g.pop("signed_in", None)


def safe_next(target: str | None) -> str | None:
    """Where to go after signing in: a page of this studio only, never another site. No
    control characters: a CR or LF cannot go into the Location header (Werkzeug raises, a
    500), and browsers drop tabs and newlines from a URL before reading it."""
    if not target or not target.startswith("/studio/") or target.startswith("//") or "\\" in target:
        return None
    if any(c < " " or "\x7f" <= c <= "\x9f" for c in target):
        return None
    return target


# -- CSRF -----------------------------------------------------------------------------
def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    expected = str(session.get("csrf", "")).encode()
    given = request.form.get("csrf_token", "").encode()
    if not expected or not hmac.compare_digest(given, expected):
        abort(400, "This form has expired or did not come from this page. Go back, reload and try again.")


def https_address() -> str | None:
    """This page's https address when a router says it was asked for over plain http while
    PUBLIC_BASE_URL says the service is served over https (Heroku's router answers http://
    too): over http the sign-in form sends the key in clear text and the session cookie
    goes out without Secure. None without a router (local development: nothing to move to)."""
    base = services().config.public_base_url
    if request.is_secure or not base or not base.startswith("https://"):
        return None
    if "X-Forwarded-Proto" not in request.headers:
        return None
    query = request.query_string.decode("latin-1")  # as it came, still percent-encoded
    return base + quote(request.path, safe="/:@!$&'()*+,;=~") + (f"?{query}" if query else "")


@bp.before_request
def guard():
    if request.endpoint == "studio.static":
        return None
    secure = https_address()
    if secure:
        # A form posted over http is not acted on (and not posted again): the browser fetches
        # the page over https, and the user sends it from there.
        return redirect(secure, 301 if request.method in ("GET", "HEAD") else 303)
    if request.method == "POST":
        check_csrf()
    if request.endpoint not in PUBLIC_ENDPOINTS and not signed_in():
        back = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("studio.sign_in", next=back), 303)
    return None


@bp.after_request
def page_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.is_secure:
        # Once on https, the browser never asks for the page over http again.
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    if request.endpoint != "studio.static":
        # Pages show configuration and carry a CSRF token: no shared or back-button caches.
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def template_helpers() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "method_labels": METHOD_LABELS,
            "encryption_labels": ENCRYPTION_LABELS, "warning_labels": WARNING_LABELS,
            "signed_in": signed_in, **SETTINGS_HELPERS}


# -- the Add/Edit form ----------------------------------------------------------------
@dataclass
class HandoffForm:
    """The Add/Edit form as the user sees it: their values as typed, and what was refused."""

    values: dict[str, str]
    headers: list[dict[str, str]]
    destination_id: str | None = None  # None while adding
    errors: dict[str, list[str]] = field(default_factory=dict)
    header_errors: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    # Simultaneous ring (SIP INVITE): the routes after the first, as typed.
    more_routes: list[str] = field(default_factory=list)
    # The weekly opening-hours editor: each day's [opens, closes] ranges, as typed.
    windows: dict[str, list[list[str]]] = field(default_factory=lambda: {day: [] for day in DAYS})

    # Fields and the value each has when the form does not send it: the script disables
    # an advanced field that does not apply to the method or transfer mode, so it is unset.
    DEFAULTS = {"name": "", "description": "", "method": "sip_refer", "route": "", "encryption": "tls_srtp",
                "ring_timeout": "30", "fallback": "", **ADVANCED_DEFAULTS}
    TEXT_FIELDS = tuple(name for name in DEFAULTS if name not in ("route", "detect_voicemail", "hours"))

    @classmethod
    def blank(cls, integration: dict) -> HandoffForm:
        values, windows = hours_fields(None)
        return cls({**cls.DEFAULTS, "method": integration["required_method"] or "sip_refer", **values}, [],
                   windows=windows)

    @classmethod
    def of(cls, destination: dict) -> HandoffForm:
        # As `read` will take the values back (stripped), so an untouched form sends what it showed.
        values = {name: cls.DEFAULTS[name] if destination.get(name) is None else str(destination[name]).strip()
                  for name in cls.TEXT_FIELDS}
        values["description"] = values["description"].replace("\r\n", "\n")
        routes = destination.get("route") or []
        routes = list(routes) if isinstance(routes, list) else [routes]
        values["route"] = routes[0] if routes else ""
        values["detect_voicemail"] = "true" if destination.get("detect_voicemail") else ""
        hours, windows = hours_fields(destination.get("hours"))
        headers = [{"name": h["name"].strip(), "value": h["value"].strip()} for h in destination["sip_headers"]]
        return cls({**values, **hours}, headers, destination["id"], more_routes=routes[1:], windows=windows)

    @classmethod
    def read(cls, form: MultiDict, destination_id: str | None = None) -> HandoffForm:
        values = {name: form.get(name, cls.DEFAULTS[name]).strip() for name in cls.TEXT_FIELDS}
        # Browsers send a textarea's line breaks as CRLF (HTML's form submission rules).
        values["description"] = values["description"].replace("\r\n", "\n")
        # Route rows left blank (spares offered without JavaScript) are not routes.
        routes = [r.strip() for r in form.getlist("route") if r.strip()]
        values["route"] = routes[0] if routes else ""
        values["detect_voicemail"] = "true" if form.get("detect_voicemail") else ""
        hours, windows = read_hours(form)
        rows = zip(form.getlist("header_name"), form.getlist("header_value"))
        # Rows left blank (the spare ones offered without JavaScript) are not headers.
        headers = [{"name": n.strip(), "value": v.strip()} for n, v in rows if n.strip() or v.strip()]
        return cls({**values, **hours}, headers, destination_id, more_routes=routes[1:], windows=windows)

    @property
    def rows(self) -> list[dict[str, str]]:
        return self.headers + [{"name": "", "value": ""} for _ in range(BLANK_HEADER_ROWS)]

    @property
    def route_rows(self) -> list[str]:
        """The routes after the first, plus spare blank rows (for browsers without
        JavaScript), never more than Twilio rings at once."""
        spare = max(0, min(BLANK_ROUTE_ROWS, MAX_SIMULTANEOUS - 1 - len(self.more_routes)))
        return self.more_routes + [""] * spare

    def hour_rows(self, day: str) -> list[list[str]]:
        """A day's ranges plus one blank range to type a new one into."""
        return self.windows[day] + [["", ""]]

    @property
    def advanced_open(self) -> bool:
        """Whether "Advanced" opens by itself: something in it is set or refused."""
        return (any(self.values[name] != default for name, default in ADVANCED_DEFAULTS.items())
                or any(name in ADVANCED_ERROR_KEYS for name in self.errors))

    def payload(self, integration: dict) -> dict[str, Any]:
        """The fields this form sets, as DestinationInput reads them.

        Fields the form does not show for the chosen method (route for SIP BYE, encryption
        and ring timeout outside SIP INVITE) or that the integration manages (route) are
        left out, so a value hidden from the user can neither be saved nor refused. The
        advanced fields are always sent: the service refuses combinations that do not fit
        (a browser without JavaScript shows them all)."""
        v = self.values
        data: dict[str, Any] = {"name": v["name"], "description": v["description"], "method": v["method"],
                                "sip_headers": self.headers, "fallback": v["fallback"] or None}
        if integration["route_editable"] and v["method"] != "sip_bye":
            routes = [v["route"], *self.more_routes] if v["route"] else []
            data["route"] = routes if len(routes) > 1 else (routes[0] if routes else None)
        if v["method"] == "sip_invite":
            data["encryption"] = v["encryption"]
            # Text that is not a short run of ASCII digits ("²", 5,000 digits) goes to the
            # API's validation as it is, which names the field; int() would raise on it.
            ring = v["ring_timeout"]
            data["ring_timeout"] = int(ring) if re.fullmatch(r"[0-9]{1,6}", ring) else ring
        data.update(transfer_mode=v["transfer_mode"], on_failure=v["on_failure"], intro=v["intro"],
                    detect_voicemail=bool(v["detect_voicemail"]), caller_id=v["caller_id"] or None,
                    extension=v["extension"] or None, hold_audio_url=v["hold_audio_url"] or None,
                    hours=hours_value(v, self.windows))
        return data

    def refuse(self, fields: dict | None, message: str) -> None:
        """Keep a refusal's messages next to the fields they name."""
        for name, problems in (fields or {"form": [message]}).items():
            if name == "sip_headers" and isinstance(problems, dict):
                for index, row in problems.items():  # marshmallow keys nested errors by row
                    self.header_errors[int(index)] = row if isinstance(row, dict) else {"name": list(row)}
            elif name == "hours" and isinstance(problems, list):
                for part, messages in hours_errors([str(p) for p in problems]).items():
                    self.errors.setdefault(part, []).extend(messages)
            else:
                self.errors[name] = problems if isinstance(problems, list) else [str(problems)]

    def submit(self, schema: Schema, integration: dict, save: Callable[[dict], dict]) -> dict | None:
        """Validate and save; on refusal return None with the errors kept on the form."""
        try:
            return save(schema.load(self.payload(integration)))
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"form": exc.messages}
            self.refuse(messages, "check the highlighted fields")
        except (ValidationFailed, Conflict) as exc:
            self.refuse(exc.fields, exc.message)
        return None


def changes(current: dict, fields: dict, shown: dict) -> dict:
    """Only what the user changed: fields whose value differs from what the form, left
    untouched, sends (`shown`). The service checks integration rules against the fields a
    request sets, so resending untouched values would refuse an unrelated edit; and a value
    the page shows in its own way (hours without closed dates, a name with spaces around
    it) is not rewritten by saving an unrelated field."""
    return {name: value for name, value in fields.items() if shown.get(name, current.get(name)) != value}


def render_form(form: HandoffForm, destinations: list[dict], integration: dict):
    fallbacks = [d for d in destinations if d["id"] != form.destination_id]
    # What the saved destination is warned about (caller_id_missing is shown by Caller ID).
    saved_warnings = {w["code"]: w["message"] for d in destinations if d["id"] == form.destination_id
                      for w in d["warnings"]}
    status = 422 if form.errors or form.header_errors else 200
    return render_template("studio/form.html", form=form, integration=integration,
                           fallbacks=fallbacks, methods=list(METHOD_LABELS), max_routes=MAX_SIMULTANEOUS,
                           saved_warnings=saved_warnings), status


def card_url(destination_id: str) -> str:
    return url_for("studio.handoffs", _anchor=f"destination-{destination_id}")


def destinations() -> Destinations:
    return Destinations(services(), "page")


# -- pages ----------------------------------------------------------------------------
@bp.get("/")
def index():
    return redirect(url_for("studio.handoffs"))


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    next_page = safe_next(request.values.get("next"))
    if request.method == "GET" and signed_in():
        return redirect(request.script_root + next_page if next_page else url_for("studio.handoffs"))
    if request.method == "POST":
        try:
            throttling.refuse_if_throttled()
            given = request.form.get("api_key", "")
            key = matching_key(given)
            if key is not None:
                start_session(key)
                return redirect(request.script_root + next_page if next_page else url_for("studio.handoffs"), 303)
            if given:
                throttling.key_failed()
        except TooManyRequests as exc:
            return (render_template("studio/sign_in.html", next_page=next_page,
                                    error=f"Too many wrong keys from here. Try again in {exc.retry_after} seconds."),
                    429, {"Retry-After": str(exc.retry_after)})
        return render_template("studio/sign_in.html", next_page=next_page,
                               error="That is not an API key this service accepts."), 401
    return render_template("studio/sign_in.html", next_page=next_page)


@bp.post("/sign-out")
def sign_out():
    end_session()
    flash("Signed out.")
    return redirect(url_for("studio.sign_in"), 303)


@bp.get("/handoffs")
def handoffs():
    service = destinations()
    env = "live" if request.args.get("env") == "live" else "sandbox"
    try:
        items, next_cursor = service.page(CARDS_PER_PAGE, request.args.get("cursor") or None, env)
    except ValidationFailed:  # a stale or mangled link: start from the first card
        items, next_cursor = service.page(CARDS_PER_PAGE, None, env)
    return render_template("studio/handoffs.html", destinations=items, names=service.names(env),
                           integration=service.get_integration(), env=env, next_cursor=next_cursor)


@bp.route("/handoffs/new", methods=["GET", "POST"])
def add_handoff():
    service = destinations()
    integration = service.get_integration()
    if request.method == "GET":
        return render_form(HandoffForm.blank(integration), service.list(), integration)
    form = HandoffForm.read(request.form)
    created = form.submit(DestinationInput(), integration, service.create)
    if created is None:
        return render_form(form, service.list(), integration)
    flash(f"Added {created['name']}.")
    return redirect(card_url(created["id"]), 303)


@bp.route("/handoffs/<destination_id>/edit", methods=["GET", "POST"])
def edit_handoff(destination_id):
    service = destinations()
    current = service.get(destination_id)
    integration = service.get_integration()
    if request.method == "GET":
        return render_form(HandoffForm.of(current), service.list(), integration)
    form = HandoffForm.read(request.form, destination_id)
    shown = HandoffForm.of(current).payload(integration)

    def save(fields: dict) -> dict:
        changed = changes(current, fields, shown)
        # Nothing changed: no write, so no version recording a change nobody made.
        return service.update(destination_id, changed) if changed else current

    saved = form.submit(patch_schema(DestinationInput), integration, save)
    if saved is None:
        return render_form(form, service.list(), integration)
    flash(f"Saved {saved['name']}.")
    return redirect(card_url(destination_id), 303)


@bp.post("/handoffs/<destination_id>/duplicate")
def duplicate_handoff(destination_id):
    copy = destinations().duplicate(destination_id)
    flash(f"Added {copy['name']}, a copy. It is not the default.")
    return redirect(card_url(copy["id"]), 303)


@bp.post("/handoffs/<destination_id>/default")
def make_default(destination_id):
    destination = destinations().set_default(destination_id)
    flash(f"{destination['name']} is now the default: callers go there when nothing else answers.")
    return redirect(card_url(destination_id), 303)


@bp.route("/handoffs/<destination_id>/delete", methods=["GET", "POST"])
def delete_handoff(destination_id):
    """The confirm page browsers without JavaScript (or without <dialog>) use, and the
    endpoint the dialog posts to. The service itself refuses a name that is not exact."""
    service = destinations()
    destination = service.get(destination_id)
    typed, refusal = "", None
    if request.method == "POST":
        typed = request.form.get("confirm", "")
        try:
            service.delete(destination_id, typed)
        except ConfirmationRequired as exc:
            refusal = exc.message
        else:
            flash(f"Deleted {destination['name']}.")
            return redirect(url_for("studio.handoffs"), 303)
    return render_template("studio/delete.html", destination=destination, typed=typed,
                           refusal=refusal), 409 if refusal else 200


# -- handoffs.yaml (PolyAI ADK) ---------------------------------------------------------
@bp.get("/handoffs/export")
def export_handoffs():
    return Response(adk.export_yaml(destinations()), mimetype="application/yaml",
                    headers={"Content-Disposition": 'attachment; filename="handoffs.yaml"'})


@bp.route("/handoffs/import", methods=["GET", "POST"])
def import_handoffs():
    """Check first (a dry run lists every change), then import: all or nothing."""
    if request.method == "GET":
        return render_template("studio/import.html", changes=None, text="", error=None)
    upload = request.files.get("file")
    text = upload.read().decode("utf-8", "replace") if upload and upload.filename else request.form.get("yaml", "")
    apply = request.form.get("action") == "apply"
    try:
        result = adk.import_yaml(destinations(), text, load_destination, dry_run=not apply)
    except ValidationFailed as exc:
        return render_template("studio/import.html", changes=None, text=text, error=exc.message), 422
    if apply:
        flash(f"Imported handoffs.yaml: {len(result['changes'])} handoffs checked, nothing deleted.")
        return redirect(url_for("studio.handoffs"), 303)
    return render_template("studio/import.html", changes=result["changes"], text=text, error=None)


# -- errors as pages ------------------------------------------------------------------
@bp.errorhandler(NotFound)
def not_found(error: NotFound):
    return render_template("studio/message.html", title="Not found",
                           message="That destination does not exist (any more).",
                           detail=error.message), 404


@bp.errorhandler(BadRequest)
def bad_request(error: BadRequest):
    return render_template("studio/message.html", title="Form refused", message=error.description), 400


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_error):
    # A page for a person (the app's handler answers /v1's JSON error shape).
    return render_template("studio/message.html", title="Too large",
                           message="What was sent is over 1 MiB, more than this service accepts in one request. "
                                   "Split it up and send it in parts."), 413


def store_unreachable(_error):
    # Voice routes carry on from the snapshot; editing configuration has to wait for Redis.
    return render_template("studio/message.html", title="Temporarily unavailable",
                           message="The configuration store cannot be reached, so nothing can be changed "
                                   "right now. Calls are still handed off from the last known configuration."), 503


for _redis_error in REDIS_ERRORS:
    bp.register_error_handler(_redis_error, store_unreachable)


# The Conversations and Insights pages join this blueprint (same sign-in, CSRF, headers).
from . import studio_review  # noqa: E402,F401
