"""xcon_run_lock: one changing run at a time per state directory (and with it, per report directory).

The kernel holds the lock (xcon.runlock): this action, in a worker, locks ``<state dir>/lock/run.lock``
and hands the descriptor to the ansible-playbook process (callback plugin ``xcon_run_lock``), whose
later workers inherit it; the lock lasts while any process of the run lives.  A run releases it once
its report is written; one that dies first holds nothing, and the next run says whose description
it found.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail

from xcon import runlock
from xcon import state as xstate
from xcon.action import XconAction
from xcon.specs import RUN_LOCK


class ActionModule(XconAction):
    ARGUMENT_SPEC = RUN_LOCK

    def xcon_run(self, args, task_vars):
        state_dir = args.get("state_dir") or xstate.default_state_dir(task_vars.get("ansible_config_file"))
        if args["wait_seconds"] < 0:
            raise AnsibleActionFail(f"wait_seconds must be 0 or more, got {args['wait_seconds']}")
        if args["state"] == "absent":
            released = runlock.release(state_dir, args["run_id"], fd=runlock.held_fd(), pid=os.getppid())
            return {"state_dir": state_dir, "released": released}
        mode = runlock.SHARED if args["shared"] else runlock.EXCLUSIVE
        try:
            # os.getppid(): the worker's parent is the ansible-playbook process (named in the description).
            taken = runlock.acquire(state_dir, args["run_id"], mode, args["wait_seconds"], pid=os.getppid())
        except xstate.StateError as exc:
            raise AnsibleActionFail(str(exc)) from None
        try:
            handed = runlock.hand_over(taken["fd"])
        finally:
            os.close(taken["fd"])  # this worker's copy; the ansible-playbook process has its own now
        if not handed:
            runlock.release(state_dir, args["run_id"], pid=os.getppid())
            raise AnsibleActionFail(
                "the run lock cannot be held for the whole run: the callback plugin xcon_run_lock (callback_plugins/ of this "
                "repository) is not loaded in the ansible-playbook process. Keep 'callback_plugins = callback_plugins' in "
                "ansible.cfg (or add the directory to ANSIBLE_CALLBACK_PLUGINS) and run again. Nothing was read or changed.")
        result = {"state_dir": state_dir, "restart_dir": os.path.dirname(xstate.restart_marker(state_dir, "-")),
                  "lock_file": taken["lock_file"], "description": taken["description"], "mode": mode, "waited": taken["waited"],
                  "stale": taken["stale"], "holder": taken["holder"], "handed_over": True}
        if taken["stale"]:
            result["warnings"] = list(taken["stale"])
        # The run's directories as facts of the lock's host (one task instead of set_fact tasks,
        # each an Ansible task of its own: README "Performance").
        facts = {"xcon_run_state_dir": state_dir, "xcon_run_restart_dir": result["restart_dir"]}
        if args.get("report_dir"):
            root = xstate.report_root(args["report_dir"], task_vars.get("ansible_config_file"))
            facts.update(xcon_run_report_root=root, xcon_run_dir=f"{root}/{args['run_id']}")
        result["ansible_facts"] = facts
        return result
