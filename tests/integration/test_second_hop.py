"""The management host's second hop (shared/domain/real-world-facts.md): EXIN (NT 4.0, no WinRM) is
read and changed through MGMT1. With the inventory the lab writes (NTLM) MGMT1 cannot pass the
user's identity on: EXIN sees an anonymous logon, the link is unknown with XCON-SECOND-HOP and
nothing changes. Switching the transport the way a user would (ansible_winrm_transport) to CredSSP
or to Kerberos with delegation carries the identity, and so do explicit credentials for EXIN
(xcon_target_user/xcon_target_password); each way audits, applies each of the three workarounds
and verifies it.
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


WORKAROUNDS = {
    "reverse_connector": {},
    "firewall_tunnel": {},
    "transparency_off": {"xcon_transparency_off_acknowledged": "true"},
}


def _kerberos_status(lab):
    import json

    status = json.loads(lab.ctl("status", "--json").stdout)
    if not status.get("kerberos"):
        pytest.skip("the lab offers no Kerberos here (MIT KDC or python-gssapi missing: make setup as root)")
    lab.env["KRB5_CONFIG"] = status["kerberos"]["krb5_config"]


def _kerberos(lab, delegate, *args, **extra):
    _kerberos_status(lab)
    return lab.playbook(*args, extra=dict(extra, ansible_winrm_transport="kerberos", ansible_user=f"xcon@{REALM}",
                                          ansible_winrm_kerberos_delegation=str(delegate).lower()))


# The three ways past the second hop, as a user would switch to them: CredSSP to MGMT1, Kerberos with
# a forwarded ticket, or NTLM to MGMT1 plus explicit credentials for EXIN (an authenticated LDAP
# bind and IPC$ session).
WAYS = {
    "credssp": {"ansible_winrm_transport": "credssp"},
    "kerberos_delegation": {"ansible_winrm_transport": "kerberos", "ansible_user": f"xcon@{REALM}",
                            "ansible_winrm_kerberos_delegation": "true"},
    "target_credentials": {"xcon_target_user": "CONTOSO\\xcon", "xcon_target_password": "S3cret!"},
}


@pytest.mark.parametrize("workaround", list(WORKAROUNDS))
@pytest.mark.parametrize("way", list(WAYS))
def test_each_way_past_the_second_hop_audits_fixes_and_verifies(lab, way, workaround):
    if way == "kerberos_delegation":
        pytest.importorskip("kerberos", reason="pywinrm[kerberos] is not installed: make setup")
    lab.up("mgmt.yml")
    lab.advance(60)
    if way == "kerberos_delegation":
        _kerberos_status(lab)
    run = lab.playbook(extra=dict(WAYS[way], xcon_workaround=workaround, **WORKAROUNDS[workaround]))
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "S3cret!" not in run.stdout + run.stderr
    (link,) = lab.report()["links"]
    assert "XCON-TRANSPARENCY-REFUSAL" in _codes(link) and "XCON-SECOND-HOP" not in _codes(link), link
    assert link["changes"] and all(c["applied"] for c in link["changes"])
    assert link["verification"]["state"] == "passed", link["verification"]


def test_kerberos_without_delegation_stops_at_the_management_host(lab):
    pytest.importorskip("kerberos", reason="pywinrm[kerberos] is not installed: make setup")
    lab.up("mgmt.yml")
    lab.advance(60)
    before = directory_and_firewalls(lab.snapshot())
    _kerberos(lab, False, "--check")
    (link,) = lab.report()["links"]
    assert "XCON-SECOND-HOP" in _codes(link) and link["status"] == "unknown", link
    assert directory_and_firewalls(lab.snapshot()) == before


def test_wrong_target_credentials_are_access_denied_not_the_second_hop(lab):
    lab.up("mgmt.yml")
    lab.advance(60)
    before = directory_and_firewalls(lab.snapshot())
    lab.playbook("--check", extra={"xcon_target_user": "CONTOSO\\xcon", "xcon_target_password": "wrong"})
    (link,) = lab.report()["links"]
    assert link["status"] == "unknown"
    assert "XCON-ACCESS-DENIED" in _codes(link) and "XCON-SECOND-HOP" not in _codes(link), link
    assert directory_and_firewalls(lab.snapshot()) == before


def test_mta_port_through_the_management_host_is_read_with_the_target_credentials(lab, tmp_path):
    # EXIN's MTA listens on 1102 ("RFC1006 Port Number", Q161931), EXOUT's on 102. The remote registry
    # read goes through MGMT1 with EXIN's credentials (an IPC$ session), as the LDAP bind does: EXIN's
    # port is read as 1102 and the two ports are found to differ (was: the read went anonymously,
    # was denied, and the link was diagnosed on EXOUT's 102 with no word of it).
    from test_real_world import topology

    lab.up(topology(tmp_path, "mgmt.yml", lambda data: data["servers"]["EXIN"].update(mta_port=1102)))
    lab.advance(30)
    lab.playbook("--check", extra=WAYS["target_credentials"])
    (link,) = lab.report()["links"]
    codes = {f["code"]: f for f in link["findings"]}
    assert "XCON-SECOND-HOP" not in codes and "XCON-MTA-PORT-UNKNOWN" not in codes, link["findings"]
    assert codes["XCON-MTA-PORT-MISMATCH"]["evidence"]["mta_ports"] == {"EXIN": 1102, "EXOUT": 102}
