#!/usr/bin/python
# -*- coding: utf-8 -*-
# fix-xcon: documented face of the xcon_mta_service module; the work is done on the controller by
# action_plugins/xcon_mta_service.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xcon_mta_service
short_description: Query, start or restart the Exchange MTA service
description:
  - Queries, starts or restarts C(MSExchangeMTA) (or O(name)) on an Exchange server over WinRM, waiting
    for the service to report Running.
  - On success with O(state=restarted) the host fact C(xcon_restart_pending) is cleared.
  - Never restarts in check mode.
version_added: "0.1.0"
author: fix-xcon maintainers
extends_documentation_fragment:
  - xcon_common
options:
  name:
    description: Service name. Default - the Exchange version profile's MTA service (C(MSExchangeMTA) for 5.5).
    type: str
  state:
    description: C(query) only reads; C(started) starts it when stopped; C(restarted) always restarts.
    type: str
    default: started
    choices: [started, restarted, query]
  restart_marker:
    description: The marker file written by xcon_connector; removed once the service restarted.
    type: path
  timeout:
    description:
      - Seconds the stops of a restart may take together (the running dependent services, then the service), and
        each start. A restart is compensating - the service and every dependent that ran before are started again
        whatever happens; the task fails when one of them is still not running.
    type: int
    default: 300
notes:
  - Check mode - supported (reports what it would do). Diff - not applicable.
"""

EXAMPLES = r"""
- name: Restart the MTA once after the connector changes
  xcon_mta_service:
    state: restarted
  when: xcon_restart_pending | default(false)
"""

RETURN = r"""
service:
  description:
    - The service state after the call. After a restart also C(dependents) (the running dependent services
      recorded), C(stopped), C(started), C(timed_out) (services a wait gave up on), C(not_running) (the service
      and recorded dependents not running at the end) and C(error).
  returned: always
  type: dict
  sample: {name: MSExchangeMTA, state: Running, restarted: true, dependents: [MSExchangeIMC],
           stopped: [MSExchangeIMC, MSExchangeMTA], started: [MSExchangeMTA, MSExchangeIMC], timed_out: [],
           not_running: [], error: null}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.specs import MTA_SERVICE


def main():
    module = AnsibleModule(argument_spec=MTA_SERVICE, supports_check_mode=True)
    module.fail_json(msg="xcon_mta_service runs on the controller as an action plugin; check that ansible.cfg's action_plugins points at this project's action_plugins/")


if __name__ == "__main__":
    main()
