"""Benchmark aid: the size of the result each task registered (what Ansible copies into the variables
of later tasks, and templates into their arguments when they use it).

Enabled by tests/bench/bench.py --result-sizes only (the bench's smoke test): a callback with a result
hook gets its own copy of every result from ansible-core, which would slow the runs the bench times.
Writes JSON to $XCON_RESULT_SIZES (a list of {task, action, result_bytes}, the largest host result
of each task) when the playbook ends."""
from __future__ import annotations

DOCUMENTATION = r"""
name: xcon_result_sizes
type: aggregate
short_description: Size of each task's largest registered result, as JSON, for the fix-xcon benchmark
description:
  - Records, for each task, the JSON size of the largest result one of its hosts returned; writes the
    list as JSON to the file named by C(XCON_RESULT_SIZES) at the end of the run.
requirements:
  - environment variable XCON_RESULT_SIZES
"""

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "xcon_result_sizes"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._tasks = {}

    def _result(self, result, *args, **kwargs):
        task = result._task
        entry = self._tasks.setdefault(task._uuid, {"task": task.get_name(), "action": task.action, "result_bytes": 0})
        entry["result_bytes"] = max(entry["result_bytes"], len(json.dumps(result._result, default=str)))

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = v2_runner_on_unreachable = _result

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("XCON_RESULT_SIZES")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(list(self._tasks.values()), handle, indent=1)
