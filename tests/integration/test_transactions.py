"""A fix is a transaction that a re-run completes; "OK" only when the fault is proven gone (issue 22,
cases 1, 4 and 5).  Every case runs on a lab with a frozen clock (--time-scale 0): only the runs'
verification and the test's `advance` move emulated time, so the hour watched after a run is the
same hour every time."""

from __future__ import annotations

import json
import os
import shlex
import subprocess

import yaml

from conftest import BIN, ROOT
from test_hostile_firewall import strip_firewall_facts

REFUSALS = {1290, 289, 1294, 1293}
FIXED = {"EXIN": "198.51.100.10", "EXOUT": "192.0.2.10"}  # firewall_tunnel: each points at the other


def _stacks(snapshot):
    return {name: [e["attributes"].get("N-Address") for e in server["directory"] if "RFC1006-X400-Link" in e["objectClass"]]
            for name, server in snapshot["servers"].items()}


def _refusals_after(snapshot, since):
    return sorted({(name, e["id"]) for name, server in snapshot["servers"].items() for e in server["events"]
                   if e["id"] in REFUSALS and e["time"] > since})


def _rerun(lab, report):
    """The re-run command the report prints, run as printed (from the repository root)."""
    words = shlex.split(report["rerun_command"])
    assert words[0] == "ansible-playbook"
    return subprocess.run([os.path.join(BIN, "ansible-playbook"), *words[1:]], cwd=ROOT, env=lab.env,
                          capture_output=True, text=True, timeout=900)


def _link(report):
    (link,) = report["links"]
    return link


def _stopped_half_way(lab):
    """Case 1's first half: EXOUT's connection drops during the fix: EXIN is repointed and the
    routed path is open, EXOUT still points at the relay."""
    lab.up("kb.yml", time_scale=0)
    lab.advance(30)
    lab.ctl("fault", "EXOUT", "drop-after", "11")  # EXOUT's audit answered, its Stack repoint's read drops
    first = lab.playbook()
    assert first.returncode != 0, first.stdout[-3000:]
    report = lab.report()
    assert _link(report)["transaction"]["stopped_at"]["host"] == "EXOUT", _link(report)["transaction"]
    assert _stacks(lab.snapshot()) == {"EXIN": ["198.51.100.10"], "EXOUT": ["198.51.100.1"]}, "not the half-made state of case 1"
    lab.ctl("fault", "EXOUT", "clear")
    return report


def test_a_stopped_fix_is_finished_by_the_printed_rerun_and_proven(lab):
    """Case 1: the re-run the report prints (xcon_workaround=auto) finishes the open transaction
    although a fresh diagnosis of the half-made link recommends nothing; then an emulated hour
    passes without a refusal on either server, and --check agrees."""
    first = _stopped_half_way(lab)
    # between the runs, an audit sees the open transaction: the link is not ok
    audit = lab.playbook("--check")
    link = _link(lab.report())
    assert "XCON-TRANSACTION-OPEN" in [f["code"] for f in link["findings"]] and link["status"] == "error", link["findings"]
    assert audit.returncode == 0, audit.stdout[-3000:]
    assert _stacks(lab.snapshot())["EXOUT"] == ["198.51.100.1"], "--check changed something"

    again = _rerun(lab, first)
    assert again.returncode == 0, again.stdout[-5000:]
    link = _link(lab.report())
    assert link["transaction"].get("closed") and link["status_after"] == "ok", link["transaction"]
    assert all(c["applied"] for c in link["changes"]) and len(link["changes"]) == 4
    done = lab.snapshot()
    assert _stacks(done) == {name: [address] for name, address in FIXED.items()}
    assert done["firewalls"]["FW1"]["passers"] == []
    with open(os.path.join(lab.tmp, "state", "transactions.json"), encoding="utf-8") as handle:
        assert json.load(handle)["links"] == {}
    lab.advance(60)
    after = lab.snapshot()
    assert _refusals_after(after, done["time"]) == [], "refusals in the hour after the finished fix"
    assert all(f["queued"] == 0 for f in after["flows"]), after["flows"]
    check = lab.playbook("--check")
    assert check.returncode == 0 and _link(lab.report())["status"] == "ok", check.stdout[-3000:]


def test_an_open_transaction_is_never_ok_and_none_changes_nothing(lab):
    """Case 1: with xcon_workaround=none the open transaction is neither finished nor forgotten:
    nothing is changed, the link is an error and the run fails."""
    _stopped_half_way(lab)
    before = lab.snapshot()
    run = lab.playbook(extra={"xcon_workaround": "none"})
    assert run.returncode != 0, run.stdout[-3000:]
    link = _link(lab.report())
    assert link["status"] == "error" and link["status_after"] != "ok", link
    assert "XCON-TRANSACTION-OPEN" in [f["code"] for f in link["findings"]]
    assert _stacks(lab.snapshot()) == _stacks(before)


def test_an_open_transaction_can_be_rolled_back_instead(lab):
    """xcon_open_transactions=rollback undoes what the stopped run applied: both connectors and the
    firewall are as before the first run; the transaction is closed and the run says the link is
    not fixed."""
    original = None
    lab.up("kb.yml", time_scale=0)
    original = lab.snapshot()
    lab.down()
    _stopped_half_way(lab)
    run = lab.playbook(extra={"xcon_open_transactions": "rollback"})
    assert run.returncode != 0, run.stdout[-3000:]
    link = _link(lab.report())
    assert link["transaction"].get("rolled_back"), link["transaction"]
    now = lab.snapshot()
    assert _stacks(now) == _stacks(original)
    assert {k: now["firewalls"]["FW1"][k] for k in ("passers", "routed_paths", "client_transparency")} == \
        {k: original["firewalls"]["FW1"][k] for k in ("passers", "routed_paths", "client_transparency")}
    with open(os.path.join(lab.tmp, "state", "transactions.json"), encoding="utf-8") as handle:
        assert json.load(handle)["links"] == {}


def test_restarts_disabled_mean_pending_never_ok(lab):
    """Case 5: with xcon_allow_mta_restart=false the changes are made but not active: the link is
    pending (never ok), the run fails, and the printed re-run completes it."""
    lab.up("kb.yml", time_scale=0)
    lab.advance(30)
    run = lab.playbook(extra={"xcon_allow_mta_restart": "false"})
    assert run.returncode != 0, run.stdout[-3000:]
    assert "-> OK" not in run.stdout and "verification passed" not in run.stdout, run.stdout[-3000:]
    report = lab.report()
    link = _link(report)
    assert link["status_after"] == "pending" and link["mta_restart"] == "pending", (link["status_after"], link["verification"])
    assert link["verification"]["state"] != "passed"
    assert report["summary"]["worst_status_after"] != "ok"
    assert "xcon_allow_mta_restart=true" in report["rerun_command"]
    again = _rerun(lab, report)
    assert again.returncode == 0, again.stdout[-4000:]
    link = _link(lab.report())
    assert link["status_after"] == "ok" and link["transaction"].get("closed"), link["transaction"]


def test_no_fix_is_never_verified_and_hides_no_evidence(lab):
    """Case 4 (verification): a firewall whose facts are missing gets no change; the run must not
    say "0/0 applied, verification passed -> OK", and a later correct --check must not say OK
    because a "verified" time was recorded."""
    lab.up("kb.yml", time_scale=0)
    lab.advance(30)
    with open(lab.inventory, encoding="utf-8") as handle:
        correct = yaml.safe_dump(yaml.safe_load(handle))
    lab.edit_inventory(strip_firewall_facts)
    run = lab.playbook()
    assert run.returncode != 0, run.stdout[-3000:]
    link = _link(lab.report())
    assert link["status_after"] != "ok" and link["verification"]["state"] != "passed", (link["status_after"], link["verification"])
    assert not os.path.exists(os.path.join(lab.tmp, "state", "evidence-baseline.json"))
    with open(lab.inventory, "w", encoding="utf-8") as handle:
        handle.write(correct)
    lab.advance(10)
    check = lab.playbook("--check")
    assert _link(lab.report())["status"] == "error", check.stdout[-3000:]
    assert "[OK" not in check.stdout, check.stdout[-3000:]


def test_a_stopped_run_undone_by_rollback_is_not_finished_later(lab):
    """playbooks/rollback.yml of the stopped run undoes it: the next run diagnoses the link afresh
    instead of finishing what was undone."""
    first = _stopped_half_way(lab)
    undo = lab.playbook(playbook="playbooks/rollback.yml", extra={"xcon_rollback_run_id": first["run_id"]})
    assert undo.returncode == 0, undo.stdout[-3000:]
    assert _stacks(lab.snapshot()) == {"EXIN": ["192.0.2.1"], "EXOUT": ["198.51.100.1"]}
    lab.playbook("--check")
    link = _link(lab.report())
    assert "XCON-TRANSACTION-OPEN" not in [f["code"] for f in link["findings"]], link["findings"]
    assert "XCON-TRANSPARENCY-REFUSAL" in [f["code"] for f in link["findings"]]


def test_a_record_that_cannot_be_trusted_stops_every_change(lab):
    """A transactions record whose checksum does not match (edited, half-deleted): nobody knows what
    an earlier run left half-done, so nothing is changed, no link is ok, --check says so too."""
    lab.up("kb.yml", time_scale=0)
    lab.advance(30)
    before = lab.snapshot()
    state = lab.tmp / "state"
    state.mkdir()
    (state / "transactions.json").write_text('{"links": {}, "version": 1}\n', encoding="utf-8")
    (state / "transactions.json.sha256").write_text("0" * 64 + "  transactions.json\n", encoding="utf-8")
    run = lab.playbook()
    assert run.returncode != 0 and "cannot be trusted" in run.stdout, run.stdout[-3000:]
    assert _stacks(lab.snapshot()) == _stacks(before) and lab.snapshot()["firewalls"] == before["firewalls"]
    check = lab.playbook("--check")
    link = _link(lab.report())
    assert check.returncode != 0 and link["status"] != "ok" and link["findings"][0]["code"] == "XCON-TRANSACTION-OPEN", link["findings"][:1]
