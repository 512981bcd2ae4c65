"""The lab runtime end to end: `tests/lab/xconlab`, the lab process, the command handler, the
inventory and fault injection, driven through the project's own WinRM client (module_utils/xcon).

Every lab here runs in its own temporary state dir (XCONLAB_STATE_DIR) with a temporary
inventory, with the clock frozen (`--time-scale 0`, so `advance` is deterministic), and is always
taken `down` by a finalizer (fixtures and helpers: runtime_helpers.py). This file: the
manifest, up/inventory/status, CLI errors, scale and down; the project's ops over the lab:
test_runtime_ops.py; the emulated clock, firewall and faults: test_runtime_world.py.
"""
from __future__ import annotations

import json
import os
import time

from xconlab_lab import handler as lab_handler
from xconlab_lab.topology import load as load_topology

from runtime_helpers import (
    CONNECTION_KEYS, FIREWALL_KEYS, IDENTITY_KEYS, KB, XCONLAB, children_of, pid_running, port_open, topology_data,
    winrm_endpoint, xconlab,
)
from runtime_helpers import kb_lab  # noqa: F401  (the lab fixture)

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
