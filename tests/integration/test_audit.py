"""ansible-playbook fix-xcon.yml --check against the lab: right, complete, safe, readable."""

from __future__ import annotations

import json
import os

import pytest

from conftest import directory_and_firewalls


def _codes(link):
    return {f["code"]: f for f in link["findings"]}


def test_kb_audit_names_the_fault_and_changes_nothing(lab):
    lab.up("kb.yml")
    lab.advance(60)
    before = directory_and_firewalls(lab.snapshot())
    run = lab.playbook("--check", "--diff")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    after = directory_and_firewalls(lab.snapshot())
    assert after == before, "the audit changed the lab"
    report = lab.report()
    assert report["check_mode"] is True
    (link,) = report["links"]
    assert link["id"] == "EXIN<->EXOUT" and link["status"] == "error"
    kb = _codes(link)["XCON-TRANSPARENCY-REFUSAL"]
    assert kb["severity"] == "error"
    # 9301 carried the outside server's own address as four octets (KB Q193380), shown decoded
    assert kb["evidence"]["addresses_9301_decoded"] == [
        {"hex": "C633640A", "address": "198.51.100.10", "outside_server": True}]
    assert "C633640A = 198.51.100.10" in kb["message"]
    with open(os.path.join(lab.reports, "latest", "report.html"), encoding="utf-8") as handle:
        assert "C633640A = 198.51.100.10" in handle.read()
    assert link["recommended_workaround"] in ("firewall_tunnel", "reverse_connector")
    assert link["changes"] and not any(c["applied"] for c in link["changes"])
    assert link["verification"]["state"] == "not_run"
    # --diff shows each planned change, from the audit's read (the servers are not read again)
    # (connector changes by the plan's diff; each firewall record once, by its own role's diff)
    for index, change in enumerate(link["changes"], start=1):
        if change["action"] != "operator":
            assert f"{link['id']}#{index} {change['target']}: {change['action']}" in run.stdout, run.stdout[-4000:]
    records = sum(1 for c in link["changes"] if c["action"] == "operator")
    assert run.stdout.count(f"+++ after: firewall {link['firewall']} (after the operator's change)") == records, run.stdout[-4000:]
    assert "(planned)" in run.stdout and "+    stack_address: " in run.stdout
    if link["recommended_workaround"] == "firewall_tunnel":
        # the "close the old path" record is previewed against the firewall as the "open" record
        # leaves it: the routed path stays, only the relays go (not "no path at all")
        close = run.stdout.rsplit(f"+++ after: firewall {link['firewall']}", 1)[1].split("\n== ", 1)[0]
        assert '"hosts": ["EXIN", "EXOUT"]' in close and "routed_paths: []" not in close, close
    stats = json.loads(lab.ctl("stats").stdout)
    assert {stats[h]["commands"] for h in ("EXIN", "EXOUT")} == {1}, stats


@pytest.mark.parametrize("topology, code, not_code", [
    ("healthy.yml", None, "XCON-TRANSPARENCY-REFUSAL"),
    ("never.yml", "XCON-SCHEDULE-NEVER", "XCON-TRANSPARENCY-REFUSAL"),
    ("both-remote.yml", "XCON-BOTH-REMOTE-INITIATED", "XCON-TRANSPARENCY-REFUSAL"),
])
def test_lookalikes_are_told_apart(lab, topology, code, not_code):
    lab.up(topology)
    lab.advance(60)
    run = lab.playbook("--check")
    assert run.returncode == 0, run.stdout[-4000:]
    (link,) = lab.report()["links"]
    codes = _codes(link)
    assert not_code not in codes
    if code is None:
        assert link["status"] == "ok" and link["changes"] == []
    else:
        assert codes[code]["severity"] == "error" and link["status"] == "error"
