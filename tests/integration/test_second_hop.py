"""The management host's second hop (shared/domain/real-world-facts.md): EXIN (NT 4.0, no WinRM) is
read and changed through MGMT1. With the inventory the lab writes (NTLM) MGMT1 cannot pass the
user's identity on: EXIN sees an anonymous logon, the link is unknown with XCON-SECOND-HOP and
nothing changes. Switching the transport the way a user would (ansible_winrm_transport) to CredSSP
or to Kerberos with delegation carries the identity, and so do explicit credentials for EXIN
(xcon_target_user/xcon_target_password); each way audits, applies one of the three workarounds
and verifies it (reverse connector with CredSSP, firewall tunnel with explicit credentials,
transparency off with Kerberos).

Cost (measured on the shared 2-core machine): about 110 s for the seven playbook runs.
"""
from __future__ import annotations

import pytest

from conftest import directory_and_firewalls

pytest.importorskip("requests_credssp", reason="pywinrm[credssp] is not installed: make setup")

REALM = "CONTOSO.EXAMPLE"


def _codes(link):
    return {f["code"] for f in link["findings"]}


def test_ntlm_through_the_management_host_is_unknown_and_changes_nothing(lab):
    lab.up("mgmt.yml")
    lab.advance(60)
    before = directory_and_firewalls(lab.snapshot())
    run = lab.playbook(extra={"xcon_workaround": "reverse_connector"})
    (link,) = lab.report()["links"]
    assert link["status"] == "unknown", link
    assert "XCON-SECOND-HOP" in _codes(link)
    hop = next(f for f in link["findings"] if f["code"] == "XCON-SECOND-HOP")
    assert hop["host"] == "EXIN" and hop["severity"] == "unknown"
    for way in ("credssp", "kerberos_delegation", "xcon_target_user"):
        assert way in hop["message"], hop["message"]
    # never a wrong diagnosis from anonymous reads, and nothing written anywhere
    assert not {"XCON-TRANSPARENCY-REFUSAL", "XCON-STACK-ADDRESS", "XCON-CONNECTOR-MISSING"} & _codes(link)
    assert not link.get("changes") or not any(c.get("applied") for c in link["changes"])
    assert directory_and_firewalls(lab.snapshot()) == before
    assert run.returncode != 0 or "unknown" in run.stdout
    # the lab's KDC goes with the lab: nothing left listening
    import json
    import subprocess

    kerberos = json.loads(lab.ctl("status", "--json").stdout)["kerberos"]
    if kerberos:
        lab.down()
        port = kerberos["kdc"].rsplit(":", 1)[1]
        listening = subprocess.run(["ss", "-Hlntu", f"sport = :{port}"], capture_output=True, text=True).stdout
        assert listening.strip() == "", listening


def test_credssp_through_the_management_host_fixes_and_verifies(lab):
    lab.up("mgmt.yml")
    lab.advance(60)
    run = lab.playbook(extra={"ansible_winrm_transport": "credssp", "xcon_workaround": "reverse_connector"})
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    (link,) = lab.report()["links"]
    assert "XCON-SECOND-HOP" not in _codes(link)
    assert link["changes"] and all(c["applied"] for c in link["changes"])
    assert link["verification"]["state"] == "passed", link["verification"]


def _kerberos(lab, delegate, *args, **extra):
    import json

    status = json.loads(lab.ctl("status", "--json").stdout)
    if not status.get("kerberos"):
        pytest.skip("the lab offers no Kerberos here (MIT KDC or python-gssapi missing: make setup as root)")
    lab.env["KRB5_CONFIG"] = status["kerberos"]["krb5_config"]
    return lab.playbook(*args, extra=dict(extra, ansible_winrm_transport="kerberos", ansible_user=f"xcon@{REALM}",
                                          ansible_winrm_kerberos_delegation=str(delegate).lower()))


def test_kerberos_with_delegation_fixes_and_verifies_through_the_management_host(lab):
    pytest.importorskip("kerberos", reason="pywinrm[kerberos] is not installed: make setup")
    lab.up("mgmt.yml")
    lab.advance(60)
    # without delegation the Kerberos logon stops at MGMT1
    _kerberos(lab, False, "--check")
    (link,) = lab.report()["links"]
    assert "XCON-SECOND-HOP" in _codes(link) and link["status"] == "unknown", link
    # with a forwarded TGT MGMT1 reaches EXIN as the user: audit, fix, verify
    run = _kerberos(lab, True, xcon_workaround="transparency_off", xcon_transparency_off_acknowledged="true")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    (link,) = lab.report()["links"]
    assert "XCON-TRANSPARENCY-REFUSAL" in _codes(link) and "XCON-SECOND-HOP" not in _codes(link), link
    assert link["changes"] and all(c["applied"] for c in link["changes"])
    assert link["verification"]["state"] == "passed", link["verification"]


def test_explicit_target_credentials_fix_and_verify_with_ntlm(lab):
    """NTLM to MGMT1 (the lab's inventory as written) plus xcon_target_user/xcon_target_password
    for EXIN: an authenticated LDAP bind and IPC$ session, so the audit, the fix and the
    verification all reach EXIN as that account."""
    lab.up("mgmt.yml")
    lab.advance(60)
    run = lab.playbook(extra={"xcon_workaround": "firewall_tunnel", "xcon_target_user": "CONTOSO\\xcon",
                              "xcon_target_password": "S3cret!"})
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "S3cret!" not in run.stdout + run.stderr
    (link,) = lab.report()["links"]
    assert "XCON-SECOND-HOP" not in _codes(link)
    assert link["changes"] and all(c["applied"] for c in link["changes"])
    assert link["verification"]["state"] == "passed", link["verification"]


def test_wrong_target_credentials_are_access_denied_not_the_second_hop(lab):
    lab.up("mgmt.yml")
    lab.advance(60)
    before = directory_and_firewalls(lab.snapshot())
    lab.playbook("--check", extra={"xcon_target_user": "CONTOSO\\xcon", "xcon_target_password": "wrong"})
    (link,) = lab.report()["links"]
    assert link["status"] == "unknown"
    assert "XCON-ACCESS-DENIED" in _codes(link) and "XCON-SECOND-HOP" not in _codes(link), link
    assert directory_and_firewalls(lab.snapshot()) == before
