"""The console callback (callback_plugins/xcon.py) without a playbook run: its documentation is YAML that
Ansible can load (a colon in a sentence once broke every run), and a failure's reason is the failure's own
words - a crashed module's stderr after Ansible's generic "MODULE FAILURE", nothing of a no_log result.
Costs well under a second."""

from __future__ import annotations

import functools
import importlib.util
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _callback():
    spec = importlib.util.spec_from_file_location("xcon_console", os.path.join(ROOT, "callback_plugins", "xcon.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_documentation_loads():
    doc = yaml.safe_load(_callback().DOCUMENTATION)
    assert doc["name"] == "xcon" and all(isinstance(line, str) for line in doc["description"])


def test_a_failure_reason_is_the_failure_own_words():
    reason = _callback().CallbackModule._reason
    assert reason({"msg": "XCON-ACCESS-DENIED: the account cannot write. Grant it ..."}).startswith("XCON-ACCESS-DENIED")
    crashed = reason({"msg": "MODULE FAILURE: See stdout/stderr for the exact error", "module_stderr": "KeyError: 'dn'"})
    assert crashed.endswith("KeyError: 'dn'"), crashed
    hidden = reason({"msg": "the output has been hidden due to the fact that 'no_log: true' was specified for this result",
                     "module_stderr": "password=secret", "_ansible_no_log": True})
    assert "secret" not in hidden


def test_text_in_results_is_printed_inert():
    """Issue 22, case 9: a connector name with terminal escapes or a right-to-left override is shown as
    escapes, never obeyed (lists and keys too); line feeds and tabs stay."""
    seen = []

    class Result:
        result = {"msg": ["EXIN: TO-OUTSIDE\x1b[2J\x1b[32mALL OK\tx\ny", "\u202eKO"], "key\x07": {"deep": "\x9b31m"}}

    class Console(_callback().CallbackModule):
        def __init__(self):  # no Ansible display needed
            pass

        def v2_runner_on_ok(self, result):
            seen.append(result.result)

    Console.v2_runner_on_ok = _callback()._inert(Console.v2_runner_on_ok)
    Console().v2_runner_on_ok(Result())
    assert seen == [{"msg": ["EXIN: TO-OUTSIDE\\x1b[2J\\x1b[32mALL OK\tx\ny", "\\u202eKO"], "key\\x07": {"deep": "\\x9b31m"}}]


def test_a_result_that_prints_nothing_is_not_copied_and_one_that_prints_is_inert():
    """Issue 19: ansible-core converts and copies a result for each callback that reads `result`; the
    console reads the task's own data first and converts only a result it prints."""
    module = _callback()
    seen = []

    class Task:
        action, loop = "xcon_connector", None

    class Result:
        task = Task()

        def __init__(self, raw):
            self._return_data = raw

        @functools.cached_property
        def result(self):  # as ansible-core's: converted once per callback, on first read
            seen.append("converted")
            return dict(self._return_data)

    class Console(module.CallbackModule):
        def __init__(self):  # no Ansible display needed
            self._report = None

        def _verbose(self):
            return False

        def shown(self, result):
            seen.append(result.result)

    silent_ok = module._inert(Console.shown, silent=module._silent_ok)
    silent_ok(Console(), Result({"changed": False, "report_paths": {"html": "/r/x.html"}}))
    assert seen == []
    for raw in ({"changed": True}, {"changed": False, "warnings": ["w"]}, {"exception": "Traceback"}):
        silent_ok(Console(), Result(raw))
    assert [s for s in seen if isinstance(s, dict)] == [{"changed": True}, {"changed": False, "warnings": ["w"]},
                                                       {"exception": "Traceback"}], seen
    Task.loop = ["a"]  # a loop's own result: its items printed themselves
    silent_ok(Console(), Result({"changed": True, "results": [{"changed": True}]}))
    assert len(seen) == 6, seen
    Task.loop = None
    silent_item = module._inert(Console.shown, silent=module._silent_item)
    seen.clear()
    silent_item(Console(), Result({"changed": False, "item": {"id": "x"}}))
    assert seen == []
    silent_item(Console(), Result({"changed": True, "item": "\x1b[2J"}))
    assert seen[-1] == {"changed": True, "item": "\\x1b[2J"}
    Task.action = "debug"
    silent_item(Console(), Result({"msg": "x"}))
    assert seen[-1] == {"msg": "x"}


def test_a_fleet_tasks_changes_print_one_line_each_naming_their_server():
    """Issue 19: one task changes every server of a play (xcon_connector fleet); the console still
    prints each change on its own line with its own server, and each failure with its full reason."""
    module = _callback()
    lines = []

    class Display:
        verbosity = 0

        def display(self, msg, **kwargs):
            lines.append(" ".join(msg.split()))

    class Task:
        action, loop = "xcon_connector", None

        def get_name(self):
            return "xcon_change : Apply each server's planned changes"

    class Host:
        def get_name(self):
            return "EXIN"

    class Result:
        task, host = Task(), Host()
        _return_data = {"changed": True, "fleet_id": "f1", "fleet": ["EXIN", "EXOUT"], "hosts": {
            "EXIN": {"results": [{"changed": True, "item": {"id": "L#2", "description": "EXIN: TO-OUTSIDE\x1b[2J: stack"}}]},
            "EXOUT": {"results": [{"failed": True, "msg": "XCON-ACCESS-DENIED: denied. What to do: grant it",
                                   "item": {"id": "L#3", "description": "EXOUT: TO-INSIDE: stack"}}]}},
            "failed_changes": {"L#3": "denied"}}

        @functools.cached_property
        def result(self):
            return dict(self._return_data)

    class Console(module.CallbackModule):
        def __init__(self):  # no Ansible display needed
            self._display, self._report, self._diffed = Display(), None, None

        def get_option(self, name):
            return False

        def _handle_warnings_and_exception(self, result):
            pass

    Console().v2_runner_on_ok(Result())
    assert lines == ["changed: [EXIN] EXIN: TO-OUTSIDE\\x1b[2J: stack",
                     "failed: [EXOUT] xcon_change : Apply each server's planned changes (EXOUT: TO-INSIDE: stack) (xcon_connector): "
                     "XCON-ACCESS-DENIED: denied. What to do: grant it"], lines


def test_the_run_freezes_its_heap_before_forking_workers():
    """Issue 19: the always-loaded callback xcon_run_lock moves the main process's objects to the
    permanent generation at the playbook's and each play's start, so that forked workers do not
    walk (and copy) them in their own collections."""
    import gc

    spec = importlib.util.spec_from_file_location("xcon_run_lock_cb", os.path.join(ROOT, "callback_plugins", "xcon_run_lock.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    gc.unfreeze()
    try:
        module.CallbackModule.v2_playbook_on_start(None, None)
        frozen = gc.get_freeze_count()
        assert frozen > 0
        kept = [[] for _ in range(10)]  # containers: tracked by the collector
        module.CallbackModule.v2_playbook_on_play_start(None, None)
        assert gc.get_freeze_count() >= frozen + len(kept)
    finally:
        gc.unfreeze()
