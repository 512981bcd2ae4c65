"""Operating modes: a 5.5 server reached through a management host, and offline re-analysis."""

from __future__ import annotations

import json


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
    # EXIN has no WinRM: its audit command went to MGMT1, exactly one command for the audit phase
    # (check mode also reads once per connector task of the plan: the stack repoint on EXIN).
    assert "EXIN" not in after
    assert after["MGMT1"]["commands"] - before["MGMT1"].get("commands", 0) >= 1
    assert after["EXOUT"]["commands"] - before["EXOUT"].get("commands", 0) >= 1


def test_offline_analysis_of_a_saved_run_needs_no_server(lab):
    lab.up("kb.yml")
    lab.advance(60)
    run = lab.playbook("--check")
    assert run.returncode == 0, run.stdout[-4000:]
    live = lab.report()
    lab.down()  # nothing listens any more
    offline = lab.playbook(playbook="playbooks/analyze.yml", extra={"xcon_saved_run_id": live["run_id"]})
    assert offline.returncode == 0, offline.stdout[-4000:]
    again = lab.report()
    assert again["run_id"] != live["run_id"]
    assert [(l["id"], l["status"], sorted(f["code"] for f in l["findings"])) for l in again["links"]] == \
           [(l["id"], l["status"], sorted(f["code"] for f in l["findings"])) for l in live["links"]]


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
