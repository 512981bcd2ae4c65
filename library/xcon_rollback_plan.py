#!/usr/bin/python
# -*- coding: utf-8 -*-
# fix-xcon: documented face of the xcon_rollback_plan module; the work is done on the controller by
# action_plugins/xcon_rollback_plan.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xcon_rollback_plan
short_description: Check a fix-xcon run before rolling it back, and list what it wrote
description:
  - Checks O(run_id) - a plain directory name under O(report_dir) (no path, no C(..), not C(latest)) that
    exists and holds the run's C(plan.json).
  - Verifies the SHA-256 of every file rollback relies on (C(plan.json), C(backup/*.json), C(journal/*.json),
    recorded in C(<file>.sha256) when they were written) before anything is used; a changed or truncated
    file stops the rollback with its name.
  - A C(--check) run changed nothing and kept no backup - that is said, and nothing is done.
  - Returns, per Exchange host, the run's writes from its change journal (newest first), and per
    firewall the reverse steps of the run's firewall changes (newest change first).
  - Reads only; changes nothing.
version_added: "0.1.0"
author: fix-xcon maintainers
options:
  run_id:
    description: The run to roll back (its directory name under O(report_dir)).
    type: str
    required: true
  report_dir:
    description: The report directory; a relative path is taken from the directory of ansible.cfg.
    type: path
    default: reports
  exchange_hosts:
    description: The inventory's Exchange hosts (group C(xcon_exchange)); writes to other hosts are reported, not undone.
    type: list
    elements: str
    default: []
  firewall_hosts:
    description: The inventory's firewalls (group C(xcon_firewalls)).
    type: list
    elements: str
    default: []
notes:
  - Check mode - supported; it only reads. Diff - not applicable.
"""

EXAMPLES = r"""
- name: Check the run and load what it wrote
  xcon_rollback_plan:
    run_id: 20261128T175622Z-94fe49
    exchange_hosts: "{{ groups['xcon_exchange'] }}"
    firewall_hosts: "{{ groups['xcon_firewalls'] | default([]) }}"
  check_mode: false
  register: xcon_rollback_loaded
"""

RETURN = r"""
run_dir:
  description: The run's directory.
  returned: success
  type: str
writes:
  description: Per Exchange host, the journaled writes of the run, newest first (input of xcon_connector's C(restore)).
  returned: success
  type: dict
firewall_steps:
  description: Per firewall, the steps that reverse the run's firewall changes, newest change first.
  returned: success
  type: dict
firewalls:
  description: The firewall facts the run planned from.
  returned: success
  type: dict
lines:
  description: What was verified and what will be undone, for people.
  returned: success
  type: list
  elements: str
verified:
  description: The files whose checksums were verified.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.specs import ROLLBACK_PLAN


def main():
    module = AnsibleModule(argument_spec=ROLLBACK_PLAN, supports_check_mode=True)
    module.fail_json(msg="xcon_rollback_plan runs on the controller as an action plugin; check that ansible.cfg's action_plugins points at this project's action_plugins/")


if __name__ == "__main__":
    main()
