"""Operating modes: a 5.5 server reached through a management host, and offline re-analysis."""

from __future__ import annotations

import json
import os


def _stats(lab):
    return json.loads(lab.ctl("stats").stdout)


def test_audit_through_a_management_host(lab):
    lab.up("mgmt.yml")
    lab.advance(60)
    before = _stats(lab)
    # CredSSP: MGMT1 holds the user's credentials and reaches EXIN as the user (with the NTLM the
    # lab's inventory uses, EXIN would see an anonymous logon: tests/integration/test_second_hop.py)
    run = lab.playbook("--check", extra={"ansible_winrm_transport": "credssp"})
    assert run.returncode == 0, run.stdout[-4000:]
    after = _stats(lab)
    (link,) = lab.report()["links"]
    assert "XCON-TRANSPARENCY-REFUSAL" in {f["code"] for f in link["findings"]}
    # EXIN has no WinRM: its audit command went to MGMT1.  The whole --check run is exactly one
    # command per server: the audit's (the change plays leave the Exchange servers out under
    # --check unless xcon_preview_on_servers; the plan says what would change).
    assert "EXIN" not in after
    assert after["MGMT1"]["commands"] - before["MGMT1"].get("commands", 0) == 1
    assert after["EXOUT"]["commands"] - before["EXOUT"].get("commands", 0) == 1


def test_offline_analysis_reproduces_the_saved_run_exactly(lab):
    """A check run made before a fix, analysed offline after the fix (the firewall and the connectors
    have changed since, and no server answers any more), gives exactly that run's findings: the
    analysis uses the answers and the firewall facts saved with that run, not today's.  It names the
    run it analysed, writes its own run id, and leaves the saved run and reports/latest alone."""
    lab.up("kb.yml")
    lab.advance(60)
    run = lab.playbook("--check")
    assert run.returncode == 0, run.stdout[-4000:]
    live = lab.report()
    saved_json = os.path.join(lab.reports, live["run_id"], "report.json")
    with open(saved_json, "rb") as handle:
        saved_bytes = handle.read()
    fix = lab.playbook(extra={"xcon_workaround": "firewall_tunnel"})
    assert fix.returncode == 0, fix.stdout[-4000:]
    fixed = lab.report()
    assert fixed["links"][0]["verification"]["state"] == "passed"
    lab.down()  # nothing listens any more
    offline = lab.playbook(playbook="playbooks/analyze.yml", extra={"xcon_saved_run_id": live["run_id"]})
    assert offline.returncode == 0, offline.stdout[-4000:]
    assert f"Offline analysis of saved run {live['run_id']}" in offline.stdout
    report_line = offline.stdout.rstrip().splitlines()[-1]
    assert report_line.startswith("Report: "), report_line
    analysis_dir = os.path.dirname(report_line[len("Report: "):])
    with open(os.path.join(analysis_dir, "report.json"), encoding="utf-8") as handle:
        again = json.load(handle)
    assert again["analysed_run_id"] == live["run_id"] and again["run_id"] != live["run_id"]
    assert os.path.basename(analysis_dir) == again["run_id"]

    def essence(report):
        return [(l["id"], l["status"], l["findings"], l["recommended_workaround"], l["topology"]["before"])
                for l in report["links"]]

    assert essence(again) == essence(live)
    assert again["coverage"] == live["coverage"]
    # the saved run and reports/latest (the fix's) are untouched
    with open(saved_json, "rb") as handle:
        assert handle.read() == saved_bytes
    assert lab.report()["run_id"] == fixed["run_id"]


def test_offline_analysis_of_a_missing_run_fails_clearly(lab):
    lab.up("kb.yml")
    run = lab.playbook(playbook="playbooks/analyze.yml", extra={"xcon_saved_run_id": "20990101T000000Z-nosuch"})
    assert run.returncode != 0
    assert "20990101T000000Z-nosuch" in run.stdout and "no saved run" in run.stdout.lower(), run.stdout[-3000:]
    assert not os.path.exists(os.path.join(lab.reports, "latest")), os.listdir(lab.reports) if os.path.isdir(lab.reports) else None


def test_ansible_own_winrm_plugin_talks_to_the_lab(lab):
    """The lab is a conforming WS-Management endpoint: Ansible's own winrm connection plugin
    (pywinrm, NTLM with message encryption, the lab's CA validated) gets an answer, and an unknown
    script is refused (Ansible wraps raw commands in powershell -EncodedCommand), never silently
    accepted."""
    import os
    import subprocess

    from conftest import BIN, ROOT

    lab.up("kb.yml")
    run = subprocess.run([os.path.join(BIN, "ansible"), "EXIN", "-i", lab.inventory, "-m", "ansible.builtin.raw", "-a", "ipconfig /all"],
                         cwd=ROOT, env=lab.env, capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    assert "UNREACHABLE" not in out, out
    assert "rc=1" in out and "is not one this emulated host knows" in out, out
