"""The lab runtime end to end: `tests/lab/xconlab`, the lab process, the command handler, the
inventory and fault injection, driven through the project's own WinRM client (module_utils/xcon).

Every lab here runs in its own temporary state dir (XCONLAB_STATE_DIR) with a temporary
inventory, with the clock frozen (`--time-scale 0`, so `advance` is deterministic), and is always
taken `down` by a finalizer.
"""
from __future__ import annotations

import base64
import copy
import json
import os
import socket
import subprocess
import time

import pytest
import yaml

from xcon.ops import build_payload, command_line, run_ops
from xcon.winrm_client import WinRMClient, XconAuthError, XconError
from xconlab_lab import handler as lab_handler
from xconlab_lab.topology import load as load_topology

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XCONLAB = os.path.join(ROOT, "tests", "lab", "xconlab")
KB = os.environ.get("XCONLAB_KB_TOPOLOGY") or os.path.join(ROOT, "tests", "lab", "topologies", "kb.yml")
KB_EVENTS = {1290, 289, 1294, 1293, 9301}
CONNECTION_KEYS = {
    "ansible_connection", "ansible_host", "ansible_port", "ansible_user", "ansible_password",
    "ansible_winrm_scheme", "ansible_winrm_transport", "ansible_winrm_server_cert_validation",
    "ansible_winrm_ca_trust_path",
}
IDENTITY_KEYS = {"xcon_server_name", "xcon_server_address", "xcon_server_fqdn", "xcon_exchange_version"}
FIREWALL_KEYS = {
    "ansible_connection", "xcon_firewall_driver", "xcon_firewall_product", "xcon_firewall_inside",
    "xcon_firewall_outside", "xcon_firewall_interfaces", "xcon_firewall_passers",
    "xcon_firewall_routed_paths", "xcon_firewall_client_transparency",
}


# ---- helpers ----------------------------------------------------------------------------------
def xconlab(state_dir, *args, check=True, timeout=120):
    """Run the control command from the repository root; return the CompletedProcess."""
    env = dict(os.environ, XCONLAB_STATE_DIR=str(state_dir))
    proc = subprocess.run([XCONLAB, *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"xconlab {' '.join(map(str, args))} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def port_open(port):
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_running(pid):
    """Alive and not a zombie (an orphan's exit may be reaped late in a container)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                    kids.append(int(entry))
            except (FileNotFoundError, IndexError, ValueError):
                pass
    return kids


class Lab:
    """A running lab: its state dir, inventory and status."""

    def __init__(self, state_dir, inventory_path, up_seconds):
        self.state_dir = state_dir
        self.inventory_path = inventory_path
        self.up_seconds = up_seconds
        with open(inventory_path, encoding="utf-8") as handle:
            self.inventory = yaml.safe_load(handle)
        self.status = json.loads(self.cli("status", "--json").stdout)

    def cli(self, *args, check=True, timeout=120):
        return xconlab(self.state_dir, *args, check=check, timeout=timeout)

    def group(self, name):
        return self.inventory["all"]["children"][name]["hosts"]

    def client(self, host, **overrides):
        conn = dict(self.group("xcon_exchange").get(host) or self.group("xcon_management_hosts")[host])
        conn.update(overrides)
        return WinRMClient(conn, command_timeout_sec=60, retries=0)

    def snapshot(self):
        return json.loads(self.cli("snapshot").stdout)

    def stats(self):
        return json.loads(self.cli("stats").stdout)


def start_lab(tmp_path_factory, request, topology, name):
    base = tmp_path_factory.mktemp(name)
    state_dir, inventory_path = base / "state", base / "inventory" / "hosts.yml"
    request.addfinalizer(lambda: xconlab(state_dir, "down", check=False))
    begin = time.monotonic()
    xconlab(state_dir, "up", topology, "--inventory", inventory_path, "--time-scale", 0)
    return Lab(state_dir, inventory_path, time.monotonic() - begin)


def topology_data(path=KB):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def winrm_endpoint(topology):
    """(server name, winrm settings) of every server with its own WinRM endpoint."""
    return [(name, s["winrm"]) for name, s in topology["servers"].items() if s.get("winrm")]


# ---- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kb_lab(tmp_path_factory, request):
    if not os.path.exists(KB):
        pytest.skip("tests/lab/topologies/kb.yml is not there yet")
    return start_lab(tmp_path_factory, request, KB, "kb")


@pytest.fixture(scope="module")
def transports_lab(tmp_path_factory, request):
    """The KB topology with one server on http+ntlm only and the others on https+basic only."""
    if not os.path.exists(KB):
        pytest.skip("tests/lab/topologies/kb.yml is not there yet")
    topology = copy.deepcopy(topology_data())
    servers = [name for name, _ in winrm_endpoint(topology)]
    for index, name in enumerate(servers):
        winrm = topology["servers"][name]["winrm"]
        winrm.pop("port", None)
        winrm.update({"scheme": "http", "auth": ["ntlm"]} if index == 0 else {"scheme": "https", "auth": ["basic"]})
    path = tmp_path_factory.mktemp("topo") / "transports.yml"
    path.write_text(yaml.safe_dump(topology, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return start_lab(tmp_path_factory, request, str(path), "transports")


def expected_connectors(topology, server):
    return sorted(c["name"] for c in topology["servers"][server].get("connectors") or [])


def search_connectors(client, server):
    results = run_ops(client, [{"op": "dir_search", "params": {
        "server": server, "base": "", "scope": "subtree", "classes": ["X400-Link"],
        "attributes": ["cn", "Name", "N-Address"]}}])
    data = results[0].raise_for_error()
    return data["entries"]


def connector_name(entry):
    """The connector's RDN value from its DN (RFC 4514 unescaped)."""
    rdn = entry["dn"]
    out, index = [], 3  # after "cn="
    while index < len(rdn):
        char = rdn[index]
        if char == "\\":
            out.append(rdn[index + 1])
            index += 2
            continue
        if char == ",":
            break
        out.append(char)
        index += 1
    return "".join(out)


# ---- the manifest -----------------------------------------------------------------------------
def test_manifest_matches_shipped_scripts():
    """Fails when a files/ps/*.ps1 was edited without `tests/lab/xconlab scripts-refresh`."""
    shipped = lab_handler.compute_manifest()
    recorded = lab_handler.load_manifest()
    assert recorded == shipped, (
        "tests/lab/xconlab_lab/known_scripts.json disagrees with files/ps: "
        f"{sorted(k for k in set(shipped) | set(recorded) if shipped.get(k) != recorded.get(k))}; "
        "run `tests/lab/xconlab scripts-refresh` if the script change is intended")


# ---- up, inventory, status --------------------------------------------------------------------
def test_up_writes_inventory_with_all_keys(kb_lab):
    topology = topology_data()
    normalised = load_topology(KB)
    exchange = kb_lab.group("xcon_exchange")
    assert set(exchange) == set(topology["servers"])
    for name, host in exchange.items():
        assert CONNECTION_KEYS <= set(host), name
        assert IDENTITY_KEYS <= set(host), name
        assert host["ansible_connection"] == "winrm" and host["ansible_host"] == "127.0.0.1"
        assert host["ansible_winrm_server_cert_validation"] == "validate"
        assert os.path.isabs(host["ansible_winrm_ca_trust_path"]) and os.path.isfile(host["ansible_winrm_ca_trust_path"])
        assert host["xcon_server_address"] == topology["servers"][name]["address"]
        auth = topology["servers"][name].get("winrm", {}).get("auth") or []
        if auth:
            assert host["ansible_winrm_transport"] == ("ntlm" if "ntlm" in auth else "basic")
        assert port_open(host["ansible_port"])
    firewalls = kb_lab.group("xcon_firewalls")
    assert set(firewalls) == set(topology.get("firewalls") or {})
    for name, fw in firewalls.items():
        assert FIREWALL_KEYS <= set(fw), name
        truth = normalised["firewalls"][name]
        documented = dict(truth, **(truth.get("documented") or {}))
        assert fw["xcon_firewall_client_transparency"] == documented["client_transparency"]
        assert fw["xcon_firewall_passers"] == documented["passers"]
    all_vars = kb_lab.inventory["all"]["vars"]
    assert all_vars["xcon_lab_control"] == XCONLAB and os.access(all_vars["xcon_lab_control"], os.X_OK)
    assert all_vars["xcon_lab_state_dir"] == str(kb_lab.state_dir)


def test_status_lists_endpoints_and_time(kb_lab):
    status = kb_lab.status
    assert status["state"] == "up" and status["time"]
    assert {ep["name"] for ep in status["endpoints"]} >= {n for n, _ in winrm_endpoint(topology_data())}
    for ep in status["endpoints"]:
        assert ep["scheme"] in ("http", "https") and ep["port"] > 0 and ep["auth"]
    text = kb_lab.cli("status").stdout
    assert "emulated time" in text and str(status["endpoints"][0]["port"]) in text


def test_up_refuses_when_already_up(kb_lab):
    proc = kb_lab.cli("up", KB, "--inventory", kb_lab.inventory_path, check=False)
    assert proc.returncode != 0
    assert "already up" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_cli_errors_are_one_line(tmp_path):
    for args in (["advance", "5"], ["snapshot"], ["up", tmp_path / "missing.yml"], ["fault", "X", "slow"]):
        proc = xconlab(tmp_path / "state", *args, check=False)
        assert proc.returncode != 0, args
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("xconlab: error:"), proc.stderr
    assert xconlab(tmp_path / "state", "status", check=False).returncode == 3
    assert xconlab(tmp_path / "state", "down").returncode == 0  # idempotent


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
    parts[1] += "\n# an innocent-looking extra line\n"
    rc, out, err = kb_lab.client(name).run(command, "\0\0\0\0".join(parts).encode("utf-8"))
    assert rc == 1 and out == b"" and err.startswith(b"#< CLIXML\r\n")


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


# ---- clock, snapshot, firewall ----------------------------------------------------------------
def test_advance_produces_kb_events(kb_lab):
    before = kb_lab.snapshot()
    proc = kb_lab.cli("advance", 60)
    assert "emulated time" in proc.stdout
    after = kb_lab.snapshot()
    assert after["time"] > before["time"]
    for key in ("time", "servers", "firewalls", "flows"):
        assert key in after
    ids = {event["id"] for server in after["servers"].values() for event in server["events"]}
    assert ids & KB_EVENTS, f"no KB events after 60 minutes: {sorted(ids)}"
    server = next(iter(after["servers"].values()))
    assert {"directory", "queues", "events", "service"} <= set(server)


def test_firewall_apply_record(kb_lab, tmp_path):
    topology = topology_data()
    fw_name, fw = next(iter(topology["firewalls"].items()))
    hosts = [fw["inside"][0], fw["outside"][0]]
    record = {"version": 1, "firewall": fw_name, "run_id": "test-runtime", "product": fw.get("product"),
              "steps": [{"action": "add_routed_path", "hosts": hosts, "port": 102}]}
    path = tmp_path / "change.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    first = json.loads(kb_lab.cli("firewall", "apply", path).stdout)
    again = json.loads(kb_lab.cli("firewall", "apply", path).stdout)  # idempotent per step
    state = {k: v for k, v in first.items() if k != "steps"}
    assert state == {k: v for k, v in again.items() if k != "steps"}
    if "steps" in again:  # the model reports what each step did
        assert [step["result"] for step in again["steps"]] == ["unchanged"]
    routed = kb_lab.snapshot()["firewalls"][fw_name]["routed_paths"]
    assert any(sorted(p["hosts"]) == sorted(hosts) and p.get("port", 102) == 102 for p in routed)
    record["steps"] = [{"action": "remove_routed_path", "hosts": hosts, "port": 102}]
    path.write_text(json.dumps(record), encoding="utf-8")
    kb_lab.cli("firewall", "apply", path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    proc = kb_lab.cli("firewall", "apply", bad, check=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1


# ---- faults -----------------------------------------------------------------------------------
def _quick_run(lab, name):
    return search_connectors(lab.client(name), name)


def test_fault_refuse_credentials(kb_lab):
    name = winrm_endpoint(topology_data())[0][0]
    kb_lab.cli("fault", name, "refuse-credentials")
    try:
        with pytest.raises(XconAuthError):
            _quick_run(kb_lab, name)
    finally:
        kb_lab.cli("fault", name, "clear")
    assert _quick_run(kb_lab, name)


def test_fault_drop_after(kb_lab):
    name = winrm_endpoint(topology_data())[0][0]
    kb_lab.cli("fault", name, "drop-after", 0)
    try:
        with pytest.raises(XconError):
            _quick_run(kb_lab, name)
    finally:
        kb_lab.cli("fault", name, "clear")
    assert _quick_run(kb_lab, name)


def test_fault_operation_timeout(kb_lab):
    name = winrm_endpoint(topology_data())[0][0]
    before = kb_lab.stats()[name]["http_requests"]
    _quick_run(kb_lab, name)
    normal = kb_lab.stats()[name]["http_requests"] - before
    kb_lab.cli("fault", name, "operation-timeout", 3)
    try:
        before = kb_lab.stats()[name]["http_requests"]
        assert _quick_run(kb_lab, name)  # the client polls through OperationTimeout
        faulted = kb_lab.stats()[name]["http_requests"] - before
    finally:
        kb_lab.cli("fault", name, "clear")
    assert faulted >= normal + 3


def test_fault_slow(kb_lab):
    name = winrm_endpoint(topology_data())[0][0]
    begin = time.monotonic()
    _quick_run(kb_lab, name)
    normal = time.monotonic() - begin
    kb_lab.cli("fault", name, "slow", 0.3)
    try:
        begin = time.monotonic()
        _quick_run(kb_lab, name)
        slow = time.monotonic() - begin
    finally:
        kb_lab.cli("fault", name, "clear")
    assert slow >= normal + 0.9  # a run is at least five requests (shell, command, send, receive, delete)


def test_fault_unknown_host(kb_lab):
    proc = kb_lab.cli("fault", "NO-SUCH-HOST", "slow", 1, check=False)
    assert proc.returncode == 1 and "NO-SUCH-HOST" in proc.stderr


def test_stats(kb_lab):
    stats = kb_lab.stats()
    for name, _ in winrm_endpoint(topology_data()):
        assert {"http_requests", "commands", "shells"} <= set(stats[name])
        assert stats[name]["commands"] >= 1


# ---- scale, down ------------------------------------------------------------------------------
def test_generated_100_links_up_fast_in_one_process_then_down(tmp_path, request):
    topology = tmp_path / "links100.yml"
    xconlab(tmp_path / "state", "generate", 100, "-o", topology)
    data = topology_data(topology)
    state_dir, inventory_path = tmp_path / "state", tmp_path / "hosts.yml"
    request.addfinalizer(lambda: xconlab(state_dir, "down", check=False))

    begin = time.monotonic()
    xconlab(state_dir, "up", topology, "--inventory", inventory_path, "--time-scale", 0)
    elapsed = time.monotonic() - begin
    print(f"up of a generated 100-link topology: {elapsed:.2f}s")
    assert elapsed < 10, f"up took {elapsed:.2f}s"

    status = json.loads(xconlab(state_dir, "status", "--json").stdout)
    ports = [ep["port"] for ep in status["endpoints"]]
    assert len(ports) >= len([s for s in data["servers"].values() if s.get("winrm")])
    assert all(port_open(p) for p in ports)
    pid = status["pid"]
    assert children_of(pid) == []  # every endpoint is served by the one lab process
    with open(state_dir / "control.json", encoding="utf-8") as handle:
        control_port = json.load(handle)["port"]

    xconlab(state_dir, "down")
    deadline = time.monotonic() + 5
    while pid_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_running(pid)
    assert not any(port_open(p) for p in ports + [control_port])
    assert not (state_dir / "control.json").exists() and not (state_dir / "lab.pid").exists()
    assert xconlab(state_dir, "down").returncode == 0
    assert xconlab(state_dir, "status", check=False).returncode == 3
