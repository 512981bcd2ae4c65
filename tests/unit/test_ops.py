"""Payload building and answer decoding (the wire format of docs/design.md)."""
import base64
import json
import os

import pytest

from xcon import ops

PREFIX = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "


def read(name):
    return open(os.path.join(ops.OPS_DIR, name), "rb").read().decode("utf-8")


def test_command_line_is_the_bootstrap():
    command, _ = ops.build_payload([{"op": "tcp_probe", "params": {"host": "h", "port": 102}}])
    assert command.startswith(PREFIX)
    assert base64.b64decode(command[len(PREFIX):]).decode("utf-16-le") == read("bootstrap.ps1")
    assert len(command) < 8191
    assert command == ops.command_line()


def test_stdin_parts_each_script_once_and_request_last():
    batch = [
        {"op": "dir_search", "params": {"server": "EXIN", "base": ""}},
        {"op": "event_query", "params": {"server": "EXIN"}},
        {"op": "dir_search", "params": {"server": "EXIN", "base": "o=X"}, "id": "x"},
    ]
    _, stdin = ops.build_payload(batch, stop_on_error=False)
    parts = stdin.decode("utf-8").split("\0\0\0\0")
    assert parts[0] == read("runner.ps1")
    assert parts[1] == read("lib_json.ps1") and parts[1].startswith("# xcon-lib: json\n")
    assert parts[2:-1] == [read("op_dir_search.ps1"), read("op_event_query.ps1")]
    request = json.loads(parts[-1])
    assert request == {"version": 1, "stop_on_error": False, "ops": [
        {"id": "1", "op": "dir_search", "params": {"server": "EXIN", "base": ""}},
        {"id": "2", "op": "event_query", "params": {"server": "EXIN"}},
        {"id": "x", "op": "dir_search", "params": {"server": "EXIN", "base": "o=X"}}]}


def test_request_json_is_ascii():
    _, stdin = ops.build_payload([{"op": "dir_modify", "params": {"server": "S", "dn": "cn=Zoë", "changes": [
        {"attribute": "Connected-Domains", "action": "replace", "values": ["A\u00a7B\u00a799\u00a7X400:c=US;"]}]}}])
    last = stdin.split(b"\0\0\0\0")[-1]
    last.decode("ascii")
    assert b"\\u00a7" in last and json.loads(last)["ops"][0]["params"]["dn"] == "cn=Zoë"


def test_unknown_op_and_duplicate_ids_rejected():
    with pytest.raises(ValueError):
        ops.build_payload([{"op": "format_disk", "params": {}}])
    with pytest.raises(ValueError):
        ops.build_payload([{"op": "service", "id": "1"}, {"op": "service", "id": "1"}])


def test_parse_results_errors_and_skips():
    stdout = json.dumps({"version": 1, "results": [
        {"id": "1", "ok": True, "data": {"dn": "cn=A"}},
        {"id": "2", "ok": False, "error": {"category": "AccessDenied", "hresult": "0x80070005", "message": "denied"}},
        {"id": "3", "ok": False, "skipped": True}]}).encode()
    results = ops.parse_output(0, stdout, b"")
    assert results[0] == ops.OpResult("1", True, {"dn": "cn=A"})
    assert (results[1].error_category, results[1].hresult, results[1].message) == ("AccessDenied", "0x80070005", "denied")
    assert results[2].skipped and not results[2].ok
    with pytest.raises(ops.OpFailed) as info:
        ops.raise_first_failure(results)
    assert info.value.category == "AccessDenied" and info.value.hresult == "0x80070005"
    assert isinstance(info.value, ops.OpAccessDenied)  # its type carries XCON-ACCESS-DENIED
    assert ops.raise_first_failure(results[:1]) == results[:1]
    by_id = {r.id: r for r in results}
    with pytest.raises(ops.OpFailed, match="dir_modify CN=X on EXIN: denied"):
        ops.raise_first_failure(by_id, "dir_modify CN=X on EXIN")


def test_parse_clixml_failure():
    stderr = ('#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
              '<S S="Error">Cannot bind &amp; run_x000D__x000A_</S><S S="Error">second line_x000D__x000A_</S></Objs>').encode()
    with pytest.raises(ops.RunnerError) as info:
        ops.parse_output(1, b"", stderr)
    assert "Cannot bind & run\nsecond line" in str(info.value)
    assert info.value.rc == 1
    assert ops.decode_clixml("plain text\r\n") == "plain text"


def test_parse_rejects_garbage():
    with pytest.raises(ops.RunnerError):
        ops.parse_output(0, b"WARNING: something\r\n{", b"")
    with pytest.raises(ops.RunnerError):
        ops.parse_output(0, b'{"version": 2, "results": []}', b"")


class FakeClient:
    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def run(self, command, stdin):
        self.calls.append((command, stdin))
        return self.answer(json.loads(stdin.split(b"\0\0\0\0")[-1]))


def test_run_ops_in_request_order():
    def answer(request):
        results = [{"id": o["id"], "ok": True, "data": {"n": o["op"]}} for o in reversed(request["ops"])]
        return 0, json.dumps({"version": 1, "results": results}).encode(), b""

    client = FakeClient(answer)
    results = ops.run_ops(client, [{"op": "service", "params": {}}, {"op": "tcp_probe", "params": {}}])
    assert [r.data["n"] for r in results] == ["service", "tcp_probe"]
    assert [r.op for r in results] == ["service", "tcp_probe"] and len(client.calls) == 1
    assert results[0].raise_for_error() == {"n": "service"}


def test_run_ops_missing_result():
    client = FakeClient(lambda request: (0, b'{"version": 1, "results": []}', b""))
    with pytest.raises(ops.RunnerError):
        ops.run_ops(client, [{"op": "service", "params": {}}])


# -- WinRMClient: connection variables, typed errors, write-safe retry ----------------------------
import requests  # noqa: E402

from xcon import winrm_client as wc  # noqa: E402


def test_client_defaults_follow_ansible():
    https = wc.WinRMClient({"ansible_host": "exin"})
    assert https.endpoint == "https://exin:5986/wsman" and https.transport == "ssl" and https.cert_validation == "validate"
    http = wc.WinRMClient({"ansible_host": "exin", "ansible_port": 5985, "ansible_winrm_transport": "ntlm",
                           "ansible_winrm_server_cert_validation": "ignore", "ansible_password": "S3cret!"})
    assert http.endpoint == "http://exin:5985/wsman" and http.transport == "ntlm" and http.cert_validation == "ignore"
    assert "S3cret!" not in repr(http)


class FakeProtocol:
    log = []
    fail = {}

    def __init__(self, *args, **kwargs):
        self.transport = self

    def _step(self, name):
        FakeProtocol.log.append(name)
        exc = FakeProtocol.fail.get(name)
        if exc is not None:
            if isinstance(exc, list):
                if exc:
                    raise exc.pop(0)
                return
            raise exc

    def open_shell(self, codepage=437):
        assert codepage == 437  # ASCII on the wire: no reliance on 65001
        self._step("create")
        return "shell"

    def run_command(self, shell_id, command, console_mode_stdin=True):
        self._step("command")
        return "cmd"

    def send_command_input(self, shell_id, command_id, data, end=False):
        assert end
        self._step("send")

    def get_command_output_raw(self, shell_id, command_id):
        self._step("receive")
        return b"out", b"", 0, True

    def cleanup_command(self, shell_id, command_id):
        self._step("signal")

    def close_shell(self, shell_id):
        self._step("delete")

    def close_session(self):
        pass


def run_fake(monkeypatch, fail):
    monkeypatch.setattr(wc, "Protocol", FakeProtocol)
    monkeypatch.setattr(wc.time, "sleep", lambda s: None)
    FakeProtocol.log, FakeProtocol.fail = [], fail
    return wc.WinRMClient({"ansible_host": "exin", "ansible_port": 5985, "ansible_user": "u", "ansible_password": "p"})


def test_client_one_command_sequence(monkeypatch):
    client = run_fake(monkeypatch, {})
    assert client.run("cmdline", b"stdin") == (0, b"out", b"")
    assert FakeProtocol.log == ["create", "command", "send", "receive", "signal", "delete"]


def test_client_retries_once_before_command(monkeypatch):
    client = run_fake(monkeypatch, {"command": [requests.exceptions.ConnectionError("reset")]})
    assert client.run("c", b"s")[0] == 0
    assert FakeProtocol.log.count("create") == 2 and FakeProtocol.log.count("send") == 1


def test_client_never_retries_after_send(monkeypatch):
    client = run_fake(monkeypatch, {"receive": requests.exceptions.ConnectionError("dropped")})
    with pytest.raises(wc.XconUnreachable):
        client.run("c", b"s")
    assert FakeProtocol.log.count("send") == 1 and FakeProtocol.log.count("create") == 1


def test_client_auth_and_fault_errors(monkeypatch):
    from winrm.exceptions import InvalidCredentialsError, WSManFaultError
    client = run_fake(monkeypatch, {"create": InvalidCredentialsError("rejected")})
    with pytest.raises(wc.XconAuthError):
        client.run("c", b"")
    assert FakeProtocol.log.count("create") == 1
    fault = WSManFaultError(500, "x", "<r/>", "quota", wsman_fault_code=2150859174)
    client = run_fake(monkeypatch, {"command": fault})
    with pytest.raises(wc.XconProtocolError) as info:
        client.run("c", b"")
    assert info.value.code == 2150859174


def test_target_credentials_go_only_with_ops_that_reach_the_server():
    from xcon import ops as xops
    from xcon.mask import mask

    ops = [{"id": "c", "op": "dir_search", "params": {"server": "EXIN"}},
           {"id": "e", "op": "event_query", "params": {"server": "EXIN"}},
           {"id": "p", "op": "tcp_probe", "params": {"host": "EXIN", "port": 102}}]
    sent = xops.with_target_credentials(ops, ("CONTOSO\\xcon", "pw"))
    assert [o["params"].get("target_user") for o in sent] == ["CONTOSO\\xcon", "CONTOSO\\xcon", None]
    assert ops[0]["params"] == {"server": "EXIN"}                      # the caller's ops are not changed
    assert mask(sent)[1]["params"]["target_password"] == "********"
    assert xops.with_target_credentials(ops, None) is ops
