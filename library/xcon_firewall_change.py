#!/usr/bin/python
# -*- coding: utf-8 -*-
# fix-xcon: documented face of the xcon_firewall_change module; the work is done on the controller by
# action_plugins/xcon_firewall_change.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xcon_firewall_change
short_description: Carry out a firewall change record (remove a service passer, add a routed path, transparency on/off)
description:
  - C(raptor) (guided) driver - renders an operator change record, the exact console steps for the
    product generation (Raptor Management Console on NT; SEF/SGS web console with Activate) and the
    same steps as a machine-readable record (JSON) under O(record_dir). When O(operator_command) is
    given (the lab plays the operator) it is run with the record's path. When O(confirmed) is true the
    change is recorded as carried out in O(state_file) (later runs' facts). Otherwise the result has
    RV(status) C(awaiting_operator) and the role prompts the operator.
  - The result of the change is never trusted - the playbook verifies by observing mail flow.
  - Only steps that differ from O(current) are kept, so a re-run changes nothing.
  - C(nftables) driver - the same change record and confirmation as C(raptor); the toolkit does not
    write the gateway's nftables table itself.
version_added: "0.1.0"
author: fix-xcon maintainers
options:
  name:
    description: The firewall's name.
    type: str
    required: true
  driver:
    description: Firewall driver.
    type: str
    default: raptor
    choices: [raptor, nftables]
  product:
    description: Product generation (selects the console steps).
    type: str
    default: raptor-eagle-5
  steps:
    description:
      - Steps - C(remove_passer), C(add_passer), C(add_routed_path), C(remove_routed_path), C(set_transparency).
      - Without it, the steps of O(plan_phase) that the run planned for this host.
    type: list
    elements: dict
  plan_phase:
    description:
      - Without O(steps) - the plan's phase whose steps this host carries out (C(firewall_tunnel_open),
        C(firewall_tunnel_close), C(transparency_off)), read from this host's entries of the plan that
        C(xcon_diagnose) wrote (its C(diagnosis_file), registered on localhost as C(xcon_diagnose_result)),
        without the entries of O(stopped_links).
      - No entry of the phase - nothing to do (RV(status) C(nothing_to_do)).
    type: str
  stopped_links:
    description: With O(plan_phase) - links that stopped at an earlier step; their steps are left out.
    type: list
    elements: str
    default: []
  run_id:
    description: The run this record belongs to.
    type: str
    required: true
  record_dir:
    description: Where the record (JSON) and the instructions (text) are written.
    type: path
    required: true
  confirmed:
    description: The operator has carried out the record.
    type: bool
    default: false
  operator_command:
    description: A command that carries out the record; its path is appended as the last argument.
    type: list
    elements: str
  state_file:
    description: The toolkit's record of confirmed changes for this firewall.
    type: path
  current:
    description:
      - The firewall facts the steps are compared with.
      - Default - the C(firewall) of this host's registered C(xcon_firewall_facts_result) (role
        xcon_firewall_facts), read as Ansible stores it; none registered - no facts.
    type: dict
notes:
  - Check mode - supported; the record is rendered and returned, nothing is written or run.
"""

EXAMPLES = r"""
- name: Hand the tunnel change to the operator
  xcon_firewall_change:
    name: FW1
    steps:
      - {action: add_routed_path, hosts: [EXIN, EXOUT], port: 102}
    run_id: "{{ xcon_run_id }}"
    record_dir: reports/{{ xcon_run_id }}/firewall
"""

RETURN = r"""
status:
  description: C(nothing_to_do), C(awaiting_operator), C(applied_by_operator) or C(confirmed).
  returned: always
  type: str
record:
  description: The machine-readable change record.
  returned: always
  type: dict
record_path:
  description: Where the record was written.
  returned: when written
  type: str
instructions:
  description: The operator's console steps.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.specs import FIREWALL_CHANGE


def main():
    module = AnsibleModule(argument_spec=FIREWALL_CHANGE, supports_check_mode=True)
    module.fail_json(msg="xcon_firewall_change runs on the controller as an action plugin; check that ansible.cfg's action_plugins points at this project's action_plugins/")


if __name__ == "__main__":
    main()
