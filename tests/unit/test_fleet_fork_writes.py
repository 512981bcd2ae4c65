"""The write phases' fleet tasks over forked processes (issue 19): the connector changes
(xcon_connector fleet) and the MTA restarts (xcon_mta_service fleet).  Real forks and pipes; the wire
work is replaced by functions that name the process that ran them, or kill it."""

from __future__ import annotations

import os
import signal

import pytest

from xcon import fleet_fork
from xcon.actions import connector_fleet
from xcon.actions import mta_service


class Client:
    def __init__(self, host):
        self.host = host

    def kinits(self):
        return self.host.startswith("KRB")


class Task:
    action = "xcon_connector"
    check_mode = False


class Action:
    """What connector_fleet.run asks of its action plugin."""
    _task = Task()

    @staticmethod
    def fleet_threads():
        return 4

    @staticmethod
    def host_view(task_vars, host):
        return {"inventory_hostname": host}


@pytest.fixture
def two_processes(monkeypatch):
    monkeypatch.setenv(fleet_fork.ENV, "2")


@pytest.fixture
def changes(monkeypatch):
    """Each host has one planned change; SERIAL* is written through another server, KRB* kinits,
    VICTIM kills the process that makes its change (only a forked one)."""
    worker = os.getpid()
    monkeypatch.setattr(connector_fleet, "_planned", lambda action, view, phase, stopped: [
        {"id": f"{view['inventory_hostname']}#1", "link": view["inventory_hostname"]}])
    monkeypatch.setattr(connector_fleet, "_item", lambda action, args, view, task_vars, host, entry: (
        entry, {}, {"own": not host.startswith("SERIAL"), "endpoint": (Client(host), host, 389)}))

    def host(action, name, items, view, task_vars):
        if name == "VICTIM" and os.getpid() != worker:
            os.kill(os.getpid(), signal.SIGKILL)
        return [{"changed": True, "item": entry, "pid": os.getpid(), "serial": view is not None} for entry, _, _ in items]

    monkeypatch.setattr(connector_fleet, "_host", host)
    return worker


def _run(hosts):
    return connector_fleet.run(Action(), {"fleet": hosts, "phase": "stack_repoint", "stopped_links": [], "restart_marker_dir": None}, {})


def test_changes_are_made_in_every_process_and_the_serial_and_kinit_ones_in_the_worker(two_processes, changes):
    result = _run(["SERIAL1", "KRB1", "A", "B", "C", "D"])  # the child's share: SERIAL1, KRB1, A
    pids = {host: out["results"][0]["pid"] for host, out in result["hosts"].items()}
    assert pids["A"] != changes and pids["B"] == changes, pids  # A in the child, B..D here
    assert pids["SERIAL1"] == changes and result["hosts"]["SERIAL1"]["results"][0]["serial"]
    assert pids["KRB1"] == changes and not result["hosts"]["KRB1"]["results"][0]["serial"]
    assert not result["failed_changes"] and all(out["changed"] for out in result["hosts"].values())


def test_a_lost_process_fails_each_of_its_changes_as_unknown_and_the_others_go_on(two_processes, changes):
    result = _run(["VICTIM", "A", "B", "C"])  # the child's share: VICTIM, A
    for host in ("VICTIM", "A"):
        (outcome,) = result["hosts"][host]["results"]
        assert outcome["failed"] and not outcome["changed"] and outcome["item"] == {"id": f"{host}#1", "link": host}
        assert "ended before it answered (signal SIGKILL): whether each change was made is unknown" in outcome["msg"]
        assert "Its link stops here" in outcome["msg"] and outcome["msg"].startswith(f"xcon_connector ({host}): ")
    assert set(result["failed_changes"]) == {"VICTIM#1", "A#1"}  # what the next gate stops
    assert result["hosts"]["B"]["changed"] and result["hosts"]["C"]["results"][0]["pid"] == changes


class Restarts(mta_service.ActionModule):
    """xcon_mta_service's fleet with each server's variables and wire replaced."""

    def __init__(self, worker, pending):  # pylint: disable=super-init-not-called
        self._task, self.worker, self.pending = Task(), worker, pending

    def host_view(self, task_vars, host):
        return {"inventory_hostname": host}

    def host_var(self, view, name, default=None, host=None):
        return {"xcon_restart_pending": view["inventory_hostname"] in self.pending}.get(name, default)

    def role_or_contract(self, view, role_name, contract_name, default):
        return view["inventory_hostname"] != "NOTALLOWED" if "allow" in role_name else default

    def winrm_client(self, view, management_host=None, connection_vars=None):
        if view["inventory_hostname"] == "BADVARS":
            raise ValueError("xcon_winrm_transport: no such transport")
        return Client(view["inventory_hostname"])

    def _restart(self, args, client, query, restart):
        if client.host == "VICTIM" and os.getpid() != self.worker:
            os.kill(os.getpid(), signal.SIGKILL)
        return {"changed": True, "pid": os.getpid(), "winrm_commands": 1}


def _restarts(hosts, pending):
    action = Restarts(os.getpid(), pending)
    return action._fleet({"fleet": hosts, "state": "restarted", "name": None, "timeout": 60, "exchange_version": "5.5",
                          "restart_marker_dir": None}, {})


def test_restarts_run_in_every_process_each_server_with_its_own_outcome(two_processes):
    hosts = ["NOTALLOWED", "KRB1", "A", "BADVARS", "IDLE", "B", "C", "D"]  # the child's share: NOTALLOWED..BADVARS
    result = _restarts(hosts, pending=set(hosts) - {"IDLE"})
    out = result["hosts"]
    assert result["left_pending"] == ["NOTALLOWED"] and "IDLE" not in out and "NOTALLOWED" not in out
    assert out["A"]["pid"] != os.getpid() and out["B"]["pid"] == os.getpid()
    assert out["KRB1"]["pid"] == os.getpid()  # its client would kinit: deferred to the worker
    assert out["BADVARS"]["failed"] and "no such transport" in out["BADVARS"]["msg"] and out["BADVARS"]["winrm_commands"] == 0
    assert set(result["failed_hosts"]) == {"BADVARS"}


def test_a_lost_restart_process_fails_its_servers_as_unknown_and_pending(two_processes):
    result = _restarts(["VICTIM", "A", "B", "C"], pending={"VICTIM", "A", "B", "C"})  # the child's: VICTIM, A
    out = result["hosts"]
    for host in ("VICTIM", "A"):
        assert out[host]["failed"] and not out[host]["changed"] and out[host]["winrm_commands"] == 1
        assert "ended before it answered (signal SIGKILL): whether the MTA was restarted is unknown; the restart stays pending" \
            in out[host]["msg"]
    assert out["B"]["changed"] and out["C"]["pid"] == os.getpid()
    assert set(result["failed_hosts"]) == {"VICTIM", "A"}
