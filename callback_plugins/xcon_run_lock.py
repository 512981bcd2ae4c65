"""Callback plugin xcon_run_lock: keeps fix-xcon's run lock in the ansible-playbook process.

Not an output plugin: it is always loaded (CALLBACK_NEEDS_ENABLED False) beside whichever stdout
callback is in use.  Before any worker is forked it opens the socket over which the xcon_run_lock
action (in a worker) hands it the locked file's descriptor (module_utils/xcon/runlock.py); it then
keeps that descriptor, so that every worker forked afterwards inherits it and the kernel's lock
lasts while any process of the run is alive, and closes it when the run releases the lock.
"""

from __future__ import annotations

import os
import sys

from ansible.plugins.callback import CallbackBase

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils"))
from xcon import runlock  # noqa: E402

DOCUMENTATION = """
name: xcon_run_lock
type: aggregate
short_description: holds fix-xcon's run lock in the ansible-playbook process
description:
  - Receives the run lock's descriptor from the xcon_run_lock action and keeps it for the run, so
    the lock lasts while any process of the run (the main process or a worker) is alive.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "xcon_run_lock"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._receiving, self._sending = runlock.open_channel()
        self._held = None

    def v2_runner_on_ok(self, result):
        if result._task.action not in ("xcon_run_lock", "ansible.legacy.xcon_run_lock"):
            return
        if result._result.get("handed_over"):
            fd = runlock.take_over(self._receiving)
            if fd is not None:
                if self._held is not None:
                    os.close(self._held)
                self._held = fd
        elif "released" in result._result and self._held is not None:
            os.close(self._held)
            self._held = None
            os.environ.pop(runlock.HELD_ENV, None)
