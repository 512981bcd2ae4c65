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
  fleet:
    description:
      - With O(state=restarted) - restart the MTA of every one of these inventory hosts from this one task (run it
        with C(run_once), the play's hosts as C(ansible_play_hosts)), each in its own thread from a pool of C(forks)
        threads spread over the controller's cores as the changes of M(xcon_connector)'s O(fleet) (C(XCON_FLEET_PROCESSES)),
        one WinRM command per host, with the host's own connection variables, C(xcon_server_name),
        C(xcon_mta_restart_service) (else O(name)) and C(xcon_mta_restart_exchange_version) (else
        C(xcon_exchange_version)); O(server), O(management_host), O(exchange_version) and O(restart_marker) are not used.
      - Only hosts whose restart is pending (fact C(xcon_restart_pending), or the marker
        C(<restart_marker_dir>/<host>)) and allowed (C(xcon_mta_restart_allowed), else C(xcon_allow_mta_restart), else
        true) are restarted; the others are listed in RV(left_pending) (pending, not allowed) or left out.
      - One host's failure does not stop or hide the others' - RV(hosts) has each host's own result (C(failed), C(msg)
        when it failed) and RV(failed_hosts) names the failed ones; the task itself does not fail. Check mode - nothing
        is restarted, RV(left_pending) is still computed.
    type: list
    elements: str
  restart_marker_dir:
    description: With O(fleet) - the directory of the per-host restart markers (C(<restart_marker_dir>/<host>)).
    type: path
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
  returned: without fleet
  type: dict
  sample: {name: MSExchangeMTA, state: Running, restarted: true, dependents: [MSExchangeIMC],
           stopped: [MSExchangeIMC, MSExchangeMTA], started: [MSExchangeMTA, MSExchangeIMC], timed_out: [],
           not_running: [], error: null}
hosts:
  description: With O(fleet) - per inventory host restarted (or tried), its own result (C(service), C(changed), C(failed) and C(msg)).
  returned: when fleet is set
  type: dict
  sample: {EXIN: {service: {name: MSExchangeMTA, state: Running, restarted: true}, changed: true, winrm_commands: 1}}
fleet:
  description: With O(fleet) - every host the task considered (O(fleet)).
  returned: when fleet is set
  type: list
  elements: str
failed_hosts:
  description: With O(fleet) - the hosts whose restart failed, with the reason.
  returned: when fleet is set
  type: dict
left_pending:
  description: With O(fleet) - the hosts whose restart is pending but not allowed (left pending, as asked).
  returned: when fleet is set
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.specs import MTA_SERVICE


def main():
    module = AnsibleModule(argument_spec=MTA_SERVICE, supports_check_mode=True)
    module.fail_json(msg="xcon_mta_service runs on the controller as an action plugin; check that ansible.cfg's action_plugins points at this project's action_plugins/")


if __name__ == "__main__":
    main()
