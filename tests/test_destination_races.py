"""Concurrent destination writes over real HTTP: each is atomic over what it read.

Two clients are released together by a barrier, round after round; whatever order the
server runs them in, the result must be one a sequence of the two requests could give."""
import threading

import requests

from tests.helpers import API_KEY

ROUNDS = 10
HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def together(*calls):
    """Run the calls at the same moment (one thread each); their responses, in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


class Client:
    def __init__(self, base):
        self.base = base
        self.session = requests.Session()

    def __getattr__(self, verb):
        return lambda path, **kw: self.session.request(verb.upper(), self.base + path, headers=HEADERS,
                                                       timeout=30, **kw)


def create(client, name, **fields):
    response = client.post("/v1/destinations", json={"name": name, "route": "sip:x@pbx.example.com", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_concurrent_patches_of_different_fields_both_land(live_server):
    a, b = Client(live_server), Client(live_server)
    create(a, "Billing")
    for n in range(ROUNDS):
        together(lambda: a.patch("/v1/destinations/billing", json={"description": f"round {n}"}),
                 lambda: b.patch("/v1/destinations/billing", json={"ring_timeout": 10 + n}))
        got = a.get("/v1/destinations/billing").json()
        assert (got["description"], got["ring_timeout"]) == (f"round {n}", 10 + n)
    # Each write is its own version, recorded with it: none lost, none doubled.
    versions = a.get("/v1/config/versions").json()["items"]
    assert [v["version"] for v in versions] == list(range(1 + 2 * ROUNDS, 0, -1))


def test_concurrent_renames_leave_no_orphan_name(live_server):
    a, b = Client(live_server), Client(live_server)
    create(a, "Billing")
    for n in range(ROUNDS):
        first, second = f"Alpha {n}", f"Beta {n}"
        together(lambda: a.patch("/v1/destinations/billing", json={"name": first}),
                 lambda: b.patch("/v1/destinations/billing", json={"name": second}))
        final = a.get("/v1/destinations/billing").json()["name"]
        loser = second if final == first else first
        # The name that lost is free again: nothing still holds it.
        made = a.post("/v1/destinations", json={"name": loser, "route": "sip:y@pbx.example.com"})
        assert made.status_code == 201, made.text


def test_a_patch_never_undoes_a_concurrent_delete(live_server):
    a, b = Client(live_server), Client(live_server)
    for n in range(ROUNDS):
        create(a, "Billing")
        patched, deleted = together(
            lambda: a.patch("/v1/destinations/billing", json={"description": f"round {n}"}),
            lambda: b.delete("/v1/destinations/billing", params={"confirm": "Billing"}))
        assert deleted.status_code == 204 and patched.status_code in (200, 404)
        assert a.get("/v1/destinations/billing").status_code == 404
        assert all(d["id"] != "billing" for d in a.get("/v1/destinations").json()["items"])


def test_duplicate_and_create_of_the_same_name_do_not_overwrite_each_other(live_server):
    a, b = Client(live_server), Client(live_server)
    create(a, "Billing", description="the original")
    for n in range(ROUNDS):
        # Another name, but the same slug as the copy's: both want the same id.
        copy_name = "Billing copy" if n == 0 else f"Billing copy {n + 1}"
        duplicated, created = together(
            lambda: a.post("/v1/destinations/billing/duplicate"),
            lambda: b.post("/v1/destinations", json={"name": copy_name, "route": "sip:new@pbx.example.com"}))
        assert duplicated.status_code == 201 and created.status_code == 201
        assert duplicated.json()["id"] != created.json()["id"]
        names = [d["name"].casefold() for d in a.get("/v1/destinations").json()["items"]]
        assert len(names) == len(set(names)) == 1 + 2 * (n + 1)
        assert a.get(f"/v1/destinations/{created.json()['id']}").json()["route"] == "sip:new@pbx.example.com"


def test_set_default_racing_delete_never_points_at_nothing(live_server):
    a, b = Client(live_server), Client(live_server)
    create(a, "Reception")
    for n in range(3 * ROUNDS):  # the window is narrow: more rounds
        create(a, "Billing")
        made_default, deleted = together(lambda: a.post("/v1/destinations/billing/default"),
                                         lambda: b.delete("/v1/destinations/billing", params={"confirm": "Billing"}))
        items = a.get("/v1/destinations").json()["items"]
        defaults = [d["id"] for d in items if d["is_default"]]
        if made_default.status_code == 404:  # the delete came first: the default stayed
            assert defaults == ["reception"]
        else:  # the default moved, then its deletion left none (as any delete of the default does)
            assert defaults == [] and all("no_default" in {w["code"] for w in d["warnings"]} for d in items)
            # ...truly none, not a default pointing at the deleted id: so the next
            # destination created becomes the default, as it does whenever there is none.
            assert create(a, f"Spare {n}")["is_default"] is True
        a.post("/v1/destinations/reception/default")
