#!/usr/bin/python
# -*- coding: utf-8 -*-
# fix-xcon: documented face of the xcon_validate module; the work is done on the controller by
# action_plugins/xcon_validate.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xcon_validate
short_description: Check fix-xcon's operator variables before anything is read or changed
description:
  - Checks the type and range of every operator variable of the playbook contract
    (docs/contracts/playbook.md) as each host that uses it sees it - extra variables, group and
    host variables - and fails with one message per bad value, naming the variable, the value,
    the hosts that see it, what is allowed and an example.
  - Run ids (C(xcon_run_id_requested), C(xcon_run_id), C(xcon_saved_run_id)) must name a folder
    directly under the reports directory; the run's own facts C(xcon_run_dir) and
    C(xcon_run_report_root) may not be set from outside.
  - Warns, naming the hosts, when a WinRM endpoint's certificate is not validated
    (C(ansible_winrm_server_cert_validation=ignore)).
  - The rules live in module_utils/xcon/inputs.py (one place).
  - The variables of the roles that change things (playbooks/remediate.yml imports them without
    argument-spec validation, a task per host) are checked against each role's own
    meta/argument_specs.yml when given from outside, and the results the run computes (the diagnosis
    C(xcon_diagnose_result) with the plan, the gate's C(xcon_link_gate_result)) may not be
    (module_utils/xcon/role_inputs.py).
version_added: "0.1.0"
author: fix-xcon maintainers
options:
  exchange_hosts:
    description: Inventory names of the Exchange servers (their variables are checked too).
    type: list
    elements: str
    default: []
  firewall_hosts:
    description: Inventory names of the firewalls (their variables are checked too).
    type: list
    elements: str
    default: []
  root:
    description: The directory relative report and state directories are resolved against.
    type: path
    required: true
notes:
  - Check mode - supported; reads variables only, nothing is contacted or written.
"""

EXAMPLES = r"""
- name: Check every operator variable before anything is read or changed
  xcon_validate:
    exchange_hosts: "{{ groups['xcon_exchange'] | default([]) }}"
    firewall_hosts: "{{ groups['xcon_firewalls'] | default([]) }}"
    root: "{{ ansible_config_file | dirname }}"
"""

RETURN = r"""
checked:
  description: The variables checked.
  returned: always
  type: list
  elements: str
hosts:
  description: How many hosts' views of the variables were checked.
  returned: always
  type: int
problems:
  description: One message per invalid value (empty when all are valid).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.specs import VALIDATE


def main():
    module = AnsibleModule(argument_spec=VALIDATE, supports_check_mode=True)
    module.fail_json(msg="xcon_validate runs on the controller as an action plugin; check that ansible.cfg's action_plugins points at this project's action_plugins/")


if __name__ == "__main__":
    main()
