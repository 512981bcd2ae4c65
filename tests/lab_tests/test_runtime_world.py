"""The lab's emulated world through its control command: the clock (`advance`) and the KB events it
produces, firewall change records, and the fault injection of its WS-Management endpoints.
"""
from __future__ import annotations

import json
import time

import pytest

from xcon.winrm_client import XconAuthError, XconError

from runtime_helpers import KB_EVENTS, search_connectors, topology_data, winrm_endpoint
from runtime_helpers import kb_lab  # noqa: F401  (the lab fixture)

# ---- clock, snapshot, firewall ----------------------------------------------------------------
def test_advance_produces_kb_events(kb_lab):
    before = kb_lab.snapshot()
    proc = kb_lab.cli("advance", 60)
    assert "emulated time" in proc.stdout
    after = kb_lab.snapshot()
    assert after["time"] > before["time"]
    for key in ("time", "servers", "firewalls", "flows"):
        assert key in after
    ids = {event["id"] for server in after["servers"].values() for event in server["events"]}
    assert ids & KB_EVENTS, f"no KB events after 60 minutes: {sorted(ids)}"
    server = next(iter(after["servers"].values()))
    assert {"directory", "queues", "events", "service"} <= set(server)


def test_firewall_apply_record(kb_lab, tmp_path):
    topology = topology_data()
    fw_name, fw = next(iter(topology["firewalls"].items()))
    hosts = [fw["inside"][0], fw["outside"][0]]
    record = {"version": 1, "firewall": fw_name, "run_id": "test-runtime", "product": fw.get("product"),
              "steps": [{"action": "add_routed_path", "hosts": hosts, "port": 102}]}
    path = tmp_path / "change.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    first = json.loads(kb_lab.cli("firewall", "apply", path).stdout)
    again = json.loads(kb_lab.cli("firewall", "apply", path).stdout)  # idempotent per step
    state = {k: v for k, v in first.items() if k != "steps"}
    assert state == {k: v for k, v in again.items() if k != "steps"}
    if "steps" in again:  # the model reports what each step did
        assert [step["result"] for step in again["steps"]] == ["unchanged"]
    routed = kb_lab.snapshot()["firewalls"][fw_name]["routed_paths"]
    assert any(sorted(p["hosts"]) == sorted(hosts) and p.get("port", 102) == 102 for p in routed)
    record["steps"] = [{"action": "remove_routed_path", "hosts": hosts, "port": 102}]
    path.write_text(json.dumps(record), encoding="utf-8")
    kb_lab.cli("firewall", "apply", path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    proc = kb_lab.cli("firewall", "apply", bad, check=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1


# ---- faults -----------------------------------------------------------------------------------
def _quick_run(lab, name):
    return search_connectors(lab.client(name), name)


def test_fault_refuse_credentials(kb_lab):
    name = winrm_endpoint(topology_data())[0][0]
    kb_lab.cli("fault", name, "refuse-credentials")
    try:
        with pytest.raises(XconAuthError):
            _quick_run(kb_lab, name)
    finally:
        kb_lab.cli("fault", name, "clear")
    assert _quick_run(kb_lab, name)


def test_fault_drop_after(kb_lab):
    name = winrm_endpoint(topology_data())[0][0]
    kb_lab.cli("fault", name, "drop-after", 0)
    try:
        with pytest.raises(XconError):
            _quick_run(kb_lab, name)
    finally:
        kb_lab.cli("fault", name, "clear")
    assert _quick_run(kb_lab, name)


def test_fault_operation_timeout(kb_lab):
    name = winrm_endpoint(topology_data())[0][0]
    before = kb_lab.stats()[name]["http_requests"]
    _quick_run(kb_lab, name)
    normal = kb_lab.stats()[name]["http_requests"] - before
    kb_lab.cli("fault", name, "operation-timeout", 3)
    try:
        before = kb_lab.stats()[name]["http_requests"]
        assert _quick_run(kb_lab, name)  # the client polls through OperationTimeout
        faulted = kb_lab.stats()[name]["http_requests"] - before
    finally:
        kb_lab.cli("fault", name, "clear")
    assert faulted >= normal + 3


def test_fault_slow(kb_lab):
    name = winrm_endpoint(topology_data())[0][0]
    begin = time.monotonic()
    _quick_run(kb_lab, name)
    normal = time.monotonic() - begin
    kb_lab.cli("fault", name, "slow", 0.3)
    try:
        begin = time.monotonic()
        _quick_run(kb_lab, name)
        slow = time.monotonic() - begin
    finally:
        kb_lab.cli("fault", name, "clear")
    assert slow >= normal + 0.9  # a run is at least five requests (shell, command, send, receive, delete)


def test_fault_unknown_host(kb_lab):
    proc = kb_lab.cli("fault", "NO-SUCH-HOST", "slow", 1, check=False)
    assert proc.returncode == 1 and "NO-SUCH-HOST" in proc.stderr
