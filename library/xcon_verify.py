#!/usr/bin/python
# -*- coding: utf-8 -*-
# fix-xcon: documented face of the xcon_verify module; the work is done on the controller by
# action_plugins/xcon_verify.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xcon_verify
short_description: Verify by observation that mail flows again on the changed links
description:
  - For every link this run changed (or finished, an open transaction), observes both servers (one
    WinRM command per server per read). A link passes when the outside server's queue for the link is
    empty, no 1290/289/1294 or 1293 has appeared on either server since the last change (after
    O(settle_minutes), 0 by default), both MTA services run, and the link's own window has passed (at
    least two of the slower side's open intervals (each link's C(verify_window) from xcon_diagnose, read
    from the connectors' Open-Retry-Interval)), so that a window between two bursts of refusals cannot pass.
    It fails at O(timeout_minutes) (never before the window).
  - Reads only when a read can decide (xcon.verify_reads) - every server at the start (the baseline),
    at the end of the shortest window, then every O(poll_minutes) until the timeout; before the first
    decision only a server whose last read failed is read again, every O(poll_minutes) (two failed
    reads in a row of a server on every link end the verification early). Progress is printed at
    every poll interval in real time, and at every read.
  - A link with an MTA restart pending on its servers (a restart marker in O(state_dir)) is not observed
    (C(pending)) because its changes are not active.
  - A link that no change addressed is not verified.
  - With O(lab_control) (the emulated lab) the waiting advances the lab's emulated clock instead of
    sleeping.
version_added: "0.1.0"
author: fix-xcon maintainers
options:
  diagnosis_file:
    description:
      - The whole diagnosis xcon_diagnose wrote (its result C(diagnosis_file)) - its links and plan.
      - One of O(diagnosis_file) and O(links) is required; they are mutually exclusive.
    type: path
  skip_links:
    description: Ids of links not to verify (those that stopped at a change step).
    type: list
    elements: str
    default: []
  links:
    description: The links from xcon_diagnose, given inline (prefer O(diagnosis_file)).
    type: list
    elements: dict
  plan:
    description: With O(links), the planned changes from xcon_diagnose (which links were changed).
    type: list
    elements: dict
    default: []
  timeout_minutes:
    description: How long to wait.
    type: int
    default: 60
  poll_minutes:
    description: Minutes between observations once the shortest window has passed (and between the reads of a server that could not be read).
    type: int
    default: 5
  settle_minutes:
    description: Minutes after the change during which refusals still in flight are ignored (0 - every refusal after the last change counts).
    type: int
    default: 0
  lab_control:
    description: The lab's control command; when set, waiting advances emulated time.
    type: str
    default: ""
  state_dir:
    description: The toolkit's state directory, where the MTA restart markers are (a pending restart makes a link C(pending)).
    type: path
notes:
  - Check mode - not run (verification C(not_run)).
"""

EXAMPLES = r"""
- name: Prove mail flows again
  xcon_verify:
    diagnosis_file: "{{ xcon_diagnose_result.diagnosis_file }}"
    timeout_minutes: 60
"""

RETURN = r"""
verification:
  description: Per link id - state (passed, failed, not_run) and details (queue, new refusal counts, minutes waited, deliveries).
  returned: always
  type: dict
timeline:
  description:
    - Per verified link id, what the polls read for the report's timeline (xcon.report_timeline.from_polls) -
      C(events) and C(queue) as in report.json's C(links[].timeline), C(reads) (each read's server time and
      controller time) and C(startups) (the MTA startup events 9298 read), which place the run's changes.
    - Each server's events are read from the audit's read on (the link's C(timeline.audit)) - its first read
      from there, each later one from the previous read's time on that server's clock (less a minute,
      profile assumption C(event_read_overlap_seconds)); the links are judged on the union of the reads.
  returned: when a link was verified
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.specs import VERIFY


def main():
    module = AnsibleModule(argument_spec=VERIFY, supports_check_mode=True)
    module.fail_json(msg="xcon_verify runs on the controller as an action plugin; check that ansible.cfg's action_plugins points at this project's action_plugins/")


if __name__ == "__main__":
    main()
