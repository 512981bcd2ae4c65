#!/usr/bin/python
# -*- coding: utf-8 -*-
# fix-xcon: documented face of the xcon_link_gate module; the work is done on the controller by
# action_plugins/xcon_link_gate.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xcon_link_gate
short_description: Stop the links whose earlier change steps failed, before the next phase
description:
  - Per-link transactions. Before each phase of the changes (playbooks/remediate.yml) it reads what
    every host registered so far (backups, connector changes, MTA restarts) and the firewalls'
    confirmed state, keeps it in the run's journal C(<run_dir>/transaction.json), and returns the
    links that stopped, each with the step, the host and the reason.
  - A link's changes of a phase run only when all its changes of the earlier phases succeeded on
    every server and the firewall; the change roles leave out the stopped links. A server on which a
    stopped link has an applied change is not restarted (C(restart_withheld)).
  - Check mode - nothing ran, so nothing is stopped and nothing is written.
version_added: "0.1.0"
author: fix-xcon maintainers
options:
  run_dir:
    description: The run's report directory (holds C(plan.json) and the journal).
    type: path
    required: true
  phase:
    description: The phase about to run; C(final) after the MTA restarts (the report's view).
    type: str
    required: true
    choices: [backup, precondition, reverse_connector, firewall_tunnel_open, stack_repoint, stack_repoint_outside, firewall_tunnel_close, transparency_off, mta_restart, final]
  exchange_hosts:
    description: Inventory names of the Exchange servers.
    type: list
    elements: str
    default: []
  extra_hosts:
    description: Hosts to read besides the plan's targets (servers with a restart pending from an earlier run).
    type: list
    elements: str
    default: []
  state_dir:
    description: The toolkit's state directory (the firewalls' confirmed records).
    type: path
    required: true
  rerun_command:
    description: The command that re-runs the fix, quoted in the stop messages; empty - the same run again.
    type: str
    default: ""
notes:
  - Runs once per play (C(run_once), delegated to the controller).
"""

EXAMPLES = r"""
- name: Stop the links whose earlier steps failed
  xcon_link_gate:
    run_dir: "{{ hostvars['localhost']['xcon_run_dir'] }}"
    phase: stack_repoint
    exchange_hosts: "{{ groups['xcon_exchange'] }}"
    state_dir: "{{ xcon_state_dir }}"
  run_once: true
  delegate_to: localhost
  register: xcon_link_gate_result
"""

RETURN = r"""
phase:
  description: The phase the gate ran before.
  returned: always
  type: str
stopped:
  description: The links that stopped (their later steps do not run).
  returned: always
  type: list
  elements: str
links:
  description: >-
    Per link - C(state) (open, complete, stopped), C(steps_total), C(steps_done), C(not_run) (plan
    entry ids) and C(stopped_at) (C(step), C(change), C(phase), C(host), C(description), C(reason), C(safe)).
    Every link for phase C(final); the stopped links only before the other phases (the result is
    registered on every host of the play).
  returned: always
  type: dict
restart_withheld:
  description: Per server, the stopped links whose applied changes a restart would activate.
  returned: always
  type: dict
lines:
  description: One sentence per stopped link - where, why, what is in place, the re-run command.
  returned: always
  type: list
  elements: str
outcomes:
  description: Per plan entry id that ran, C(ok), C(reason) and C(at) (the controller's time the gate first saw it; every phase, from the journal); phase C(final) only, else empty.
  returned: always
  type: dict
restarts:
  description: Per inventory host whose MTA restart ran, C(ok), C(reason) and C(at), from the journal; phase C(final) only, else empty.
  returned: always
  type: dict
rerun_command:
  description: The command that re-runs the fix (the option, or the same run again).
  returned: always
  type: str
journal:
  description: Path of the run's journal.
  returned: when not in check mode
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.specs import LINK_GATE


def main():
    module = AnsibleModule(argument_spec=LINK_GATE, supports_check_mode=True)
    module.fail_json(msg="xcon_link_gate runs on the controller as an action plugin; check that ansible.cfg's action_plugins points at this project's action_plugins/")


if __name__ == "__main__":
    main()
