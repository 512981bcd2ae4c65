"""Open per-link transactions between runs (xcon.open_transactions) and the verification that
closes them (issue 22: a fix is a transaction a re-run completes; "OK" only when proven)."""

from __future__ import annotations

import copy
import json

import pytest

from xcon import open_transactions as otx
from xcon import state as xstate
from xcon.evidence import verify_window
from xcon.actions.verify import ActionModule as Verify

LINK = {"id": "EXIN<->EXOUT", "inside": {"host": "EXIN", "connector": "TO-OUTSIDE"}, "outside": {"host": "EXOUT", "connector": "TO-INSIDE"},
        "changes": [{"action": "operator"}, {"action": "modify"}, {"action": "modify"}, {"action": "operator"}], "status": "error", "findings": []}
STEPS = [
    {"id": "EXIN<->EXOUT#1", "link": "EXIN<->EXOUT", "step": 1, "phase": "firewall_tunnel_open", "target": "FW1", "server": "FW1",
     "kind": "firewall", "action": "operator", "object": "routed path", "args": [{"action": "add_routed_path", "hosts": ["EXIN", "EXOUT"], "port": 102}],
     "inverse": [{"action": "remove_routed_path", "hosts": ["EXIN", "EXOUT"], "port": 102}], "before": {}, "after": {}},
    {"id": "EXIN<->EXOUT#2", "link": "EXIN<->EXOUT", "step": 2, "phase": "stack_repoint", "target": "EXIN", "server": "EXIN", "kind": "connector",
     "action": "modify", "object": "TO-OUTSIDE", "args": {"server": "EXIN", "name": "TO-OUTSIDE", "stack_address": "198.51.100.10"},
     "before": {"stack_address": "192.0.2.1"}, "after": {"stack_address": "198.51.100.10"}, "restart_required": True},
    {"id": "EXIN<->EXOUT#3", "link": "EXIN<->EXOUT", "step": 3, "phase": "stack_repoint_outside", "target": "EXOUT", "server": "EXOUT",
     "kind": "connector", "action": "modify", "object": "TO-INSIDE", "args": {"server": "EXOUT", "name": "TO-INSIDE", "stack_address": "192.0.2.10"},
     "before": {"stack_address": "198.51.100.1"}, "after": {"stack_address": "192.0.2.10"}, "restart_required": True},
    {"id": "EXIN<->EXOUT#4", "link": "EXIN<->EXOUT", "step": 4, "phase": "firewall_tunnel_close", "target": "FW1", "server": "FW1",
     "kind": "firewall", "action": "operator", "object": "passers", "args": [{"action": "remove_passer", "port": 102, "interface": "external", "target": "EXIN"}],
     "inverse": [{"action": "add_passer", "port": 102, "interface": "external", "target": "EXIN"}], "before": {}, "after": {}},
]


def _record():
    return otx.open_record(LINK, STEPS, "RUN1", "firewall_tunnel")


def test_a_record_survives_only_with_its_checksum(tmp_path):
    state = str(tmp_path)
    assert otx.load(state) == {}
    otx.save(state, {LINK["id"]: _record()})
    assert otx.load(state)[LINK["id"]]["left"] == [s["id"] for s in STEPS]
    # edited by hand (or half-written by something else): nothing is trusted, the run refuses
    with open(otx.path(state), "a", encoding="utf-8") as handle:
        handle.write(" ")
    with pytest.raises(xstate.StateError):
        otx.load(state)
    # the record deleted but its checksum left: the deletion is noticed, not read as "nothing open"
    (tmp_path / otx.FILE).unlink()
    with pytest.raises(xstate.StateError):
        otx.load(state)


def test_progress_keeps_what_earlier_runs_did():
    record = otx.note_progress(_record(), "RUN1", done=["EXIN<->EXOUT#1", "EXIN<->EXOUT#2"], started=["EXIN<->EXOUT#3"])
    assert record["left"] == ["EXIN<->EXOUT#3", "EXIN<->EXOUT#4"] and record["state"] == "open"
    # a re-run finishes: its outcomes add to the record's, the runs are listed
    record = otx.note_progress(record, "RUN2", done=["EXIN<->EXOUT#3", "EXIN<->EXOUT#4"])
    assert record["left"] == [] and record["state"] == "applied" and record["runs"] == ["RUN1", "RUN2"]
    assert "4/4 step(s) done" in otx.summary(record)


def test_an_open_transaction_replaces_any_new_plan_and_marks_the_link_not_ok():
    link = copy.deepcopy(LINK)
    link.update(status="warning", recommended_workaround="none", changes=[])
    changes, entries = otx.resume(link, _record(), otx.FINISH, "auto")
    assert [e["id"] for e in entries] == [s["id"] for s in STEPS] and len(changes) == 4
    assert link["status"] == "error" and link["findings"][0]["code"] == otx.CODE and link["workaround_chosen"] == "firewall_tunnel"
    # xcon_workaround=none: nothing is changed, the finding stays
    link = copy.deepcopy(LINK)
    assert otx.resume(link, _record(), otx.FINISH, "none") == ([], [])
    assert link["status"] == "error" and "changes nothing" in link["findings"][0]["message"]


def test_rollback_undoes_every_step_that_may_have_landed_newest_first():
    record = otx.note_progress(_record(), "RUN1", done=["EXIN<->EXOUT#1", "EXIN<->EXOUT#2"], started=["EXIN<->EXOUT#3"])
    undo = otx.undo_entries(record)
    assert [u["undoes"] for u in undo] == ["EXIN<->EXOUT#3", "EXIN<->EXOUT#2", "EXIN<->EXOUT#1"]
    assert [u["id"] for u in undo] == ["EXIN<->EXOUT#1", "EXIN<->EXOUT#2", "EXIN<->EXOUT#3"]
    # outside Stack first, then inside, then the routed path closes (remediate.yml's phase order)
    assert [u["phase"] for u in undo] == ["stack_repoint", "stack_repoint_outside", "firewall_tunnel_close"]
    assert undo[0]["args"] == {"server": "EXOUT", "name": "TO-INSIDE", "stack_address": "198.51.100.1"}
    assert undo[2]["args"] == STEPS[0]["inverse"] and undo[2]["action"] == "operator"
    # a step never started is not touched
    assert "EXIN<->EXOUT#4" not in json.dumps([u["undoes"] for u in undo])


def _server(name, interval):
    attributes = {} if interval is None else {"Open-Retry-Interval": interval}
    connector = "TO-OUTSIDE" if name == "EXIN" else "TO-INSIDE"
    return {"name": name, "inventory_host": name, "exchange_version": "5.5", "connectors": [{"name": connector, "attributes": attributes}]}


def test_the_verification_window_covers_two_of_the_slower_sides_open_intervals():
    servers = {"EXIN": _server("EXIN", 300), "EXOUT": _server("EXOUT", 900)}
    window = verify_window(LINK, servers)
    assert window["minutes"] == 30 and window["open_retry_seconds"] == 900
    # not set (or 0): the Override page's default, 600 s (Q234157)
    window = verify_window(LINK, {"EXIN": _server("EXIN", None), "EXOUT": _server("EXOUT", 0)})
    assert window["minutes"] == 20 and any("default" in b for b in window["basis"])


def _evidence(now, events=(), queue=0, state="Running"):
    return {"now": now, "events": list(events), "queues": {"TO-INSIDE": queue}, "service": {"state": state}}


def test_a_quiet_spell_shorter_than_the_window_proves_nothing():
    started = {"EXIN": "2026-01-05T10:00:00Z", "EXOUT": "2026-01-05T10:00:00Z"}
    quiet = {"EXIN": _evidence("2026-01-05T10:05:00Z"), "EXOUT": _evidence("2026-01-05T10:05:00Z")}
    assert Verify._judge(LINK, quiet, started, 0, {}, waited=5, window=20)["state"] == "pending"
    assert Verify._judge(LINK, quiet, started, 0, {}, waited=20, window=20)["state"] == "passed"
    # one refusal on the inside server, any time after the last change, fails it
    refused = dict(quiet, EXIN=_evidence("2026-01-05T10:20:00Z", [{"id": 1293, "time": "2026-01-05T10:00:30Z"}]))
    assert Verify._judge(LINK, refused, started, 0, {}, waited=20, window=20)["state"] == "pending"
    # an MTA that does not run passes nothing
    stopped = dict(quiet, EXIN=_evidence("2026-01-05T10:20:00Z", state="Stopped"))
    judged = Verify._judge(LINK, stopped, started, 0, {}, waited=20, window=20)
    assert judged["state"] == "pending" and judged["details"]["mta_not_running"] == ["EXIN"]


def test_a_run_undone_by_rollback_leaves_nothing_to_finish(tmp_path):
    record = otx.note_progress(_record(), "RUN1", done=["EXIN<->EXOUT#1"])
    records = {LINK["id"]: record}
    folder = tmp_path / "RUN1" / "rollback"
    folder.mkdir(parents=True)
    stamp = record["updated_at"].replace("-", "").replace(":", "")
    # a rollback under --check, one that left a conflict, or one older than the record: still open
    for name, summary in (("rollback-20000101T000000Z.json", {"check_mode": False, "conflicts": []}),
                          (f"rollback-{stamp}.json", {"check_mode": True, "conflicts": []})):
        (folder / name).write_text(json.dumps(summary), encoding="utf-8")
    assert otx.drop_rolled_back(records, str(tmp_path)) == [] and records
    (folder / f"rollback-{stamp}.json").write_text(json.dumps({"check_mode": False, "conflicts": [], "awaiting_firewall_confirmation": []}),
                                                   encoding="utf-8")
    assert otx.drop_rolled_back(records, str(tmp_path)) == [LINK["id"]] and records == {}
