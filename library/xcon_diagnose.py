#!/usr/bin/python
# -*- coding: utf-8 -*-
# fix-xcon: documented face of the xcon_diagnose module; the work is done on the controller by
# action_plugins/xcon_diagnose.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xcon_diagnose
short_description: Pair connectors into links, diagnose each link, choose the workaround and plan the changes
description:
  - Runs on the controller, with no connection. Reads the results of xcon_connector_info (registered as
    C(xcon_audit_result)) of every Exchange host and of xcon_firewall_facts (C(xcon_firewall_facts_result))
    of every firewall host, from hostvars.
  - Pairs the connectors that name each other's server as remote MTA into links; puts each link's
    servers inside or outside by the firewall between them; raises findings (codes C(XCON-*), see
    docs/findings/) with their evidence; sets each link's status; chooses the workaround (policy in
    the README) and plans the exact changes (before and after of every object).
  - Writes the audit report (report.json and report.html) under O(run_dir) and C(latest/), and the whole
    diagnosis to C(<run_dir>/diagnosis.json) (RV(diagnosis_file)), which xcon_verify and xcon_report read;
    the registered result keeps only what the playbook's tasks use.
  - With O(saved_run_dir) it re-analyses a saved run's raw answers offline, without any server.
version_added: "0.1.0"
author: fix-xcon maintainers
options:
  exchange_hosts:
    description: Inventory names of the Exchange servers.
    type: list
    elements: str
    required: true
  firewall_hosts:
    description: Inventory names of the firewalls.
    type: list
    elements: str
    default: []
  workaround:
    description: C(auto) or the workaround to plan; C(none) plans nothing.
    type: str
    default: auto
    choices: [auto, reverse_connector, firewall_tunnel, transparency_off, none]
  queue_threshold:
    description: Queue length above which XCON-QUEUE-BACKLOG is raised.
    type: int
    default: 10
  reverse_connector_name:
    description: Directory name of the reverse connector; empty = C(<inside connector>-REVERSE).
    type: str
    default: ""
  address_type:
    description: New Stack addresses as the peer's IP address or FQDN.
    type: str
    default: ip
    choices: [ip, hostname]
  firewall_changes_possible:
    description: Whether firewall changes can be carried out (auto policy input).
    type: bool
    default: true
  transparency_off_acknowledged:
    description: The operator accepts transparency off's side effect.
    type: bool
    default: false
  run_id:
    description: The run id.
    type: str
    required: true
  run_dir:
    description: The run's report directory.
    type: path
    required: true
  saved_run_dir:
    description: Re-analyse the raw answers saved by an earlier run in this directory instead of hostvars.
    type: path
  state_dir:
    description:
      - The toolkit's state directory; servers with a pending MTA restart marker there become targets.
      - Its C(transactions.json) holds the links' open transactions; a changing run records one for
        every link it is about to change, before the first change.
    type: path
  open_transactions:
    description:
      - What to do first with a link whose transaction an earlier run left open, whatever I(workaround) says.
      - C(finish) runs its recorded steps again (steps already done are found done); C(rollback) undoes
        every step it may have applied. With I(workaround=none) nothing is changed.
    type: str
    choices: [finish, rollback]
    default: finish
  preview_on_servers:
    description:
      - In check mode, whether the change plays also run on the Exchange servers (C(xcon_preview_on_servers)).
      - When false, only the firewalls are targets under --check (only their change plays run).
    type: bool
    default: true
  final_report:
    description:
      - A final report (M(xcon_report)) follows in the same run. In check mode this module then writes
        only C(report.json) (and its copy under C(latest/)), and the final report writes the whole report,
        HTML page included, moments later; nothing changes in between (the page was rendered twice).
      - Without a final report (the offline analysis, C(playbooks/audit.yml) alone) or outside check mode
        (the audit's report is the record of the plan if the run stops during its changes), both files.
    type: bool
    default: false
notes:
  - Check mode - supported; it only writes the report.
"""

EXAMPLES = r"""
- name: Diagnose and plan
  xcon_diagnose:
    exchange_hosts: "{{ groups['xcon_exchange'] }}"
    firewall_hosts: "{{ groups['xcon_firewalls'] }}"
    run_id: "{{ xcon_run_id }}"
    run_dir: "{{ xcon_run_dir }}"
  register: xcon_diagnose_result
"""

RETURN = r"""
diagnosis_file:
  description:
    - The whole diagnosis, written atomically with its C(.sha256) to C(<run_dir>/diagnosis.json) - C(links)
      (findings, status, recommended workaround and reason, report.json's C(links), each with its C(timeline)
      as the audit read it), C(plan) (each change with C(id), C(kind), C(target), C(object), C(action),
      C(before), C(after), C(args)), C(servers), C(hosts_scanned), C(hosts_failed), C(directories),
      C(unlinked) and every key of this result.
    - xcon_verify and xcon_report read it (their option C(diagnosis_file)); it is not registered because at
      100 links it is about 2 MB, which Ansible would copy through every task that templates it.
  returned: always
  type: str
  sample: reports/20261128T175622Z-94fe49/diagnosis.json
link_status:
  description: Each link's status by link id (C(error), C(unknown), C(warning), C(ok)); the links themselves are in O(run_dir)'s diagnosis.json.
  returned: always
  type: dict
  sample: {"EXIN<->EXOUT": "error"}
audit_at:
  description: The controller's clock (ISO-8601 UTC) just after the audit's reads; the report places the run's changes on the servers' clocks with it.
  returned: always
  type: str
workaround_requested:
  description: The O(workaround) asked for.
  returned: always
  type: str
targets:
  description: Inventory hosts that have planned changes.
  returned: always
  type: list
  elements: str
mta_services:
  description:
    - Per Exchange target, its MTA service's name from the Exchange version's profile (the MTA restart
      role names it to the operator).
    - Each target's plan entries by phase are not registered; they are C(planned) in RV(diagnosis_file),
      which M(xcon_connector) (O(fleet)) and M(xcon_firewall_change) (O(plan_phase)) read.
  returned: always
  type: dict
  sample: {"ex-in-01": "MSExchangeMTA"}
target_groups:
  description:
    - The hosts of each change play of playbooks/remediate.yml (C(xcon_targets) and C(xcon_targets_<phase>)),
      from the phases of each target's plan entries; the plays name these lists as their hosts.
  returned: always
  type: dict
  sample: {"xcon_targets": ["ex-in-01", "fw-01"], "xcon_targets_precondition": ["ex-in-01"]}
preflight_errors:
  description: Why planned changes could not be completed (no write access, no acknowledgement); empty when all can.
  returned: always
  type: list
  elements: str
unreadable_hosts:
  description: The hosts that could not be read (Exchange servers and firewalls), each with its error code and reason.
  returned: always
  type: dict
coverage_problems:
  description: Why the audit's coverage makes the run a failure (a host not read, no link found); empty when none.
  returned: always
  type: list
  elements: str
lines:
  description: One line per link for the console.
  returned: always
  type: list
  elements: str
report_paths:
  description: The report files written (C(json), C(html); no C(html) when O(final_report) writes it in check mode).
  returned: always
  type: dict
diff:
  description: In check mode with --diff, one before/after per planned change on an Exchange server.
  returned: check mode with --diff
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.specs import DIAGNOSE


def main():
    module = AnsibleModule(argument_spec=DIAGNOSE, supports_check_mode=True)
    module.fail_json(msg="xcon_diagnose runs on the controller as an action plugin; check that ansible.cfg's action_plugins points at this project's action_plugins/")


if __name__ == "__main__":
    main()
