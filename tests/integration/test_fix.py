"""ansible-playbook fix-xcon.yml (no --check) against the KB lab: each workaround fixes the link,
mail is delivered, the second run changes nothing, and rollback restores the lab exactly."""

from __future__ import annotations

import re

import pytest

from conftest import directory_and_firewalls

REFUSALS = {1290, 289, 1294, 1293, 9301}


def _changed_count(stdout):
    recap = re.findall(r"changed=(\d+)", stdout)
    return sum(int(n) for n in recap)


def _new_refusals(snapshot, after_time):
    return [(name, e["id"]) for name, server in snapshot["servers"].items() for e in server["events"]
            if e["id"] in REFUSALS and e["time"] > after_time]


@pytest.mark.parametrize("workaround, extra", [
    ("reverse_connector", {}),
    ("firewall_tunnel", {}),
    ("transparency_off", {"xcon_transparency_off_acknowledged": "true"}),
])
def test_workaround_fixes_the_link_and_is_idempotent(lab, workaround, extra):
    lab.up("kb.yml")
    lab.advance(30)
    start = lab.snapshot()
    stuck = next(f for f in start["flows"] if f["from"] == "EXOUT" and f["to"] == "EXIN")
    assert stuck["peak_queued"] > 5, "the KB fault did not happen in the lab"
    run = lab.playbook(extra=dict(extra, xcon_workaround=workaround))
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    report = lab.report()
    (link,) = report["links"]
    assert link["verification"]["state"] == "passed", link["verification"]
    assert link["changes"] and all(c["applied"] for c in link["changes"])
    fixed_at = lab.snapshot()["time"]
    lab.advance(30)
    after = lab.snapshot()
    assert after["servers"]["EXOUT"]["queues"]["TO-INSIDE"] == 0
    assert _new_refusals(after, fixed_at) == []
    flow = next(f for f in after["flows"] if f["from"] == "EXOUT" and f["to"] == "EXIN")
    assert flow["queued"] == 0 and flow["delivered"] == flow["sent"]
    # second run: nothing to change
    again = lab.playbook(extra=dict(extra, xcon_workaround=workaround))
    assert again.returncode == 0, again.stdout[-6000:]
    assert _changed_count(again.stdout) == 0, again.stdout[-6000:]
    # rollback restores the directory and the firewall exactly
    before_state = directory_and_firewalls(start)
    rollback = lab.playbook(playbook="playbooks/rollback.yml", extra={"xcon_rollback_run_id": report["run_id"]})
    assert rollback.returncode == 0, rollback.stdout[-6000:]
    restored = directory_and_firewalls(lab.snapshot())
    assert restored["directory"] == before_state["directory"]
    assert restored["firewalls"] == before_state["firewalls"]
    # and a second rollback changes nothing
    rollback_again = lab.playbook(playbook="playbooks/rollback.yml", extra={"xcon_rollback_run_id": report["run_id"]})
    assert rollback_again.returncode == 0 and _changed_count(rollback_again.stdout) == 0, rollback_again.stdout[-6000:]


def test_reverse_connector_equals_the_original_but_for_the_four(lab):
    lab.up("kb.yml")
    lab.advance(30)
    run = lab.playbook(extra={"xcon_workaround": "reverse_connector"})
    assert run.returncode == 0, run.stdout[-6000:]
    links = {e["attributes"]["cn"]: e for e in lab.snapshot()["servers"]["EXIN"]["directory"]
             if "RFC1006-X400-Link" in e["objectClass"]}
    original, reverse = links["TO-OUTSIDE"]["attributes"], links["TO-OUTSIDE-REVERSE"]["attributes"]
    assert links["TO-OUTSIDE-REVERSE"]["objectClass"] == links["TO-OUTSIDE"]["objectClass"]
    # the four differences: name (cn, display name), schedule, Stack address, cost
    assert reverse["Activation-Style"] == 3 and original["Activation-Style"] == 2
    assert reverse["N-Address"] == "198.51.100.10" and reverse["N-Address-Type"] == 1
    assert [d.split("\u00a7")[2] for d in reverse["Connected-Domains"]] == ["99"] * len(original["Connected-Domains"])
    assert [d.split("\u00a7")[:2] + d.split("\u00a7")[3:] for d in reverse["Connected-Domains"]] == \
           [d.split("\u00a7")[:2] + d.split("\u00a7")[3:] for d in original["Connected-Domains"]]
    four = {"cn", "Admin-Display-Name", "Activation-Style", "N-Address", "N-Address-Type", "Connected-Domains", "Routing-List"}
    assert {k: v for k, v in reverse.items() if k not in four} == {k: v for k, v in original.items() if k not in four}
    assert set(reverse) == set(original)  # nothing dropped, nothing added
