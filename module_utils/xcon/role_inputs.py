"""The write path's role variables, checked before anything is read or changed.

playbooks/remediate.yml imports its roles without argument-spec validation (issue 19): Ansible turns
a role's meta/argument_specs.yml into one "Validating arguments against arg spec" task per host, and
on a fleet each of those is a forked worker per server (about 15 ms of a 2-core controller each, 10 s
of a 100-link fix).  What those tasks checked is checked here instead, once, by xcon_validate at the
start of the run, with the same rules (each role's own argument spec, through Ansible's own validator):

- a role variable given from outside (inventory, group or host variable, ``-e``) is checked against
  its role's spec as every host that runs the role sees it;
- an inventory variable that reaches a role option only through the role's default (FEEDS) is
  checked against that option's spec;
- the contract variables the other defaults come from are checked by xcon.inputs, and the values the
  run computes itself (the plan, the gate's result: COMPUTED) may not be given from outside.

The modules the roles call check their own arguments again (xcon.specs).
"""

from __future__ import annotations

import functools
import os

import yaml

from xcon import inputs

# Every role remediate.yml runs on the servers or firewalls, and the hosts it runs on
# (tests/unit/test_role_inputs.py holds remediate.yml to this list).
WRITE_ROLES = {
    "xcon_backup": "exchange",
    "xcon_change": "exchange",
    "xcon_mta_restart": "exchange",
    "xcon_firewall_tunnel": "firewall",
    "xcon_transparency_off": "firewall",
}

# Inventory variables that are not contract variables and reach a write-path role only through the
# role option's default (roles/*/defaults/main.yml): checked with that option's spec.
FEEDS = {
    "xcon_firewall_product": ("xcon_firewall_tunnel", "xcon_firewall_tunnel_product"),
    "xcon_firewall_operator_command": ("xcon_firewall_tunnel", "xcon_firewall_tunnel_operator_command"),
}

# Results the run computes (the diagnosis, with each server's plan and the change plays' hosts; the
# gate's stopped links): the role options' defaults and the plays' hosts are built from them; given
# from outside (-e wins over register) they would replace what the run planned.
COMPUTED = ("xcon_diagnose_result", "xcon_link_gate_result")


@functools.lru_cache(maxsize=None)
def role_options(root, role):
    """The options of `role`'s entry point main (meta/argument_specs.yml under `root`)."""
    path = os.path.join(root, "roles", role, "meta", "argument_specs.yml")
    with open(path, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle) or {}
    return (spec.get("argument_specs") or {}).get("main", {}).get("options") or {}


@functools.lru_cache(maxsize=None)
def _validator(root, role, option):
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    return ArgumentSpecValidator({option: role_options(root, role)[option]})


def watched(root):
    """{variable: (role, option)}: every variable checked here, and the option whose spec applies (a
    role option that is itself a contract variable, xcon_transparency_off_acknowledged, is xcon.inputs')."""
    names = {option: (role, option) for role in WRITE_ROLES for option in role_options(root, role) if option not in inputs.BY_NAME}
    names.update(FEEDS)
    return names


def check(root, role, option, value):
    """Why `value` is not a valid value of `role`'s `option` (its argument spec), or None."""
    result = _validator(root, role, option).validate({option: value})
    return "; ".join(result.error_messages) or None


def validate(values_by_host, root):
    """One message per bad value: ``values_by_host`` is ``{host: {variable: value}}`` for the
    variables of :func:`watched` and COMPUTED as each host sees them (unset ones absent or None)."""
    names = watched(root)
    seen = {}
    for host, values in values_by_host.items():
        for name, value in (values or {}).items():
            if value is None:
                continue
            if name in COMPUTED:
                seen.setdefault((name, inputs.shown(value)), ["computed", []])[1].append(host)
                continue
            if name not in names:
                continue
            role, option = names[name]
            problem = check(root, role, option, value)
            if problem:
                fed = f" (it is {option}'s default)" if name != option else ""
                seen.setdefault((name, inputs.shown(value)), [f"{problem}{fed}; role {role}, meta/argument_specs.yml", []])[1].append(host)
    messages = []
    for (name, text), (problem, hosts) in sorted(seen.items()):
        where = inputs.where(hosts, values_by_host)
        if problem == "computed":
            messages.append(f"{name}={text} (seen by {where}): the run computes this itself (the plan, the gate's "
                            "stopped links); given from outside it would replace what the run planned: do not set it.")
        else:
            messages.append(f"{name}={text} (seen by {where}): {problem}.")
    return messages
