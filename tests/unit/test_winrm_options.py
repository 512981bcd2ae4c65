"""Connection settings as Ansible's winrm connection plugin resolves them, and the typed errors.

Every test here goes through the real plugin (ansible.plugins.connection.winrm) and the real
WinRMClient; only pywinrm's Protocol is replaced where a test needs to see what it would be given
(the wire itself is covered by tests/integration/test_connection_options.py against the lab).
"""

from __future__ import annotations

import os
import stat

import pytest

from xcon import errors as xerr
from xcon import winrm_client as wc
from xcon import winrm_options as wo
from xcon.ops import OpFailed


class RecordingProtocol:
    """pywinrm's Protocol as far as the client uses it; remembers what it was built with."""

    built = []

    def __init__(self, endpoint, transport=None, username=None, password=None, **kwargs):
        RecordingProtocol.built.append(dict(kwargs, endpoint=endpoint, transport=transport, username=username,
                                            password=password, ccache=os.environ.get("KRB5CCNAME")))
        self.transport = self

    def open_shell(self, codepage=437):
        return "shell"

    def run_command(self, shell_id, command, console_mode_stdin=True):
        return "cmd"

    def send_command_input(self, shell_id, command_id, data, end=False):
        pass

    def get_command_output_raw(self, shell_id, command_id):
        return b"ok", b"", 0, True

    def cleanup_command(self, shell_id, command_id):
        pass

    def close_shell(self, shell_id):
        pass

    def close_session(self):
        pass


@pytest.fixture
def recorded(monkeypatch):
    monkeypatch.setattr(wc, "Protocol", RecordingProtocol)
    RecordingProtocol.built = []
    return RecordingProtocol.built


def run(conn, **kwargs):
    client = wc.WinRMClient(conn, **kwargs)
    assert client.run("c", b"") == (0, b"ok", b"")
    return client


# -- what the plugin resolves -----------------------------------------------------------------------
def test_aliases_reach_pywinrm(recorded):
    run({"inventory_hostname": "EXIN", "ansible_winrm_host": "10.9.8.7", "ansible_winrm_port": 5985,
         "ansible_winrm_user": "CONTOSO\\xcon", "ansible_winrm_password": "S3cret!", "ansible_winrm_transport": "ntlm"})
    built = recorded[-1]
    assert built["endpoint"] == "http://10.9.8.7:5985/wsman"
    # NTLM gets the password's one-way form, which pyspnego takes for it (test_winrm_ntlm_one_way.py)
    assert (built["transport"], built["username"], built["password"]) == ("ntlm", "CONTOSO\\xcon",
                                                                          wc._ntlm_one_way("S3cret!"))
    run({"ansible_host": "exin", "ansible_port": 5985, "ansible_user": "u", "ansible_winrm_pass": "p2",
         "ansible_winrm_transport": "basic"})
    assert recorded[-1]["password"] == "p2"


def test_precedence_and_command_line_keywords(recorded):
    plain = {"inventory_hostname": "EXIN", "ansible_host": "exin", "ansible_port": 5985, "ansible_winrm_transport": "ntlm"}
    # -u and -k only (how AWX passes a machine credential): the task's keywords
    settings = wo.resolve(plain, task_keys={"remote_user": "CONTOSO\\awx", "password": "fromcli"})
    assert (settings.username, settings.password) == ("CONTOSO\\awx", "fromcli")
    # an inventory variable wins over the command line, as in Ansible
    settings = wo.resolve(dict(plain, ansible_user="inv", ansible_winrm_password="invpw"),
                          task_keys={"remote_user": "cli", "password": "clipw"})
    assert (settings.username, settings.password) == ("inv", "invpw")
    # of two variables for one option, the plugin's later name wins (ansible_winrm_password)
    settings = wo.resolve(dict(plain, ansible_password="a", ansible_winrm_password="b"))
    assert settings.password == "b"


def test_defaults_and_pass_through(recorded):
    settings = wo.resolve({"inventory_hostname": "exin.contoso.example"})
    assert settings.endpoint == "https://exin.contoso.example:5986/wsman" and settings.transports == ["ssl"]
    assert wo.resolve({"inventory_hostname": "h", "ansible_user": "xcon@CONTOSO.EXAMPLE"}).transports == ["kerberos"]
    settings = wo.resolve({"inventory_hostname": "h", "ansible_winrm_path": "/custom", "ansible_winrm_scheme": "http",
                           "ansible_winrm_kerberos_delegation": True, "ansible_winrm_message_encryption": "never",
                           "ansible_winrm_credssp_disable_tlsv1_2": True, "ansible_winrm_ca_trust_path": "/ca.pem",
                           "ansible_winrm_read_timeout_sec": "70", "ansible_winrm_operation_timeout_sec": "60",
                           "ansible_winrm_no_such_kwarg": 1, "ansible_winrm_kinit_mode": "manual",
                           "ansible_winrm_credssp_auth_mechanism": "ntlm"})
    assert settings.endpoint == "http://h:5986/custom"
    # what pywinrm 0.5's Protocol does not accept is dropped with Ansible's warning (as for win_ping)
    assert settings.kwargs == {"kerberos_delegation": True, "message_encryption": "never", "credssp_disable_tlsv1_2": True,
                               "ca_trust_path": "/ca.pem", "read_timeout_sec": 70, "operation_timeout_sec": 60}
    assert settings.kerberos_managed is False
    # ansible_winrm_connection_timeout sets both timeouts, as the plugin does
    settings = wo.resolve({"inventory_hostname": "h", "ansible_winrm_connection_timeout": 45})
    assert (settings.kwargs["operation_timeout_sec"], settings.kwargs["read_timeout_sec"]) == (45, 55)
    # the secret stays out of repr
    secret = wo.resolve({"inventory_hostname": "h", "ansible_user": "u", "ansible_password": "Pw!9"})
    assert "Pw!9" not in repr(secret) and secret.password == "Pw!9"


def test_transport_list_is_tried_in_order(recorded, monkeypatch):
    monkeypatch.setattr(wc.winrm_transport, "HAVE_KERBEROS", False)
    client = run({"ansible_host": "h", "ansible_port": 5985, "ansible_user": "u", "ansible_password": "p",
                  "ansible_winrm_transport": "kerberos, ntlm"})
    assert [b["transport"] for b in recorded] == ["ntlm"] and client.transport == "ntlm"


def test_an_unknown_transport_is_a_settings_error():
    with pytest.raises(wc.XconSettingsError, match="does not support transport"):
        wc.WinRMClient({"ansible_host": "h", "ansible_winrm_transport": "carrier-pigeon"})


class FakeTask:
    def __init__(self, remote_user=None):
        self.remote_user = remote_user

    def dump_attrs(self):
        return {"remote_user": self.remote_user, "port": None, "retries": 3, "timeout": 0}


class FakePlayContext:
    timeout = 10

    def __init__(self, password=None):
        self.password = password


def test_command_line_password_goes_to_a_management_host_but_no_task_host_secret():
    task = FakeTask("CONTOSO\\awx")
    # the endpoint is the task's host: exactly what TaskExecutor passes
    assert wo.task_keys_for(task, FakePlayContext("cli"), {})["password"] == "cli"
    # a management host: the command line's password when the task host has none of its own...
    assert wo.task_keys_for(task, FakePlayContext("cli"), {}, endpoint_vars={})["password"] == "cli"
    # ...never the task host's own (PlayContext holds the task host's ansible_password then)
    keys = wo.task_keys_for(task, FakePlayContext("exin-secret"), {"ansible_password": "exin-secret"}, endpoint_vars={})
    assert "password" not in keys and keys["remote_user"] == "CONTOSO\\awx" and "retries" not in keys
    # the management host's own variable, as for delegate_to
    keys = wo.task_keys_for(task, FakePlayContext("exin-secret"), {"ansible_password": "exin-secret"},
                            endpoint_vars={"ansible_ssh_pass": "mgmt-secret"})
    assert keys["password"] == "mgmt-secret"


# -- Kerberos: missing library, managed kinit ---------------------------------------------------------
def test_kerberos_without_the_library_names_the_package(recorded, monkeypatch):
    monkeypatch.setattr(wc.winrm_transport, "HAVE_KERBEROS", False)
    client = wc.WinRMClient({"ansible_host": "h", "ansible_user": "xcon@CONTOSO.EXAMPLE", "ansible_password": "p"})
    with pytest.raises(wc.XconClientLibraryMissing) as info:
        client.run("c", b"")
    assert xerr.error_code(info.value) == "XCON-CLIENT-LIBRARY-MISSING"
    assert "pykerberos" in str(info.value) and "requirements-kerberos.txt" in str(info.value) and "libkrb5-dev" in str(info.value)
    assert recorded == []  # nothing was sent


def test_credssp_without_the_library_names_the_package(recorded, monkeypatch):
    monkeypatch.setattr(wc.winrm_transport, "HAVE_CREDSSP", False)
    client = wc.WinRMClient({"ansible_host": "h", "ansible_user": "u", "ansible_password": "p", "ansible_winrm_transport": "credssp"})
    with pytest.raises(wc.XconClientLibraryMissing, match="requests-credssp.*requirements-credssp.txt"):
        client.run("c", b"")


def fake_kinit(tmp_path, rc=0, message=""):
    """A kinit on PATH that records its arguments, environment and stdin."""
    log = tmp_path / "kinit.log"
    script = tmp_path / "kinit"
    script.write_text("#!/bin/sh\n"
                      f'echo "args=$*" >> {log}\n'
                      f'echo "ccache=$KRB5CCNAME" >> {log}\n'
                      f'read pw; echo "stdin=$pw" >> {log}\n'
                      f'echo "{message}" >&2\nexit {rc}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return log


def test_managed_kinit_per_client_with_delegation(recorded, monkeypatch, tmp_path):
    log = fake_kinit(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(wc.winrm_transport, "HAVE_KERBEROS", True)
    monkeypatch.delenv("KRB5CCNAME", raising=False)
    conn = {"ansible_host": "mgmt01", "ansible_user": "xcon@CONTOSO.EXAMPLE", "ansible_password": "Kpw1",
            "ansible_winrm_kerberos_delegation": True}
    first = run(conn)
    second = run(dict(conn, ansible_winrm_kerberos_delegation=False))
    run_again = first.run("c", b"")  # the same client: no second kinit, its own ccache again
    assert run_again[0] == 0
    lines = log.read_text().splitlines()
    assert lines[0] == "args=-f xcon@CONTOSO.EXAMPLE" and lines[2] == "stdin=Kpw1"
    assert lines[3] == "args=xcon@CONTOSO.EXAMPLE" and len(lines) == 6
    first_cc, second_cc = lines[1].split("=", 1)[1], lines[4].split("=", 1)[1]
    assert first_cc.startswith("FILE:") and first_cc != second_cc
    assert [b["ccache"] for b in recorded] == [first_cc, second_cc, first_cc]
    assert recorded[0]["kerberos_delegation"] is True and recorded[0]["transport"] == "kerberos"


def test_kinit_refused_is_access_denied_and_hides_the_password(recorded, monkeypatch, tmp_path):
    fake_kinit(tmp_path, rc=1, message="kinit: Password incorrect while getting initial credentials")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(wc.winrm_transport, "HAVE_KERBEROS", True)
    client = wc.WinRMClient({"ansible_host": "h", "ansible_user": "xcon@CONTOSO.EXAMPLE", "ansible_password": "Kpw1"})
    with pytest.raises(wc.XconAuthError) as info:
        client.run("c", b"")
    assert "Password incorrect" in str(info.value) and "Kpw1" not in str(info.value)
    assert xerr.error_code(info.value) == "XCON-ACCESS-DENIED" and recorded == []


def test_kinit_not_installed_names_the_debian_package(recorded, monkeypatch):
    monkeypatch.setattr(wc.winrm_transport, "HAVE_KERBEROS", True)
    client = wc.WinRMClient({"ansible_host": "h", "ansible_user": "xcon@CONTOSO.EXAMPLE", "ansible_password": "p",
                             "ansible_winrm_kinit_cmd": "kinit-that-does-not-exist"})
    with pytest.raises(wc.XconClientLibraryMissing, match="krb5-user"):
        client.run("c", b"")


# -- TLS ------------------------------------------------------------------------------------------------
def test_missing_ca_file_is_a_tls_failure_found_before_connecting(recorded, monkeypatch):
    client = wc.WinRMClient({"ansible_host": "h", "ansible_user": "u", "ansible_password": "p",
                             "ansible_winrm_ca_trust_path": "/nonexistent/contoso-ca.pem"})
    with pytest.raises(wc.XconTLSError, match="/nonexistent/contoso-ca.pem") as info:
        client.run("c", b"")
    assert xerr.error_code(info.value) == "XCON-TLS-FAILED" and recorded == []
    # the same through requests' environment variable when no path is given
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    with pytest.raises(wc.XconTLSError, match="REQUESTS_CA_BUNDLE"):
        wc.WinRMClient({"ansible_host": "h", "ansible_user": "u", "ansible_password": "p"}).run("c", b"")
    # ignored validation needs no CA file
    run({"ansible_host": "h", "ansible_user": "u", "ansible_password": "p", "ansible_winrm_server_cert_validation": "ignore",
         "ansible_winrm_ca_trust_path": "/nonexistent/contoso-ca.pem"})


# -- one mapping by exception type ------------------------------------------------------------------------
def test_error_codes_follow_the_exception_type():
    import requests

    client = wc.WinRMClient({"ansible_host": "h", "ansible_user": "u", "ansible_password": "p"})
    tls = client._translate(requests.exceptions.SSLError("CERTIFICATE_VERIFY_FAILED"), "open shell")
    refused = client._translate(requests.exceptions.ConnectionError("refused"), "open shell")
    assert xerr.error_code(tls) == "XCON-TLS-FAILED"  # was XCON-OPERATION-FAILED
    assert xerr.error_code(refused) == "XCON-UNREACHABLE"
    assert xerr.error_code(wc.XconAuthError("x")) == "XCON-ACCESS-DENIED"
    assert xerr.error_code(wc.XconProtocolError("fault", code=5)) == "XCON-OPERATION-FAILED"
    assert xerr.error_code(OpFailed("AccessDenied", "0x80070005", "no")) == "XCON-ACCESS-DENIED"
    assert xerr.error_code(OpFailed("NotFound", None, "gone")) == "XCON-OPERATION-FAILED"
    assert xerr.error_code(ValueError("anything else")) == "XCON-OPERATION-FAILED"
    assert set(xerr.ERROR_CODES) == {getattr(cls, "report_code") for cls in (
        wc.XconUnreachable, wc.XconTLSError, wc.XconAuthError, wc.XconClientLibraryMissing, wc.XconError,
        xerr.XconSecondHop)}
