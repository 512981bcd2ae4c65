"""Callback plugin xcon_run_lock: what a fix-xcon run must do in the ansible-playbook process itself.

Not an output plugin: it is always loaded (CALLBACK_NEEDS_ENABLED False) beside whichever stdout
callback is in use.

* The run lock (module_utils/xcon/runlock.py).  Before any worker is forked it opens the socket over
  which the xcon_run_lock action (in a worker) hands it the locked file's descriptor; it keeps that
  descriptor, so every worker forked afterwards inherits it and the kernel's lock lasts while any
  process of the run is alive, and closes it when the run releases the lock.
* The final report of an interrupted run (module_utils/xcon/interrupted.py).  SIGTERM is handled as
  ansible-core handles SIGINT (the workers are told, the run unwinds and waits for them) instead of
  killing the process on the spot; at exit, unless the final report was written, the run's report is
  rewritten from its records: what was applied, what may have been, no verification.  SIGKILL cannot
  be handled: the next run finds the open transaction (module_utils/xcon/open_transactions.py).
* Workers forked from a frozen heap.  At the start of the playbook (after one collection) and of each
  play, every object the process holds is moved to the garbage collector's permanent generation
  (gc.freeze): a worker forked afterwards no longer walks, and so copies, the main process's heap
  in its own collections, and the main process no longer walks it either.  A 10-link audit: 2.9-3.2 s
  before, 2.7 s after; a 100-link fix: 36.8 s before, 35.0 s after.  Cyclic garbage made before a
  play starts is not collected; objects are still freed when their last reference goes.
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import sys

from ansible.plugins.callback import CallbackBase

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils"))
from xcon import interrupted, runlock  # noqa: E402

DOCUMENTATION = """
name: xcon_run_lock
type: aggregate
short_description: holds fix-xcon's run lock and writes the final report of an interrupted run
description:
  - Receives the run lock's descriptor from the xcon_run_lock action and keeps it for the run, so
    the lock lasts while any process of the run (the main process or a worker) is alive.
  - On SIGINT or SIGTERM the run unwinds (its workers are told and waited for) and, at exit, its
    report is rewritten from the run's records - what was applied, what may have been, no verification.
"""


# the actions whose results this callback reads (v2_runner_on_ok)
WATCHED = frozenset(("xcon_run_lock", "xcon_diagnose", "xcon_link_gate", "xcon_report"))


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "xcon_run_lock"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._receiving, self._sending = runlock.open_channel()
        self._held = None
        self._signal = self._run_dir = self._state_dir = None
        self._rerun, self._final = "", False
        self._on_signals()
        atexit.register(self._at_exit)

    # -- workers forked from a frozen heap --------------------------------------------------------
    def v2_playbook_on_start(self, playbook):
        gc.collect()
        gc.freeze()

    def v2_playbook_on_play_start(self, play):
        gc.freeze()

    # -- the run lock ----------------------------------------------------------------------------
    def _lock_result(self, res):
        if res.get("handed_over"):
            fd = runlock.take_over(self._receiving)
            if fd is not None:
                if self._held is not None:
                    os.close(self._held)
                self._held = fd
            self._state_dir = res.get("state_dir")
        elif "released" in res and self._held is not None:
            os.close(self._held)
            self._held = None
            os.environ.pop(runlock.HELD_ENV, None)

    def v2_runner_on_ok(self, result):
        # Only four actions matter here, and a few keys of their results: ansible-core makes each
        # callback its own converted copy of a result when it first reads `result` (for the
        # diagnosis, about 5 KB per link), so this callback reads the task's own result data when
        # ansible-core has it (2.19: `_return_data`), and never copies another task's.
        action = result._task.action.rsplit(".", 1)[-1]
        if action not in WATCHED:
            return
        res = getattr(result, "_return_data", None)
        if not isinstance(res, dict):
            res = result._result
        if action == "xcon_run_lock":
            self._lock_result(res)
        elif action == "xcon_diagnose" and (res.get("report_paths") or {}).get("json"):
            self._run_dir = os.path.dirname(res["report_paths"]["json"])
        elif action == "xcon_link_gate" and res.get("rerun_command"):
            self._rerun = res["rerun_command"]
        elif action == "xcon_report" and res.get("paths"):
            self._final = True

    # -- the final report of an interrupted run --------------------------------------------------
    def _on_signals(self):
        # ansible-core's task queue manager has installed its handlers by now: for SIGINT it tells the
        # workers and raises KeyboardInterrupt (the run unwinds and waits for them); for SIGTERM it kills
        # this process at once.  Both become the first, after noting which signal came.
        unwind = signal.getsignal(signal.SIGINT)
        if not callable(unwind):
            return

        def handler(signum, frame):
            self._signal = self._signal or signal.Signals(signum).name
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second one ends the run at once, as a second Ctrl-C does
            return unwind(signal.SIGINT, frame)

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def _at_exit(self):
        if not self._signal or not self._run_dir or self._final:
            return
        try:
            paths = interrupted.final_report(self._run_dir, self._signal, self._state_dir, self._rerun)
        except Exception as exc:  # the process is ending: say why the report could not be written
            self._display.error(f"fix-xcon: the run was interrupted ({self._signal}) and its final report could not be written: {exc}")
            return
        if paths:
            self._display.display(f"fix-xcon: interrupted ({self._signal}); the report says what was applied: {paths.get('html')}",
                                  stderr=True)
