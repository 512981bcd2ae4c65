"""Benchmark aid: wall seconds per task (from its start to the start of whatever follows it).

It implements no result hook on purpose: ansible-core hands every callback that implements
v2_runner_on_ok (or another result hook) its own deep copy of each result, stripped and converted,
so a timing callback with such a hook made every measured run slower than an operator's run (one
more copy of the diagnosis, the report, ...).  A task's time therefore runs until the next task,
play or the end of the run starts: the strategy's handling of its results included.  `hosts` counts
the hosts it was started on (v2_runner_on_start: no result, no copy).

Enabled by tests/bench/bench.py (ANSIBLE_CALLBACK_PLUGINS + ANSIBLE_CALLBACKS_ENABLED); writes
JSON to $XCON_TASK_TIMES (a list of {play, task, seconds, hosts, at}) when the playbook ends; `at`
is the task's start in seconds since the epoch, so the bench takes Ansible's own start (launch to
first task) from the measured run itself."""
from __future__ import annotations

DOCUMENTATION = r"""
name: xcon_task_times
type: aggregate
short_description: Wall time per task, as JSON, for the fix-xcon benchmark
description:
  - Records, for each task, the time from its start to the start of the next task, play or the end
    of the run, on how many hosts it started and when it started (seconds since the epoch); writes
    the list as JSON to the file named by C(XCON_TASK_TIMES) at the end of the run.
requirements:
  - environment variable XCON_TASK_TIMES
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "xcon_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._play = None
        self._tasks = []
        self._current = None

    def _close(self):
        if self._current is not None:
            self._current["seconds"] = round(time.monotonic() - self._current.pop("_start"), 3)
            self._tasks.append(self._current)
            self._current = None

    def v2_playbook_on_play_start(self, play):
        self._close()
        self._play = play.get_name()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self._current = {"play": self._play, "task": task.get_name(), "hosts": 0, "at": time.time(), "_start": time.monotonic()}

    def v2_runner_on_start(self, host, task):
        if self._current is not None:
            self._current["hosts"] += 1

    def v2_playbook_on_stats(self, stats):
        self._close()
        path = os.environ.get("XCON_TASK_TIMES")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(self._tasks, handle, indent=1)
