"""Helpers of the lab runtime tests (test_runtime*.py): run `tests/lab/xconlab` with its own state dir,
start a lab from a topology, and read what it serves through the project's own WinRM client.
The test modules import the lab fixtures defined at the end (a conftest.py here would shadow
tests/conftest.py, which test modules import as `conftest`)."""
from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import time

import pytest
import yaml

from xcon.ops import run_ops
from xcon.winrm_client import WinRMClient

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


# ---- fixtures (a lab per test module) ----------------------------------------------------------
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
