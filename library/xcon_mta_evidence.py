#!/usr/bin/python
# -*- coding: utf-8 -*-
# fix-xcon: documented face of the xcon_mta_evidence module; the work is done on the controller by
# action_plugins/xcon_mta_evidence.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xcon_mta_evidence
short_description: Read an Exchange MTA's evidence of X.400 association failures
description:
  - Reads, in one WinRM command, the MSExchangeMTA events of the last O(window_minutes) of the
    server's clock (1290, 289, 1294, 1293, 9301, 37, 659, 660, 9298), the C(MSExchangeMTA Connections)
    queue length of every connection, the MTA work queue and the MTA service state.
  - Events are parsed - the connector is named from the DN in the text (its directory name), and the
    network address in 9301 is decoded from hex.
  - Runs on the controller as an action plugin over Ansible's Windows connection variables; read-only,
    so it runs the same under check mode.
version_added: "0.1.0"
author: fix-xcon maintainers
extends_documentation_fragment:
  - xcon_common
options:
  window_minutes:
    description: How many minutes of events to read, counted back from the server's clock.
    type: int
    default: 120
  connectors:
    description: Only report queues of these connectors (directory names). Default - all instances.
    type: list
    elements: str
notes:
  - Check mode - fully supported (read-only). Diff - not applicable.
"""

EXAMPLES = r"""
- name: Read the outside MTA's evidence of the last hour
  xcon_mta_evidence:
    window_minutes: 60
  register: evidence

- name: Show the KB fault's event counts
  ansible.builtin.debug:
    var: evidence.evidence.counts
"""

RETURN = r"""
evidence:
  description: Events, counts per id, 9301 addresses, queue per connector, work queue and service state.
  returned: success
  type: dict
  sample:
    server: EXOUT
    since: "2026-01-05T09:00:00Z"
    now: "2026-01-05T10:00:00Z"
    counts: {"1290": 6, "289": 6, "1294": 6}
    addresses_9301: []
    queues: {TO-INSIDE: 23}
    work_queue: 0
    service: {name: MSExchangeMTA, state: Running}
winrm_commands:
  description: Number of WinRM commands this call sent.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.specs import MTA_EVIDENCE


def main():
    module = AnsibleModule(argument_spec=MTA_EVIDENCE, supports_check_mode=True)
    module.fail_json(msg="xcon_mta_evidence runs on the controller as an action plugin; check that ansible.cfg's action_plugins points at this project's action_plugins/")


if __name__ == "__main__":
    main()
