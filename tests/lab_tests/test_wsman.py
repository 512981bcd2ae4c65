"""The lab's WS-Management server against real, unmodified pywinrm (loopback only).

A trivial echo handler stands in for the lab's command handler: it records every call and
answers with the endpoint, the account and the command line (or the stdin it got).
"""
from __future__ import annotations

import base64
import socket
import threading
import time

import pytest
import requests
import winrm
from winrm.exceptions import InvalidCredentialsError, WinRMOperationTimeoutError, WSManFaultError
from winrm.protocol import Protocol

from xconlab_lab.wsman import EndpointConfig, WsmanServer, clixml_error

USER, PASSWORD = "CONTOSO\\xcon", "S3cret!"
TOO_LONG = b"The command line is too long.\r\n"


class EchoHandler:
    """Records calls; ``echo ...`` -> the line, ``cat`` -> stdin, ``big N`` -> N bytes,
    ``powershell -encodedcommand B64`` -> a PowerShell (CLIXML) error naming the script."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, endpoint, username, command_line, stdin):
        with self.lock:
            self.calls.append((endpoint, username, command_line, stdin))
        words = command_line.split()
        if words[:2] == ["powershell", "-encodedcommand"]:
            script = base64.b64decode(words[2]).decode("utf-16-le")
            return b"", clixml_error(f"ps failed: {script}\nsecond line"), 1
        if words[0] == "cat":
            return stdin, b"", 0
        if words[0] == "big":
            return b"x" * int(words[1]), b"e" * 1000, 3
        return f"{endpoint}|{username}|{command_line}".encode(), b"", 0


ENDPOINTS = [
    EndpointConfig("HTTP"),                                        # http, basic + ntlm
    EndpointConfig("HTTPS", scheme="https"),
    EndpointConfig("BASIC", auth=("basic",)),
    EndpointConfig("NTLM", auth=("ntlm",), users={"CONTOSO\\xcon": "Other-pw1", "ADMIN": "adm"}),
    EndpointConfig("FAULTY"),
    EndpointConfig("QUOTA", auth=("basic",)),
    EndpointConfig("COUNT", auth=("basic",)),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    handler = EchoHandler()
    srv = WsmanServer(ENDPOINTS, handler, str(tmp_path_factory.mktemp("wsman-certs")))
    ports = srv.start()
    srv.handler_calls = handler.calls
    srv.ports = ports
    yield srv
    srv.stop()


@pytest.fixture
def faulty(lab):
    lab.clear_faults("FAULTY")
    yield lab
    lab.clear_faults("FAULTY")


def url(lab, name):
    scheme = "https" if name == "HTTPS" else "http"
    return f"{scheme}://127.0.0.1:{lab.ports[name]}/wsman"


def session(lab, name, transport="basic", user=USER, password=PASSWORD, **kwargs):
    return winrm.Session(url(lab, name), auth=(user, password), transport=transport, **kwargs)


def protocol(lab, name, transport="basic", user=USER, password=PASSWORD, **kwargs):
    return Protocol(url(lab, name), transport=transport, username=user, password=password, **kwargs)


# ---- transports and authentication -------------------------------------------------------------
def test_http_basic_run_cmd_normalises_the_user(lab):
    rs = session(lab, "HTTP", user="contoso\\XCON").run_cmd("echo", ["hello", "world"])
    assert (rs.status_code, rs.std_out, rs.std_err) == (0, b"HTTP|CONTOSO\\xcon|echo hello world", b"")


def test_http_ntlm_uses_message_encryption(lab):
    before = lab.stats()["HTTP"]["encrypted_requests"]
    rs = session(lab, "HTTP", transport="ntlm").run_cmd("echo", ["sealed"])
    assert rs.std_out == b"HTTP|CONTOSO\\xcon|echo sealed"
    # Create, Command, Receive, Signal, Delete all arrived sealed (the empty setup POST is not counted)
    assert lab.stats()["HTTP"]["encrypted_requests"] - before == 5


def test_ntlm_without_encryption_and_without_domain(lab):
    # message_encryption=never: the connection stays authenticated, bodies are plain SOAP
    before = lab.stats()["NTLM"]["encrypted_requests"]
    rs = session(lab, "NTLM", transport="ntlm", user="xcon", password="Other-pw1",
                 message_encryption="never").run_cmd("echo", ["plain"])
    assert rs.std_out == b"NTLM|CONTOSO\\xcon|echo plain"
    assert lab.stats()["NTLM"]["encrypted_requests"] == before
    # an account configured without a domain; each endpoint checks its own passwords
    assert session(lab, "NTLM", transport="ntlm", user="admin", password="adm").run_cmd("echo").std_out \
        == b"NTLM|ADMIN|echo"


def test_https_basic_and_ntlm_validate_against_the_lab_ca(lab):
    for transport in ("basic", "ntlm"):  # ntlm over https: channel binding, no message encryption
        rs = session(lab, "HTTPS", transport=transport, server_cert_validation="validate",
                     ca_trust_path=lab.ca_path).run_cmd("echo", [transport])
        assert rs.std_out == f"HTTPS|CONTOSO\\xcon|echo {transport}".encode()
    assert lab.stats()["HTTPS"]["encrypted_requests"] == 0


def test_https_is_refused_without_the_lab_ca(lab):
    with pytest.raises(requests.exceptions.SSLError):
        session(lab, "HTTPS", server_cert_validation="validate", ca_trust_path=None).run_cmd("echo")


@pytest.mark.parametrize("name,transport,password", [
    ("HTTP", "basic", "wrong"), ("HTTP", "ntlm", "wrong"), ("HTTPS", "ntlm", "wrong"),
    ("BASIC", "ntlm", PASSWORD),      # method not enabled on the endpoint
    ("NTLM", "basic", "Other-pw1"),
    ("NTLM", "ntlm", PASSWORD),       # another endpoint's password
])
def test_bad_credentials_raise_invalid_credentials(lab, name, transport, password):
    with pytest.raises(InvalidCredentialsError):
        session(lab, name, transport=transport, password=password,
                ca_trust_path=lab.ca_path).run_cmd("echo")


# ---- commands ---------------------------------------------------------------------------------
def test_long_command_line_is_refused_but_stdin_is_not(lab):
    script = "Write-Output 'padding padding padding padding'\r\n" * 170       # ~8 KB
    calls = len(lab.handler_calls)
    rs = session(lab, "HTTP").run_ps(script)                                # ~22 KB command line
    assert (rs.status_code, rs.std_out, rs.std_err) == (1, b"", TOO_LONG)
    assert len(lab.handler_calls) == calls                                  # handler not called

    p = protocol(lab, "HTTP", transport="ntlm")
    shell = p.open_shell(codepage=65001)
    command = p.run_command(shell, "cat", ["-"])
    data = script.encode("utf-8")
    p.send_command_input(shell, command, data[:3000])                       # stdin accumulates
    p.send_command_input(shell, command, data[3000:], end=True)
    out, err, code = p.get_command_output(shell, command)
    p.cleanup_command(shell, command)
    p.close_shell(shell)
    assert (out, err, code) == (data, b"", 0)
    assert lab.handler_calls[-1][2:] == ("cat -", data)


def test_run_ps_cleans_clixml_stderr(lab):
    rs = session(lab, "HTTP").run_ps("Get-Thing")
    assert rs.status_code == 1
    assert rs.std_err == b"ps failed: Get-Thing\nsecond line"


def test_clixml_error_format():
    assert clixml_error("a <b> & c_x0041_\nd") == (
        b'#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        b'<S S="Error">a &lt;b&gt; &amp; c_x005F_x0041__x000D__x000A_d_x000D__x000A_</S></Objs>')


def test_large_output_spans_several_receives(lab):
    p = protocol(lab, "HTTP")
    shell = p.open_shell()
    command = p.run_command(shell, "big", ["400000"])
    receives = 0
    out = b""
    while True:
        o, e, code, done = p.get_command_output_raw(shell, command)
        receives += 1
        out += o
        if done:
            break
    p.cleanup_command(shell, command)
    p.close_shell(shell)
    assert (len(out), code) == (400000, 3)
    assert receives >= 3                                  # 153600-byte envelopes


def test_unknown_shell_and_command_are_wsman_faults(lab):
    p = protocol(lab, "HTTP")
    with pytest.raises(WSManFaultError) as err:
        p.run_command("11111111-2222-3333-4444-555555555555", "echo")
    assert err.value.wsman_fault_code == 2150858843
    assert "shell was not found" in err.value.response
    shell = p.open_shell()
    with pytest.raises(WSManFaultError) as err:
        p.get_command_output_raw(shell, "99999999-2222-3333-4444-555555555555")
    assert err.value.wsman_fault_code == 2150858843
    p.close_shell(shell)
    with pytest.raises(WSManFaultError):
        p.close_shell(shell)                              # already deleted


def test_shell_quota_per_user(lab):
    p = protocol(lab, "QUOTA")
    shells = [p.open_shell() for _ in range(30)]
    with pytest.raises(WSManFaultError) as err:
        p.open_shell()
    assert err.value.wsman_fault_code == err.value.wmierror_code == 2150859174
    p.close_shell(shells.pop())
    shells.append(p.open_shell())                         # room again
    for shell in shells:
        p.close_shell(shell, close_session=False)


def test_several_commands_per_shell_and_the_operations_quota(tmp_path):
    # Ansible keeps one shell and runs every command in it; WinRS counts them against a quota
    # (never given back) and Ansible re-creates the shell on wmierror_code 0x803381A6.
    srv = WsmanServer([EndpointConfig("OPS")], EchoHandler(), str(tmp_path), max_operations_per_shell=3)
    port = srv.start()["OPS"]
    try:
        p = Protocol(f"http://127.0.0.1:{port}/wsman", transport="basic", username=USER, password=PASSWORD)
        shell = p.open_shell(codepage=65001)
        ids = [p.run_command(shell, "echo", [str(i)]) for i in range(3)]
        for i, command in reversed(list(enumerate(ids))):  # each Receive gets its own command's output
            assert p.get_command_output(shell, command) == (f"OPS|CONTOSO\\xcon|echo {i}".encode(), b"", 0)
            p.cleanup_command(shell, command)
        with pytest.raises(WSManFaultError) as err:
            p.run_command(shell, "echo")
        assert err.value.wmierror_code == 0x803381A6
        p.close_shell(shell)
    finally:
        srv.stop()


def test_stats_count_requests_commands_and_shells(lab):
    session(lab, "COUNT").run_cmd("echo", ["one"])
    assert lab.stats()["COUNT"] == {"http_requests": 5, "commands": 1, "shells": 1, "open_shells": 0,
                                    "encrypted_requests": 0, "auth_failures": 0}
    with pytest.raises(InvalidCredentialsError):
        session(lab, "COUNT", password="nope").run_cmd("echo")
    stats = lab.stats()["COUNT"]
    assert (stats["http_requests"], stats["auth_failures"]) == (6, 1)


# ---- faults -----------------------------------------------------------------------------------
def test_operation_timeout_is_retried_by_pywinrm(faulty):
    faulty.set_fault("FAULTY", "operation_timeout", n=2)
    p = protocol(faulty, "FAULTY")
    shell = p.open_shell()
    command = p.run_command(shell, "echo", ["late"])
    for _ in range(2):
        with pytest.raises(WinRMOperationTimeoutError):
            p.get_command_output_raw(shell, command)
    assert p.get_command_output_raw(shell, command) == (b"FAULTY|CONTOSO\\xcon|echo late", b"", 0, True)
    p.close_shell(shell)

    faulty.set_fault("FAULTY", "operation_timeout", n=2)
    rs = session(faulty, "FAULTY", transport="ntlm").run_cmd("echo", ["retried"])
    assert rs.std_out == b"FAULTY|CONTOSO\\xcon|echo retried"


def test_drop_after_closes_the_connection(faulty):
    faulty.set_fault("FAULTY", "drop_after", n=1)
    p = protocol(faulty, "FAULTY")
    p.open_shell()                                        # answered
    with pytest.raises(requests.exceptions.ConnectionError):
        p.open_shell()                                    # dropped without an answer
    faulty.clear_faults("FAULTY")
    assert session(faulty, "FAULTY").run_cmd("echo").status_code == 0


def test_slow_delays_every_response(faulty):
    faulty.set_fault("FAULTY", "slow", seconds=0.25)
    p = protocol(faulty, "FAULTY")
    begin = time.monotonic()
    p.close_shell(p.open_shell())
    assert time.monotonic() - begin >= 0.5


def test_refuse_credentials(faulty):
    faulty.set_fault("FAULTY", "refuse_credentials")
    for transport in ("basic", "ntlm"):
        with pytest.raises(InvalidCredentialsError):
            session(faulty, "FAULTY", transport=transport).run_cmd("echo")
    faulty.clear_faults()
    assert session(faulty, "FAULTY", transport="ntlm").run_cmd("echo").status_code == 0


def test_set_fault_rejects_unknown_kinds_and_endpoints(lab):
    with pytest.raises(ValueError):
        lab.set_fault("FAULTY", "explode")
    with pytest.raises(KeyError):
        lab.set_fault("NOPE", "slow", seconds=1)
    with pytest.raises(TypeError):
        lab.set_fault("FAULTY", "drop_after")


# ---- lifecycle --------------------------------------------------------------------------------
def _refused(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_stop_closes_ports_and_joins_threads(tmp_path):
    srv = WsmanServer([EndpointConfig("ONE"), EndpointConfig("TWO", scheme="https")],
                      EchoHandler(), str(tmp_path))
    ports = srv.start()
    p = Protocol(f"http://127.0.0.1:{ports['ONE']}/wsman", transport="ntlm",
                 username=USER, password=PASSWORD)
    p.open_shell()                                        # a kept-alive, authenticated connection
    srv.stop()
    assert all(_refused(port) for port in ports.values())
    assert not [t for t in threading.enumerate() if t.name.startswith(srv.thread_prefix)]


def test_200_endpoints_start_and_stop_fast(tmp_path):
    configs = [EndpointConfig(f"EX{i:03d}", scheme="https" if i % 2 else "http") for i in range(200)]
    begin = time.monotonic()
    srv = WsmanServer(configs, EchoHandler(), str(tmp_path))
    ports = srv.start()
    assert len(set(ports.values())) == 200
    rs = winrm.Session(f"http://127.0.0.1:{ports['EX198']}/wsman", auth=(USER, PASSWORD),
                       transport="ntlm").run_cmd("echo")
    assert rs.std_out == b"EX198|CONTOSO\\xcon|echo"
    srv.stop()
    assert time.monotonic() - begin < 10
    assert _refused(ports["EX000"]) and _refused(ports["EX199"])
