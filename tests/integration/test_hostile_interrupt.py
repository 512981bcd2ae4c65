"""Issue 22, case 7: the report is always final.

A fix interrupted with SIGTERM or SIGINT (Ctrl-C) after EXIN's connector write and before EXOUT's
ends with a report that says what was really applied (EXIN's change applied, EXOUT's not, no
verification), and exits non-zero; the offline analysis of a saved run with a host's raw answers
missing exits non-zero.  On the code before the fix the interrupted run's report still said
"applied: false" for EXIN's change (SIGTERM also killed the run on the spot), and the analysis said
UNKNOWN and exited 0."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from conftest import BIN, ROOT


def _flat(run):
    return " ".join((run.stdout + "\n" + run.stderr).split())


def _n_address(snapshot, server, name):
    entry = next(e for e in snapshot["servers"][server]["directory"]
                 if "RFC1006-X400-Link" in e["objectClass"] and e["attributes"].get("rdn") == name)
    return entry["attributes"].get("N-Address")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_fix_writes_its_report_with_what_was_applied(lab, tmp_path, signum):
    lab.up("kb.yml")
    lab.advance(30)
    start = lab.snapshot()
    lab.ctl("fault", "EXOUT", "slow", "3")  # EXOUT's commands take long: the interrupt lands before its write
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", lab.inventory, os.path.join(ROOT, "fix-xcon.yml"),
           "-e", f"xcon_report_dir={lab.reports}", "-e", f"xcon_state_dir={tmp_path}/state", "-e", "xcon_workaround=firewall_tunnel"]
    run = subprocess.Popen(cmd, cwd=ROOT, env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 400
        journal = None
        while time.monotonic() < deadline and run.poll() is None:
            runs = [d for d in os.listdir(lab.reports) if d != "latest"] if os.path.isdir(lab.reports) else []
            if runs and os.path.exists(os.path.join(lab.reports, runs[0], "journal", "EXIN.json")):
                journal = os.path.join(lab.reports, runs[0], "journal", "EXIN.json")
                break
            time.sleep(0.1)
        assert journal, "EXIN's write never came"
        time.sleep(1.0)  # EXIN's write is answered; EXOUT's (slow) is not done
        run.send_signal(signum)
        out, _ = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode != 0, out[-3000:]
    snapshot = lab.snapshot()
    report = lab.report()
    (link,) = report["links"]
    by_target = {c["target"]: c for c in link["changes"] if c.get("kind") == "connector"}
    for server, name in (("EXIN", "TO-OUTSIDE"), ("EXOUT", "TO-INSIDE")):
        changed = _n_address(snapshot, server, name) != _n_address(start, server, name)
        assert by_target[server]["applied"] == changed, (server, changed, by_target[server], out[-3000:])
    assert by_target["EXIN"]["applied"] is True
    assert report.get("interrupted", {}).get("signal") == signum.name, (report.get("interrupted"), out[-3000:])
    assert link["verification"]["state"] == "not_run" and "interrupted" in link["verification"]["details"]["reason"]
    assert link["status_after"] != "ok"


def test_the_offline_analysis_of_a_run_missing_a_hosts_answers_exits_non_zero(lab):
    lab.up("kb.yml")
    lab.advance(30)
    audit = lab.playbook("--check")
    assert audit.returncode == 0, _flat(audit)[-3000:]
    saved = lab.report()["run_id"]
    os.unlink(os.path.join(lab.reports, saved, "raw", "EXOUT.json"))
    analysis = lab.playbook(playbook="playbooks/analyze.yml", extra={"xcon_saved_run_id": saved})
    text = _flat(analysis)
    assert analysis.returncode != 0, text[-3000:]
    assert "EXOUT" in text and "could not be read" in text, text[-3000:]
