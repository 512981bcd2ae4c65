#!/usr/bin/python
# -*- coding: utf-8 -*-
# fix-xcon: documented face of the xcon_run_lock module; the work is done on the controller by
# action_plugins/xcon_run_lock.py.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xcon_run_lock
short_description: Take or release the fix-xcon run lock of a state directory
description:
  - One run that changes servers (C(fix-xcon.yml) without C(--check), C(playbooks/rollback.yml)) at a
    time per state directory; a second one waits up to O(wait_seconds), then fails naming the
    holder's run id, controller host and pid.
  - With O(shared=true) (a C(--check) audit) the lock is shared - audits run side by side, but never
    beside a changing run (they would report a half-changed site and replace C(reports/latest)).
  - The kernel holds the lock - C(fcntl.flock) on C(<state_dir>/lock/run.lock). The action locks it in
    its worker and hands the descriptor to the ansible-playbook process (callback plugin
    C(xcon_run_lock), loaded from this repository's C(callback_plugins/)), so every later worker
    inherits it - the lock lasts while any process of the run (the main process or a worker) lives
    and no longer. A run that died holds nothing, whatever its files say.
  - Beside it, C(exclusive.json) and C(shared-<run>-<pid>.json) only describe the holders (run id,
    controller, pid, since) for messages. A description left by a run that ended without releasing
    the lock is reported and removed by the next run; damaged content is named, never trusted.
version_added: "0.1.0"
author: fix-xcon maintainers
options:
  run_id:
    description: The run that takes or releases the lock.
    type: str
    required: true
  state:
    description: C(present) takes the lock, C(absent) releases this run's lock.
    type: str
    default: present
    choices: [present, absent]
  state_dir:
    description: The toolkit's state directory (C(xcon_state_dir)). Default - C(reports/state) beside ansible.cfg.
    type: path
  shared:
    description: Take the lock shared (a C(--check) audit) rather than exclusive.
    type: bool
    default: false
  wait_seconds:
    description: How long to wait for another run to finish; 0 fails at once.
    type: int
    default: 0
  report_dir:
    description:
      - The reports directory (C(xcon_report_dir)); a relative one is beside ansible.cfg.
      - With it, taking the lock also sets the run's report facts (RV(ansible_facts)).
    type: str
notes:
  - Check mode - supported; the lock is taken and released in check mode too (it is controller state,
    not a change to any server).
  - Diff - not applicable.
"""

EXAMPLES = r"""
- name: One changing run at a time
  xcon_run_lock:
    run_id: "{{ xcon_run_id }}"
    shared: "{{ ansible_check_mode }}"
    wait_seconds: 300
  check_mode: false

- name: Release it at the end
  xcon_run_lock:
    run_id: "{{ xcon_run_id }}"
    state: absent
  check_mode: false
"""

RETURN = r"""
state_dir:
  description: The state directory whose lock was taken or released (the default filled in).
  returned: always
  type: str
restart_dir:
  description: Where the per-server MTA restart markers of this state directory live.
  returned: when taken
  type: str
lock_file:
  description: The locked file (C(<state_dir>/lock/run.lock)).
  returned: when taken
  type: str
mode:
  description: C(exclusive) or C(shared).
  returned: when taken
  type: str
waited:
  description: Seconds spent waiting for other runs.
  returned: when taken
  type: float
stale:
  description: Descriptions left by runs that ended without releasing the lock, each with its holder.
  returned: when taken
  type: list
  elements: str
description:
  description: This run's description of itself beside the lock.
  returned: when taken
  type: str
holder:
  description: What this run wrote into its description (run id, mode, host, pid, since).
  returned: when taken
  type: dict
released:
  description: Whether this run's lock was released.
  returned: when released
  type: bool
ansible_facts:
  description:
    - When taken - C(xcon_run_state_dir) (RV(state_dir)) and C(xcon_run_restart_dir) (RV(restart_dir));
      with O(report_dir) also C(xcon_run_report_root) (the reports directory, absolute) and
      C(xcon_run_dir) (C(<report root>/<run_id>), where the run writes).
  returned: when taken
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.xcon.specs import RUN_LOCK


def main():
    module = AnsibleModule(argument_spec=RUN_LOCK, supports_check_mode=True)
    module.fail_json(msg="xcon_run_lock runs on the controller as an action plugin; check that ansible.cfg's action_plugins points at this project's action_plugins/")


if __name__ == "__main__":
    main()
