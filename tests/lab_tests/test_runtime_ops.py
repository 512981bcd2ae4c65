"""The project's ops (module_utils/xcon) end to end over the lab's WS-Management endpoints: directory
searches on every transport, op errors and skips, the runner's integrity checks, refused command
lines, and the endpoints' request counters.
"""
from __future__ import annotations

import base64
import json

import pytest

from xcon.ops import build_payload, command_line, run_ops
from xcon.winrm_client import XconError

from runtime_helpers import connector_name, expected_connectors, search_connectors, topology_data, winrm_endpoint
from runtime_helpers import kb_lab, transports_lab  # noqa: F401  (the lab fixtures)

# ---- the project's ops end to end -------------------------------------------------------------
def test_dir_search_over_inventory_transport(kb_lab):
    topology = topology_data()
    for name, _ in winrm_endpoint(topology):
        entries = search_connectors(kb_lab.client(name), name)
        names = sorted(connector_name(e) for e in entries if e["dn"].lower().startswith("cn="))
        assert set(expected_connectors(topology, name)) <= set(names), (name, names)


def test_dir_search_http_ntlm_and_https_basic(transports_lab):
    topology = topology_data()
    seen = set()
    for name, _ in winrm_endpoint(topology):
        host = transports_lab.group("xcon_exchange")[name]
        seen.add((host["ansible_winrm_scheme"], host["ansible_winrm_transport"]))
        entries = search_connectors(transports_lab.client(name), name)
        assert set(expected_connectors(topology, name)) <= {connector_name(e) for e in entries}
    assert ("http", "ntlm") in seen
    assert len(seen) == 1 or ("https", "basic") in seen


def test_https_requires_the_lab_ca(transports_lab):
    https = [n for n, h in transports_lab.group("xcon_exchange").items() if h["ansible_winrm_scheme"] == "https"]
    if not https:
        pytest.skip("the KB topology has a single WinRM server")
    certifi_bundle = __import__("certifi").where()
    with pytest.raises(XconError):
        search_connectors(transports_lab.client(https[0], ansible_winrm_ca_trust_path=certifi_bundle), https[0])


def test_op_errors_and_skips(kb_lab):
    name = winrm_endpoint(topology_data())[0][0]
    results = run_ops(kb_lab.client(name), [
        {"op": "dir_search", "params": {"server": name, "base": "cn=No Such Thing,o=NOWHERE", "scope": "base"}},
        {"op": "dir_search", "params": {"server": name, "base": "", "scope": "base"}},
    ])
    assert not results[0].ok and results[0].error_category and results[0].hresult.startswith("0x")
    assert len(results[0].hresult) == 10 and results[0].hresult == results[0].hresult.upper().replace("0X", "0x")
    assert results[1].skipped and not results[1].ok


def test_op_not_sent_with_request_fails(kb_lab):
    """The request names an op whose script part is missing: the runner's InvalidParameter."""
    name = winrm_endpoint(topology_data())[0][0]
    command, stdin = build_payload([{"op": "dir_search", "params": {"server": name, "base": "", "scope": "base"}}])
    parts = stdin.decode("utf-8").split("\0\0\0\0")
    request = json.loads(parts[-1])
    request["ops"].insert(0, {"id": "0", "op": "service", "params": {"server": name, "name": "MSExchangeMTA"}})
    stdin = "\0\0\0\0".join(parts[:-1] + [json.dumps(request)]).encode("utf-8")
    rc, out, _err = kb_lab.client(name).run(command, stdin)
    assert rc == 0
    results = json.loads(out)["results"]
    assert results[0]["ok"] is False and results[0]["error"]["category"] == "InvalidParameter"
    assert results[1] == {"id": "1", "ok": False, "skipped": True}


def test_modified_runner_is_refused(kb_lab):
    name = winrm_endpoint(topology_data())[0][0]
    command, stdin = build_payload([{"op": "dir_search", "params": {"server": name, "base": "", "scope": "base"}}])
    parts = stdin.decode("utf-8").split("\0\0\0\0")
    parts[0] = parts[0].replace("$ErrorActionPreference = 'Stop'", "$ErrorActionPreference = 'Continue'")
    rc, out, err = kb_lab.client(name).run(command, "\0\0\0\0".join(parts).encode("utf-8"))
    assert rc == 1 and out == b""
    assert err.startswith(b"#< CLIXML\r\n") and b'S="Error"' in err


def test_modified_op_script_is_refused(kb_lab):
    name = winrm_endpoint(topology_data())[0][0]
    command, stdin = build_payload([{"op": "dir_search", "params": {"server": name, "base": "", "scope": "base"}}])
    parts = stdin.decode("utf-8").split("\0\0\0\0")
    assert parts[2].startswith("# xcon-op: dir_search\n")
    parts[2] += "\n# an innocent-looking extra line\n"
    rc, out, err = kb_lab.client(name).run(command, "\0\0\0\0".join(parts).encode("utf-8"))
    assert rc == 1 and out == b"" and err.startswith(b"#< CLIXML\r\n")


def test_json_library_missing_or_modified_is_refused(kb_lab):
    """The runner's JSON library travels as part 1; without it the runner cannot read the request
    (its plain stderr line), and a modified copy is not a script the host runs (CLIXML)."""
    name = winrm_endpoint(topology_data())[0][0]
    command, stdin = build_payload([{"op": "dir_search", "params": {"server": name, "base": "", "scope": "base"}}])
    parts = stdin.decode("utf-8").split("\0\0\0\0")
    assert parts[1].startswith("# xcon-lib: json\n")
    rc, out, _err = kb_lab.client(name).run(command, stdin)
    assert rc == 0 and json.loads(out)["results"][0]["ok"] is True
    without = parts[:1] + parts[2:]
    rc, out, err = kb_lab.client(name).run(command, "\0\0\0\0".join(without).encode("utf-8"))
    assert rc == 1 and out == b"" and b"no JSON library part" in err and not err.startswith(b"#< CLIXML")
    modified = list(parts)
    modified[1] = modified[1].replace("$S.Pos += 1", "$S.Pos += 2", 1)
    assert modified[1] != parts[1]
    rc, out, err = kb_lab.client(name).run(command, "\0\0\0\0".join(modified).encode("utf-8"))
    assert rc == 1 and out == b"" and err.startswith(b"#< CLIXML\r\n") and b"xcon-lib: json" in err


def test_unknown_command_lines_are_refused(kb_lab):
    client = kb_lab.client(winrm_endpoint(topology_data())[0][0])
    rc, out, err = client.run("ipconfig /all")
    assert rc == 1 and out == b""
    assert err.decode() == ("'ipconfig' is not recognized as an internal or external command,\r\n"
                            "operable program or batch file.\r\n")
    script = base64.b64encode("Get-Date".encode("utf-16-le")).decode()
    rc, out, err = client.run(f"powershell -encodedcommand {script}")
    assert rc == 1 and out == b"" and err.startswith(b"#< CLIXML\r\n")
    rc, _out, err = client.run(command_line() + " " + "x" * 8200)
    assert rc == 1 and b"The command line is too long." in err
    rc, _out, err = client.run(command_line(), b"")  # bootstrap with nothing on stdin: not the runner
    assert rc == 1 and err.startswith(b"#< CLIXML\r\n")


def test_stats(kb_lab):
    stats = kb_lab.stats()
    for name, _ in winrm_endpoint(topology_data()):
        assert {"http_requests", "commands", "shells"} <= set(stats[name])
        assert stats[name]["commands"] >= 1
