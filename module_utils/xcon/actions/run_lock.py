"""xcon_run_lock: one changing run at a time per state directory (and with it, per report directory).

The lock belongs to the ansible-playbook process (the parent of the worker that runs this action).
A run releases it once its report is written; one that is interrupted or crashes first leaves a
lock whose process is gone: the next run sees that, says so, and takes the lock over.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail

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
            return {"state_dir": state_dir, "released": xstate.release_lock(state_dir, args["run_id"], pid=os.getppid())}
        mode = xstate.SHARED if args["shared"] else xstate.EXCLUSIVE
        try:
            # os.getppid(): the worker's parent is the ansible-playbook process, which lives as long as the run.
            taken = xstate.acquire_lock(state_dir, args["run_id"], mode, args["wait_seconds"], pid=os.getppid())
        except xstate.LockBusy as exc:
            raise AnsibleActionFail(str(exc)) from None
        result = {"state_dir": state_dir, "restart_dir": os.path.dirname(xstate.restart_marker(state_dir, "-")), "lock_file": taken["lock_file"], "mode": mode, "waited": taken["waited"],
                  "stale": taken["stale"], "holder": taken["holder"]}
        if taken["stale"]:
            result["warnings"] = list(taken["stale"])
        return result
