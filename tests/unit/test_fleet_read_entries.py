"""The audit's fleet read on the controller (issue 19): each server keeps only its own connectors of
the organisation-wide replica it answers with, and the diagnosis finds each host's summary in the
one result the fleet read registered on every host; the back-up's fleet read also saves the
firewalls' facts."""

from __future__ import annotations

import os
import stat

import pytest
from ansible.errors import AnsibleActionFail

from test_profile_connectors import P, entry
from xcon import gather
from xcon import state as xstate
from xcon.actions.connector_info import ActionModule
from xcon.audit_results import host_outcome, own_result
from xcon.ops import OpResult


def _home(server, site):
    return f"cn=Microsoft MTA,cn={server},cn=Servers,cn=Configuration,ou={site},o=CONTOSO"


def _search(*entries):
    return OpResult(id="connectors", ok=True, data={"entries": list(entries)})


def test_a_server_keeps_only_its_own_connectors_of_the_organisation_replica():
    own = entry(**{"Home-MTA": _home("EXIN", "INSIDE")})
    other = entry(rdn="TO-ELSEWHERE", **{"Home-MTA": _home("EXIN2", "INSIDE2")})
    other["dn"] = "cn=TO-ELSEWHERE,cn=Connections,cn=Configuration,ou=INSIDE2,o=CONTOSO"
    result = _search(own, other)
    assert gather.own_entries(result, "EXIN", P) == [own]
    assert [c["name"] for c in gather.decode_connectors(result, "EXIN", P)] == ["TO-OUTSIDE"]


def test_an_entry_without_home_mta_is_kept():
    bare = entry()
    del bare["attributes"]["Home-MTA"]
    assert gather.own_entries(_search(bare), "EXIN", P) == [bare]


def test_each_host_finds_its_own_summary_in_the_fleet_result():
    fleet = {"hosts": {"EXIN": {"server": "EXIN", "result_file": "/x/EXIN.json"}}, "winrm_commands": 1}
    assert own_result(fleet, "EXIN") == {"server": "EXIN", "result_file": "/x/EXIN.json"}
    assert own_result(fleet, "EXOUT") == {}  # not in the play: reported not read
    assert own_result({"server": "EXIN", "connectors": []}, "EXIN") == {"server": "EXIN", "connectors": []}


def test_the_gate_takes_each_hosts_outcome_from_a_fleet_task_or_its_own_task():
    from xcon.audit_results import host_outcome

    fleet = {"hosts": {"EXIN": {"server": "EXIN", "winrm_commands": 1},
                       "EXOUT": {"server": "EXOUT", "winrm_commands": 1,
                                 "xcon_error": {"code": "XCON-UNREACHABLE", "reason": "connection refused"}}}}
    assert host_outcome(fleet, "EXIN") == {"ok": True, "reason": ""}
    assert host_outcome(fleet, "EXOUT") == {"ok": False, "reason": "connection refused (XCON-UNREACHABLE)"}
    # a server the fleet task did not cover was not backed up: never taken for one that was
    assert host_outcome(fleet, "EXTRA")["ok"] is False
    # the fleet task failed as a whole: every server failed, with its message
    assert host_outcome({"failed": True, "msg": "state file damaged"}, "EXIN") == {"ok": False, "reason": "state file damaged"}
    assert host_outcome({"changed": True}, "EXIN") == {"ok": True, "reason": ""}
    assert host_outcome({"unreachable": True, "msg": "gone"}, "EXIN") == {"ok": False, "reason": "gone"}


def test_a_fleet_result_is_read_once_for_the_hosts_it_covers():
    from xcon.action import XconAction

    fleet = {"hosts": {"EXIN": {"changed": True}}, "fleet": ["EXIN", "EXOUT"]}
    registered = {"EXIN": fleet, "EXOUT": fleet, "EXOTHER": {"skipped": True}}
    reads = []
    action = XconAction.__new__(XconAction)
    action.host_var = lambda task_vars, name, default=None, host=None: reads.append(host) or registered.get(host)
    assert action.fleet_var({}, "xcon_mta_restart_result", "EXIN") is fleet
    assert action.fleet_var({}, "xcon_mta_restart_result", "EXOUT") is fleet  # covered (not restarted): no read
    assert action.fleet_var({}, "xcon_mta_restart_result", "EXOTHER") == {"skipped": True}  # not covered: its own
    assert reads == ["EXIN", "EXOTHER"]


def test_fleet_results_of_one_name_from_several_plays_are_each_read_once_for_their_hosts():
    """Role xcon_change registers xcon_change_results from one fleet task per phase: the inside servers
    hold the Stack repoint's, the outside ones the outside repoint's, a server of both phases the
    last; each host gets the one it holds, and each fleet is read (templated, copied) once."""
    from xcon.action import XconAction

    inside = {"fleet_id": "a1", "fleet": ["EXIN", "EXIN2"], "hosts": {"EXIN": {"results": [1]}, "EXIN2": {"results": [2]}}}
    outside = {"fleet_id": "b2", "fleet": ["EXOUT", "EXIN2"], "hosts": {"EXOUT": {"results": [3]}, "EXIN2": {"results": [4]}}}
    registered = {"EXIN": inside, "EXIN2": outside, "EXOUT": outside}

    class Stored:  # a host's variables as ansible-core keeps them (HostVarsVars._vars)
        def __init__(self, host):
            self._vars = {"xcon_change_results": registered[host]}

    reads = []
    action = XconAction.__new__(XconAction)
    action.host_var = lambda *args, **kwargs: pytest.fail("a stored registered result is not read through the templar")
    read = action._registered  # pylint: disable=protected-access
    action._registered = lambda task_vars, name, host: reads.append(host) or read(task_vars, name, host)
    task_vars = {"hostvars": {host: Stored(host) for host in registered}}
    got = {}
    for host in ("EXIN", "EXIN2", "EXOUT", "EXIN", "EXIN2"):
        got[host] = action.fleet_var(task_vars, "xcon_change_results", host)
        assert got[host] == registered[host] and got[host] is not registered[host], host  # a copy: Ansible's stays as it is
    assert got["EXOUT"] is got["EXIN2"]
    assert reads == ["EXIN", "EXIN2"], reads  # EXOUT holds the fleet EXIN2 was read with


def test_a_registered_result_is_read_from_the_run_facts_without_computing_the_hosts_variables():
    """ansible-core's own HostVars and VariableManager, a result registered as its strategy does:
    found without hostvars[host] (every variable of the host, about 1 ms); an extra var of the same
    name, or a name not registered, is read through hostvars as before."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager
    from xcon.action import XconAction

    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources="EXIN,EXOUT,")
    manager = VariableManager(loader=loader, inventory=inventory)
    result = {"fleet_id": "a1", "hosts": {"EXIN": {"results": [1]}, "EXOUT": {"results": [2]}}}
    for host in ("EXIN", "EXOUT"):
        manager.set_nonpersistent_facts(host, {"xcon_change_results": result})
    hostvars = HostVars(inventory=inventory, variable_manager=manager, loader=loader)
    action = XconAction.__new__(XconAction)
    action._hostvars_of = lambda task_vars, host: pytest.fail(f"{host}'s variables were computed")  # pylint: disable=protected-access
    task_vars = {"hostvars": hostvars}
    got = action.fleet_var(task_vars, "xcon_change_results", "EXOUT")
    assert got == result and got is not result  # a copy: Ansible's stays as it is
    assert action._registered(task_vars, "xcon_backup_result", "EXIN") is None  # pylint: disable=protected-access  (not registered)
    assert action.fleet_var(task_vars, "xcon_mta_restart_result", "EXIN2") is None  # a host with nothing registered
    assert "EXIN2" not in manager._nonpersistent_fact_cache  # pylint: disable=protected-access
    del action._hostvars_of
    manager._extra_vars = {"xcon_change_results": {"hosts": {}}}  # pylint: disable=protected-access
    assert action._registered(task_vars, "xcon_change_results", "EXIN") == {"hosts": {}}  # pylint: disable=protected-access


def test_a_modules_fact_is_read_from_the_fact_cache_without_computing_the_hosts_variables():
    """xcon_restart_pending as a module sets it (ansible_facts, the variable manager's fact cache):
    found, or not set, without hostvars[host]; shadowed by a set_fact of that name, read as before."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager
    from xcon.action import XconAction

    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources="EXIN,EXOUT,")
    manager = VariableManager(loader=loader, inventory=inventory)
    manager.set_host_facts("EXIN", {"xcon_restart_pending": True})
    task_vars = {"hostvars": HostVars(inventory=inventory, variable_manager=manager, loader=loader)}
    action = XconAction.__new__(XconAction)
    action._hostvars_of = lambda task_vars, host: pytest.fail(f"{host}'s variables were computed")  # pylint: disable=protected-access
    assert action.module_fact(task_vars, "xcon_restart_pending", "EXIN", False) is True
    assert action.module_fact(task_vars, "xcon_restart_pending", "EXOUT", False) is False  # no module set it
    del action._hostvars_of
    action._templar = None  # pylint: disable=protected-access  (plain values are not templated)
    manager.set_nonpersistent_facts("EXIN", {"xcon_restart_pending": False})
    assert action.module_fact(task_vars, "xcon_restart_pending", "EXIN", True) is False


# -- the back-up's firewall facts (xcon_connector_info save_firewall_facts) ---------------------------
def _save(args):
    return ActionModule._save_firewalls(args)  # pylint: disable=protected-access


def test_the_backup_saves_each_firewalls_facts_with_a_checksum_in_a_private_directory(tmp_path):
    where = tmp_path / "run" / "backup"
    facts = {"name": "FW1", "client_transparency": True, "passers": [{"port": 102, "target": "EXIN"}]}
    assert _save({"save_raw_dir": str(where), "save_firewall_facts": {"FW1": facts}}) == ["FW1"]
    assert stat.S_IMODE(os.stat(where).st_mode) == 0o700
    path = str(where / "FW1.firewall.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert xstate.read_verified_json(path) == facts  # rollback verifies it before it trusts it
    assert _save({"save_raw_dir": str(where), "save_firewall_facts": None}) == []  # no firewall in the play


def test_a_firewall_backup_that_cannot_be_written_fails_the_whole_task(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(OSError):
        _save({"save_raw_dir": str(blocker), "save_firewall_facts": {"FW1": {"name": "FW1"}}})
    with pytest.raises(AnsibleActionFail, match="not a mapping"):
        _save({"save_raw_dir": str(tmp_path / "b"), "save_firewall_facts": {"FW1": "passers"}})
    with pytest.raises(AnsibleActionFail, match="needs save_raw_dir"):
        _save({"save_raw_dir": None, "save_firewall_facts": {"FW1": {}}})
    assert _save({"save_raw_dir": None, "save_firewall_facts": None}) is None


# -- the back-up from this run's read (xcon_connector_info raw_from_dir) -----------------------------
def test_the_backup_copies_what_the_read_saved_and_fails_only_the_servers_it_cannot_trust(tmp_path):
    read, backup = tmp_path / "run" / "raw", tmp_path / "run" / "backup"
    saved = {"server": "EXIN", "raw": [{"dn": "cn=TO-OUTSIDE", "attributes": {"N-Address": "10.0.0.1"}}]}
    xstate.write_json_atomic(str(read / "EXIN.json"), saved, mode=0o600, checksum=True)
    xstate.write_json_atomic(str(read / "EXOUT.json"), dict(saved, server="EXOUT"), mode=0o600, checksum=True)
    with open(read / "EXOUT.json", "a", encoding="utf-8") as handle:
        handle.write(" ")  # changed after the read wrote it: not a back-up to trust
    args = {"save_raw_dir": str(backup), "raw_from_dir": str(read), "save_firewall_facts": {"FW1": {"name": "FW1"}}}
    got = ActionModule._backup_from_read(args, ["EXIN", "EXOUT", "EXIN2"], ["FW1"])  # pylint: disable=protected-access
    assert xstate.read_verified_json(str(backup / "EXIN.json")) == saved  # rollback verifies it before it trusts it
    assert stat.S_IMODE(os.stat(backup / "EXIN.json").st_mode) == 0o600
    assert sorted(os.listdir(backup)) == ["EXIN.json", "EXIN.json.sha256"]
    assert got["hosts"]["EXIN"] == {"winrm_commands": 0} and got["winrm_commands"] == 0 and got["firewalls_saved"] == ["FW1"]
    assert set(got["unread"]) == {"EXOUT", "EXIN2"}
    assert "does not match its checksum" in got["unread"]["EXOUT"]["reason"]
    assert got["unread"]["EXIN2"]["reason"].endswith("this run did not read it")
    # each one's outcome, as the gate before the first change reads it: no change on EXOUT or EXIN2
    assert [host_outcome(got, h)["ok"] for h in ("EXIN", "EXOUT", "EXIN2")] == [True, False, False]
    with pytest.raises(AnsibleActionFail, match="needs save_raw_dir"):
        ActionModule._backup_from_read({"raw_from_dir": str(read)}, ["EXIN"], None)  # pylint: disable=protected-access


# -- the connector changes' fleet task (xcon_connector fleet, role xcon_change) -----------------------
def test_a_fleet_change_takes_each_servers_own_entries_of_its_phase_without_stopped_links():
    from xcon.action import XconAction
    from xcon.actions import connector_fleet

    planned = {"stack_repoint": [{"id": "A#2", "link": "A"}, {"id": "B#2", "link": "B"}], "precondition": [{"id": "A#1", "link": "A"}]}
    # the plan is xcon_diagnose's result, registered on localhost; a server's own variables may override it
    diagnosis = {"planned": {"EXIN": {"groups": [], "changes": planned}, "EXIN2": {"groups": [], "changes": planned}}}
    own = {"localhost": {"xcon_diagnose_result": diagnosis}, "EXIN": {}, "EXIN2": {"xcon_change_changes": [{"id": "C#1", "link": "C"}]}}
    reads = []

    class Action:
        planned_changes = XconAction.planned_changes

        def host_var(self, view, name, default=None, host=None):
            reads.append((host or view["inventory_hostname"], name))
            return own[host or view["inventory_hostname"]].get(name, default)

        def _registered(self, view, name, host):
            return self.host_var(view, name, host=host)

    action = Action()
    assert connector_fleet._planned(action, {"inventory_hostname": "EXIN"}, "stack_repoint", {"B"}) == [{"id": "A#2", "link": "A"}]
    assert connector_fleet._planned(action, {"inventory_hostname": "EXIN"}, "precondition", set()) == [{"id": "A#1", "link": "A"}]
    own["NOPLAN"] = {}  # a server the plan does not name has no entries
    assert connector_fleet._planned(action, {"inventory_hostname": "NOPLAN"}, "precondition", set()) == []
    # the diagnosis is read once per task, whatever the number of servers
    assert reads.count(("localhost", "xcon_diagnose_result")) == 1, reads
    # a server's own xcon_change_changes (inventory, -e) replaces its plan entries; stopped links still go
    assert connector_fleet._planned(Action(), {"inventory_hostname": "EXIN2"}, "precondition", set()) == [{"id": "C#1", "link": "C"}]
    assert connector_fleet._planned(Action(), {"inventory_hostname": "EXIN2"}, "precondition", {"C"}) == []


def test_a_fleet_change_refuses_what_each_change_takes_from_its_plan_entry():
    from xcon.actions import connector_fleet

    base = {"fleet": ["EXIN"], "phase": "stack_repoint", "stopped_links": [], "state": "present"}
    for key, value in (("name", "TO-OUTSIDE"), ("stack_address", "198.51.100.10"), ("restart_marker", "/m"), ("state", "absent")):
        with pytest.raises(AnsibleActionFail, match=f"with fleet, {key} comes from each server's plan entries"):
            connector_fleet.run(None, dict(base, **{key: value}), {})
    with pytest.raises(AnsibleActionFail, match="fleet needs phase"):
        connector_fleet.run(None, dict(base, phase=None), {})


# -- the firewall change record's own steps (xcon_firewall_change plan_phase, roles/xcon_firewall_tunnel) --
def test_a_firewall_record_takes_its_phase_from_the_diagnosis_file_without_stopped_links(tmp_path):
    from xcon import diagnosis_file
    from xcon.action import XconAction
    from xcon.actions.firewall_change import ActionModule

    step = {"action": "remove_passer", "service": "x400", "port": 102}
    entries = {"firewall_tunnel_close": [{"link": "A", "args": [dict(step, name="a1"), dict(step, name="a2")]},
                                         {"link": "B", "args": [dict(step, name="b1")]}],
               "firewall_tunnel_open": [{"link": "A", "args": [{"action": "add_routed_path", "hosts": ["X", "Y"], "port": 102}]}]}
    # registered on localhost: only the file's path; the plan's entries are in the file
    registered = diagnosis_file.write(str(tmp_path), {"planned": {"FW1": {"groups": [], "changes": entries}}, "links": []})
    assert "planned" not in registered

    class Action:
        planned_changes = XconAction.planned_changes
        planned_steps = ActionModule.planned_steps

        def _registered(self, task_vars, name, host):
            assert (name, host) == ("xcon_diagnose_result", "localhost")
            return registered

    view = {"inventory_hostname": "FW1"}
    assert [s["name"] for s in Action().planned_steps(view, "firewall_tunnel_close", [])] == ["a1", "a2", "b1"]
    assert [s["name"] for s in Action().planned_steps(view, "firewall_tunnel_close", ["A"])] == ["b1"]
    assert Action().planned_steps(view, "transparency_off", []) == []
    assert Action().planned_steps({"inventory_hostname": "FW2"}, "firewall_tunnel_open", []) == []
    # a damaged file is refused, not read as "nothing planned"
    (tmp_path / "diagnosis.json").write_text("{}\n", encoding="utf-8")
    with pytest.raises(diagnosis_file.DiagnosisFileError):
        Action().planned_steps(view, "firewall_tunnel_close", [])


def test_a_firewall_record_compares_with_the_registered_facts_unless_given_its_own():
    from xcon.actions.firewall_change import ActionModule

    stored = {"FW1": {"firewall": {"name": "FW1", "passers": [{"port": 102}]}}, "FW2": {"failed": True, "msg": "unread"}}

    class Action:
        current_facts = ActionModule.current_facts

        def _registered(self, task_vars, name, host):
            assert name == "xcon_firewall_facts_result"
            return stored.get(host)

    assert Action().current_facts({"current": None}, {"inventory_hostname": "FW1"}) == stored["FW1"]["firewall"]
    assert Action().current_facts({"current": {"name": "given"}}, {"inventory_hostname": "FW1"}) == {"name": "given"}
    assert Action().current_facts({"current": None}, {"inventory_hostname": "FW2"}) == {}
    assert Action().current_facts({"current": None}, {"inventory_hostname": "FW3"}) == {}
