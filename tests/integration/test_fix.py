"""ansible-playbook fix-xcon.yml (no --check) against the KB lab: each workaround fixes the link,
mail is delivered, the second run changes nothing, and rollback restores the lab exactly."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from conftest import BIN, ROOT, directory_and_firewalls

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
    fixed = lab.snapshot()
    # one MTA restart per server whose connectors changed, none elsewhere (the runner's query and
    # restart travel as one command)
    restarted = {c["target"] for c in link["changes"] if c.get("restart_required")}
    assert {name: s["service"]["restarts"] for name, s in fixed["servers"].items()} == \
        {name: int(name in restarted) for name in fixed["servers"]}
    fixed_at = fixed["time"]
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
    # Exchange 5.5: the directory name is `rdn` (Common-Name), LDAP `cn` is Display-Name (Q263520)
    links = {e["attributes"]["rdn"]: e for e in lab.snapshot()["servers"]["EXIN"]["directory"]
             if "RFC1006-X400-Link" in e["objectClass"]}
    original, reverse = links["TO-OUTSIDE"]["attributes"], links["TO-OUTSIDE-REVERSE"]["attributes"]
    assert links["TO-OUTSIDE-REVERSE"]["dn"].startswith("cn=TO-OUTSIDE-REVERSE,cn=Connections,")
    assert original["cn"] == "X.400 to Outside"          # the topology's display name, not the directory name
    assert reverse["cn"] == reverse["Admin-Display-Name"] == "X.400 to Outside (reverse, remote initiated)"
    assert links["TO-OUTSIDE-REVERSE"]["objectClass"] == links["TO-OUTSIDE"]["objectClass"]
    # the four differences: name (rdn, display names cn and Admin-Display-Name), schedule, Stack address, cost
    assert reverse["Activation-Style"] == 3 and original["Activation-Style"] == 2
    assert reverse["N-Address"] == "198.51.100.10" and reverse["N-Address-Type"] == 1
    assert [d.split("\u00a7")[2] for d in reverse["Connected-Domains"]] == ["99"] * len(original["Connected-Domains"])
    assert [d.split("\u00a7")[:2] + d.split("\u00a7")[3:] for d in reverse["Connected-Domains"]] == \
           [d.split("\u00a7")[:2] + d.split("\u00a7")[3:] for d in original["Connected-Domains"]]
    four = {"rdn", "cn", "Admin-Display-Name", "Activation-Style", "N-Address", "N-Address-Type", "Connected-Domains", "Routing-List"}
    assert {k: v for k, v in reverse.items() if k not in four} == {k: v for k, v in original.items() if k not in four}
    assert set(reverse) == set(original)  # nothing dropped, nothing added


def _canonical_firewalls(firewalls):
    """Firewall facts with passers and routed paths in a stable order (rollback re-adds them)."""
    out = {}
    for name, fw in firewalls.items():
        fw = dict(fw)
        fw["passers"] = sorted(fw["passers"], key=lambda p: (p["interface"], p["target"], p.get("address", "")))
        fw["routed_paths"] = sorted(fw["routed_paths"], key=lambda p: sorted(p["hosts"]))
        out[name] = fw
    return out


def test_generated_links_behind_one_firewall_all_fixed_then_rolled_back(lab, tmp_path):
    """Links 2 and 3 of a generated topology reach the firewall on GSP alias addresses: each link
    is diagnosed as the KB fault, fixed by the tunnel (its own relays removed, not the others'),
    mail flows on all three, and rollback puts every passer back on its alias."""
    topology = tmp_path / "fleet.yml"
    lab.ctl("generate", "3", "-o", str(topology))
    lab.up(str(topology))
    lab.advance(30)
    start = lab.snapshot()
    assert sum(1 for p in start["firewalls"]["FW1"]["passers"] if p.get("address")) == 4
    run = lab.playbook(extra={"xcon_workaround": "firewall_tunnel"})
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    report = lab.report()
    assert len(report["links"]) == 3
    for link in report["links"]:
        assert "XCON-TRANSPARENCY-REFUSAL" in {f["code"] for f in link["findings"]}, link["id"]
        assert "XCON-STACK-ADDRESS" not in {f["code"] for f in link["findings"]}, link["id"]
        assert link["verification"]["state"] == "passed", link["verification"]
        assert len(link["changes"]) == 4 and all(c["applied"] for c in link["changes"]), link["changes"]
    assert "After the changes: 3 link(s) verified, mail flows again" in " ".join(run.stdout.split()), run.stdout[-3000:]
    fixed_at = lab.snapshot()["time"]
    lab.advance(30)
    after = lab.snapshot()
    assert after["firewalls"]["FW1"]["passers"] == []
    assert _new_refusals(after, fixed_at) == []
    for flow in after["flows"]:
        assert flow["queued"] == 0 and flow["delivered"] == flow["sent"], flow
    rollback = lab.playbook(playbook="playbooks/rollback.yml", extra={"xcon_rollback_run_id": report["run_id"]})
    assert rollback.returncode == 0, rollback.stdout[-6000:]
    restored = directory_and_firewalls(lab.snapshot())
    before_state = directory_and_firewalls(start)
    assert restored["directory"] == before_state["directory"]
    assert _canonical_firewalls(restored["firewalls"]) == _canonical_firewalls(before_state["firewalls"])


def test_rollback_of_an_unknown_run_says_so_and_changes_nothing(lab):
    lab.up("kb.yml")
    before = directory_and_firewalls(lab.snapshot())
    run = lab.playbook(playbook="playbooks/rollback.yml", extra={"xcon_rollback_run_id": "latest"})
    assert run.returncode != 0
    flat = " ".join(run.stdout.split())
    assert "'latest' holds only a copy of the last report, not a run" in flat and "Nothing was changed" in flat, run.stdout[-3000:]
    assert directory_and_firewalls(lab.snapshot()) == before


def test_restart_not_allowed_is_left_pending_and_reported(lab):
    lab.up("kb.yml")
    lab.advance(30)
    run = lab.playbook(extra={"xcon_workaround": "reverse_connector", "xcon_allow_mta_restart": "false"})
    flat = " ".join(run.stdout.split())  # the YAML callback folds long messages
    assert "EXIN: MSExchangeMTA needs a restart" in flat and "left pending because xcon_allow_mta_restart=false" in flat, run.stdout[-6000:]
    (link,) = lab.report()["links"]
    assert link["mta_restart"] == "pending"
    assert lab.snapshot()["servers"]["EXIN"]["service"]["restarts"] == 0  # left pending: not restarted


def _mta_service(lab, *args):
    cmd = [os.path.join(BIN, "ansible"), "-i", lab.inventory, "EXIN", "-m", "xcon_mta_service", *args]
    run = subprocess.run(cmd, cwd=ROOT, env=lab.env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run.stdout


def test_mta_service_restarts_in_one_command_and_never_under_check(lab):
    lab.up("kb.yml")

    def commands_and_restarts():
        return json.loads(lab.ctl("stats").stdout)["EXIN"]["commands"], lab.snapshot()["servers"]["EXIN"]["service"]["restarts"]

    start = commands_and_restarts()
    assert "CHANGED" in _mta_service(lab, "-a", "state=restarted", "--check")
    assert commands_and_restarts() == (start[0] + 1, start[1])  # query only
    assert "SUCCESS" in _mta_service(lab, "-a", "state=started")  # running: nothing to do
    assert commands_and_restarts() == (start[0] + 2, start[1])
    assert "CHANGED" in _mta_service(lab, "-a", "state=restarted")
    assert commands_and_restarts() == (start[0] + 3, start[1] + 1)  # query and restart, one command
