#!/usr/bin/python
# -*- coding: utf-8 -*-
# fix-xcon: documented face of the xcon_report module; the work is done on the controller by
# action_plugins/xcon_report.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xcon_report
short_description: Write fix-xcon's final report (JSON and HTML) and summary
description:
  - Builds the report of docs/contracts/report.md from the diagnosis, the change roles' registered
    results (each planned change marked applied or not) and the verification, writes
    C(<run_dir>/report.json) and C(report.html) and the same files under C(latest/), and returns a
    one-screen summary. Secrets are masked before anything is written.
version_added: "0.1.0"
author: fix-xcon maintainers
options:
  run_id:
    description: The run id.
    type: str
    required: true
  run_dir:
    description: The run's report directory.
    type: path
    required: true
  tool_version:
    description: Version written into the report.
    type: str
    default: 0.0.0
  diagnosis_file:
    description:
      - The whole diagnosis xcon_diagnose wrote (its result C(diagnosis_file)), checked against its checksum.
      - One of O(diagnosis_file) and O(diagnosis) is required.
    type: path
  diagnosis:
    description:
      - The registered result of xcon_diagnose - its C(diagnosis_file) is read; or, as before that file
        existed, a whole diagnosis (C(links), C(servers), C(hosts_scanned), ...) given inline.
      - Prefer O(diagnosis_file) - templating a result into the arguments costs time with large fleets.
    type: dict
  verification:
    description: The registered result of xcon_verify.
    type: dict
    default: {}
  change_results:
    description: Names of the change roles' registered results (read from every host's hostvars).
    type: list
    elements: str
    default: []
  exchange_hosts:
    description: Inventory names of the Exchange servers.
    type: list
    elements: str
    default: []
  firewall_hosts:
    description: Inventory names of the firewalls.
    type: list
    elements: str
    default: []
  state_dir:
    description: The toolkit's state directory (confirmed firewall records tell which operator steps were carried out).
    type: path
    required: true
  transaction:
    description: >-
      The registered result of xcon_link_gate (phase final) - where each link stopped and every
      change's outcome; each link gets C(transaction) in the report.
    type: dict
    default: {}
  rerun_command:
    description: The command that re-runs the fix; written as C(rerun_command) when a link stopped.
    type: str
    default: ""
notes:
  - Check mode - supported; writes the report (the audit's product), nothing else.
"""

EXAMPLES = r"""
- name: Write the final report
  xcon_report:
    run_id: "{{ xcon_run_id }}"
    run_dir: "{{ xcon_run_dir }}"
    diagnosis_file: "{{ xcon_diagnose_result.diagnosis_file }}"
    verification: "{{ xcon_verify_result | default({}) }}"
  register: xcon_report_result
"""

RETURN = r"""
paths:
  description: The files written (the report itself is in report.json, not returned).
  returned: always
  type: dict
ok:
  description:
    - True when nothing failed, every Exchange host was read and a link was found; in check mode
      also no refusal a real run would meet before its first change.
  returned: always
  type: bool
failure:
  description: What failed, when ok is false.
  returned: always
  type: str
summary_lines:
  description: The one-screen summary.
  returned: always
  type: list
  elements: str
stats:
  description:
    - The run summary for AWX/AAP workflows (the role publishes it with set_stats as xcon_run_summary) - run_id,
      check_mode, worst_status and worst_status_after, links_by_status and links_by_status_after, links_total,
      changes_applied, hosts_failed, awaiting_firewall_confirmation (link ids stopped at a firewall record),
      firewall_records, report_html, report_json.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.specs import REPORT


def main():
    module = AnsibleModule(argument_spec=REPORT, supports_check_mode=True)
    module.fail_json(msg="xcon_report runs on the controller as an action plugin; check that ansible.cfg's action_plugins points at this project's action_plugins/")


if __name__ == "__main__":
    main()
