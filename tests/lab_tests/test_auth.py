"""Kerberos (the lab's real MIT KDC) and CredSSP logons against the lab's WinRM listeners, with
real, unmodified pywinrm clients (its kerberos and credssp extras), and what each logon leaves the
host for a second hop. Loopback only; the KDC is stopped at the end and nothing stays listening.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from xconlab_lab import kdc as kdc_mod
from xconlab_lab.wsman import EndpointConfig, KerberosSetup, WsmanServer

winrm = pytest.importorskip("winrm")
pytest.importorskip("kerberos", reason="pywinrm[kerberos] (pykerberos) is not installed: make setup")
pytest.importorskip("gssapi", reason="python-gssapi (the lab's Kerberos acceptor) is not installed: make setup")
pytest.importorskip("requests_credssp", reason="pywinrm[credssp] is not installed: make setup")
if not kdc_mod.kdc_available():
    pytest.skip("MIT Kerberos KDC (krb5-kdc, krb5-admin-server) is not installed: make setup", allow_module_level=True)

REALM = "CONTOSO.EXAMPLE"
PASSWORD = "S3cret!"
MGMT = "mgmt1.inside.contoso.example"
OTHER = "exout.outside.contoso.example"
ALL = ("basic", "ntlm", "kerberos", "credssp")


class Recorder:
    takes_logon = True

    def __init__(self):
        self.logons = []

    def __call__(self, endpoint, username, command_line, stdin, logon=None):
        self.logons.append((endpoint, username, logon))
        return f"{endpoint}|{username}|{command_line}".encode() * 40, b"", 0   # > 16 KiB: CredSSP splits


@pytest.fixture(scope="module")
def realm(tmp_path_factory):
    base = tmp_path_factory.mktemp("auth")
    kdc = kdc_mod.LabKdc(str(base / "kdc"), REALM, {"xcon": PASSWORD}, [MGMT, OTHER]).start()
    saved = os.environ.get("KRB5_CONFIG")
    os.environ["KRB5_CONFIG"] = kdc.krb5_conf
    handler = Recorder()
    users = {"CONTOSO\\xcon": PASSWORD}
    srv = WsmanServer([EndpointConfig("MGMT1", auth=ALL, fqdn=MGMT, users=users),
                       EndpointConfig("MGMT1S", scheme="https", auth=ALL, fqdn=MGMT, users=users),
                       EndpointConfig("NOKERB", auth=("ntlm",), users=users)],
                      handler, str(base / "certs"), kerberos=KerberosSetup(kdc.keytab, {REALM: "CONTOSO"}))
    ports = srv.start()
    tickets = {}
    for forwardable in (False, True):
        cache = f"FILE:{base}/ccache-{'fwd' if forwardable else 'plain'}"
        kdc.kinit("xcon", PASSWORD, cache, forwardable=forwardable)
        tickets[forwardable] = cache
    yield {"kdc": kdc, "srv": srv, "ports": ports, "handler": handler, "tickets": tickets}
    srv.stop()
    port = kdc.port
    kdc.stop()
    if saved is None:
        os.environ.pop("KRB5_CONFIG", None)
    else:
        os.environ["KRB5_CONFIG"] = saved
    listening = subprocess.run(["ss", "-Hlntu", f"sport = :{port}"], capture_output=True, text=True).stdout
    assert listening.strip() == "", f"the KDC still listens: {listening}"


def url(realm, name):
    scheme = "https" if name.endswith("S") else "http"
    return f"{scheme}://127.0.0.1:{realm['ports'][name]}/wsman"


def run(realm, name, **kwargs):
    kwargs.setdefault("server_cert_validation", "ignore")
    session = winrm.Session(url(realm, name), **kwargs)
    result = session.run_cmd("echo", ["hello"])
    assert result.status_code == 0, result.std_err
    assert result.std_out.startswith(f"{name}|CONTOSO\\xcon|echo hello".encode())
    endpoint, username, logon = realm["handler"].logons[-1]
    assert (endpoint, username) == (name, "CONTOSO\\xcon")
    return logon


def kerberos(realm, name, delegate, host=MGMT):
    os.environ["KRB5CCNAME"] = realm["tickets"][delegate]
    return run(realm, name, auth=(f"xcon@{REALM}", None), transport="kerberos",
               kerberos_hostname_override=host, kerberos_delegation=delegate)


def test_kdc_listens_on_loopback_only(realm):
    port = realm["kdc"].port
    lines = subprocess.run(["ss", "-Hlntu", f"sport = :{port}"], capture_output=True, text=True).stdout.splitlines()
    assert lines and all(f"127.0.0.1:{port}" in line for line in lines), lines
    with open(realm["kdc"].krb5_conf, encoding="utf-8") as handle:
        assert f"kdc = 127.0.0.1:{port}" in handle.read()


@pytest.mark.parametrize("name", ["MGMT1", "MGMT1S"])
def test_kerberos_without_delegation_leaves_no_identity(realm, name):
    before = realm["srv"].stats()[name]["encrypted_requests"]
    logon = kerberos(realm, name, delegate=False)
    assert (logon.method, logon.delegated) == ("kerberos", False)
    encrypted = realm["srv"].stats()[name]["encrypted_requests"] - before
    assert (encrypted > 0) == (name == "MGMT1")        # message encryption over http, TLS over https


@pytest.mark.parametrize("name", ["MGMT1", "MGMT1S"])
def test_kerberos_with_delegation_forwards_the_tgt(realm, name):
    logon = kerberos(realm, name, delegate=True)
    assert (logon.method, logon.delegated) == ("kerberos", True)


def test_delegation_needs_a_forwardable_ticket(realm):
    """Asking for delegation with a TGT that is not forwardable (kinit without -f) delegates nothing."""
    os.environ["KRB5CCNAME"] = realm["tickets"][False]
    logon = run(realm, "MGMT1", auth=(f"xcon@{REALM}", None), transport="kerberos",
                kerberos_hostname_override=MGMT, kerberos_delegation=True)
    assert logon.delegated is False


def test_a_ticket_for_another_host_is_refused(realm):
    """MGMT1 holds only its own key: a service ticket for HTTP/exout... does not log on to it."""
    from winrm.exceptions import InvalidCredentialsError

    failures = realm["srv"].stats()["MGMT1"]["auth_failures"]
    with pytest.raises(InvalidCredentialsError):
        kerberos(realm, "MGMT1", delegate=False, host=OTHER)
    assert realm["srv"].stats()["MGMT1"]["auth_failures"] > failures


def test_kerberos_is_not_offered_where_not_configured(realm):
    from winrm.exceptions import InvalidCredentialsError

    with pytest.raises(InvalidCredentialsError):
        kerberos(realm, "NOKERB", delegate=False)


@pytest.mark.parametrize("name", ["MGMT1", "MGMT1S"])
def test_credssp_delegates_the_password(realm, name):
    before = realm["srv"].stats()[name]["encrypted_requests"]
    logon = run(realm, name, auth=("CONTOSO\\xcon", PASSWORD), transport="credssp")
    assert (logon.method, logon.delegated) == ("credssp", True)
    assert (realm["srv"].stats()[name]["encrypted_requests"] > before) == (name == "MGMT1")


def test_credssp_wrong_password_is_refused(realm):
    from requests_credssp.exceptions import NTStatusException

    with pytest.raises(NTStatusException, match="(?i)8009030c"):      # SEC_E_LOGON_DENIED
        run(realm, "MGMT1", auth=("CONTOSO\\xcon", "wrong"), transport="credssp")


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
def test_basic_and_ntlm_never_delegate(realm, transport):
    logon = run(realm, "MGMT1", auth=("CONTOSO\\xcon", PASSWORD), transport=transport)
    assert (logon.method, logon.delegated) == (transport, False)
