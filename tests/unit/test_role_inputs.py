"""The write path's role variables are checked up front (xcon.role_inputs), with each role's own
argument spec, because playbooks/remediate.yml imports its roles without argument-spec validation."""

from __future__ import annotations

import os

import pytest
import yaml

from xcon import inputs
from xcon import role_inputs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _imported_roles(playbook):
    """{role: rolespec_validate} of every role a playbook runs (roles: lists and import/include_role)."""
    with open(os.path.join(ROOT, playbook), encoding="utf-8") as handle:
        plays = yaml.safe_load(handle)
    found = {}
    for play in plays:
        for role in play.get("roles") or []:
            found[role["role"] if isinstance(role, dict) else role] = True
        for section in ("pre_tasks", "tasks", "post_tasks"):
            for task in play.get(section) or []:
                for key in ("ansible.builtin.import_role", "ansible.builtin.include_role", "import_role", "include_role"):
                    if key in task:
                        found[task[key]["name"]] = task[key].get("rolespec_validate", True)
    return found


def test_every_write_path_role_is_checked_up_front_and_runs_no_validation_task():
    roles = _imported_roles("playbooks/remediate.yml")
    assert not any(roles.values()), roles  # no per-host "Validating arguments" task
    assert set(roles) - {"xcon_link_gate"} == set(role_inputs.WRITE_ROLES), roles


@pytest.mark.parametrize("name, value, why", [
    ("xcon_mta_restart_allowed", "maybe", "not a valid boolean"),
    ("xcon_change_exchange_version", 2000, "must be one of"),
    ("xcon_change_exchange_version", "2003", "must be one of"),
    ("xcon_change_phase", "everything", "must be one of"),
    ("xcon_change_changes", ["not a dict"], "unable to convert to dict"),
    ("xcon_mta_restart_withheld", ["EXIN"], "unable to convert to dict"),
    ("xcon_firewall_tunnel_confirmed", "perhaps", "not a valid boolean"),
    ("xcon_firewall_tunnel_driver", "pf", "must be one of"),
    ("xcon_firewall_tunnel_prompt", "ask", "not a valid boolean"),
    ("xcon_firewall_operator_command", {"run": "x"}, "xcon_firewall_tunnel_operator_command's default"),
])
def test_a_bad_role_variable_is_refused_with_its_roles_rule(name, value, why):
    messages = role_inputs.validate({"EXIN": {name: value}, "EXOUT": {name: value}}, ROOT)
    assert len(messages) == 1, messages
    assert messages[0].startswith(f"{name}=") and "(seen by every host)" in messages[0], messages
    assert why in messages[0], messages


@pytest.mark.parametrize("name, value", [
    ("xcon_mta_restart_allowed", "false"), ("xcon_mta_restart_allowed", True), ("xcon_change_exchange_version", "5.5"),
    ("xcon_change_exchange_version", 4.0), ("xcon_change_phase", "stack_repoint"), ("xcon_mta_restart_service", "MSExchangeMTA"),
    ("xcon_firewall_operator_command", ["/opt/lab", "firewall", "apply"]), ("xcon_firewall_product", "raptor-eagle-6"),
    ("xcon_mta_restart_withheld", {}), ("xcon_change_changes", []), ("xcon_backup_dir", None),
])
def test_good_role_variables_pass(name, value):
    assert role_inputs.validate({"EXIN": {name: value}}, ROOT) == []


def test_the_facts_the_run_computes_may_not_be_given_from_outside():
    messages = role_inputs.validate({"EXIN": {"xcon_diagnose_result": {"planned": {}}, "xcon_link_gate_result": None}}, ROOT)
    assert len(messages) == 1 and messages[0].startswith("xcon_diagnose_result=") and "do not set it" in messages[0], messages


def test_every_option_of_every_write_path_role_is_watched():
    watched = role_inputs.watched(ROOT)
    for role in role_inputs.WRITE_ROLES:
        with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
            options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
        assert set(options) <= set(watched) | set(inputs.BY_NAME), (role, set(options) - set(watched))
