"""The outage snapshot shared by the processes of one deployment (gunicorn workers, the rq
worker): whichever process changed the configuration last, a caller meets what was live
when Redis went away."""
import itertools
import shutil

from app import create_app
from tests.helpers import Api, Twilio, add_destination, call_params, parse

CALLS = (f"CA{n:032d}" for n in itertools.count(1))


def refer_target(application) -> str:
    """Where a new call's handoff sends the caller."""
    root = parse(Twilio(application.test_client()).post("/voice/handoff", call_params(next(CALLS))))
    return root.find("Refer/Sip").text


def test_a_rollback_in_one_process_reaches_the_file_another_process_wrote(app_on_own_valkey, own_valkey):
    first = app_on_own_valkey
    second = create_app(first.extensions["handoff"].config)  # another gunicorn worker
    add_destination(Api(first.test_client()), "Billing", route="sip:old-pbx@pbx.example.com")
    assert refer_target(first).startswith("sip:old-pbx@")
    Api(second.test_client()).patch("/v1/destinations/billing", json={"route": "sip:new-pbx@pbx.example.com"})
    assert refer_target(second).startswith("sip:new-pbx@")
    # The new PBX misbehaves: roll back, through the first worker.
    assert Api(first.test_client()).post("/v1/config/rollback", json={"version": 1}).status_code == 200

    own_valkey.stop()
    booted_during_outage = create_app(first.extensions["handoff"].config)
    assert refer_target(booted_during_outage).startswith("sip:old-pbx@")


def test_a_process_that_missed_a_change_answers_from_the_newer_file(app_on_own_valkey, own_valkey):
    first = app_on_own_valkey
    second = create_app(first.extensions["handoff"].config)
    add_destination(Api(first.test_client()), "Billing", route="sip:old-pbx@pbx.example.com")
    assert refer_target(first).startswith("sip:old-pbx@")
    # The old PBX is switched off; the change goes through the other worker and is live.
    Api(second.test_client()).patch("/v1/destinations/billing", json={"route": "sip:new-pbx@pbx.example.com"})
    assert refer_target(second).startswith("sip:new-pbx@")

    own_valkey.stop()
    # The first worker served no call since the change: it knows the file is newer.
    assert refer_target(first).startswith("sip:new-pbx@")
    assert refer_target(second).startswith("sip:new-pbx@")


def test_a_snapshot_that_could_not_be_written_is_written_at_a_later_read(app_on_own_valkey, own_valkey):
    app = app_on_own_valkey
    snapshot = app.extensions["handoff"].snapshot
    snapshot.retry_seconds = 0  # tried again at once, not after the usual pause
    # Something in the way of the file for a moment (a full disk would do the same).
    (snapshot.path / "in-the-way").mkdir(parents=True)
    add_destination(Api(app.test_client()), "Billing", route="sip:billing@pbx.example.com")
    assert refer_target(app).startswith("sip:billing@")
    shutil.rmtree(snapshot.path)
    assert refer_target(app).startswith("sip:billing@")  # the disk is fine again

    own_valkey.stop()
    assert refer_target(create_app(app.extensions["handoff"].config)).startswith("sip:billing@")


def test_a_snapshot_from_the_release_before_versions_in_the_file_still_moves_callers(config, tmp_path):
    """An upgrade during an outage: the file holds the previous release's format."""
    import json

    older = {"default_id": "billing", "integration": None, "topics": [], "destinations": [
        {"id": "billing", "name": "Billing", "route": "sip:billing@pbx.example.com"}]}
    data = tmp_path / "upgraded"
    data.mkdir()
    (data / "config-snapshot.json").write_text(json.dumps(older))
    unreachable = config.with_overrides(redis_url="redis://127.0.0.1:1/0", data_dir=str(data))
    assert refer_target(create_app(unreachable)).startswith("sip:billing@")
