# fix-xcon's console: Ansible's default output, made to fit a run on two screens.
from __future__ import annotations

DOCUMENTATION = """
    name: xcon
    type: stdout
    short_description: fix-xcon's compact console (one line per phase, full failure reasons)
    description:
        - Ansible's default stdout callback with four differences, for operators reading a fix-xcon run.
        - One line per play ("phase") that has hosts, instead of a banner per task; plays that match no host
          print nothing, and tasks that only validate a role's arguments print nothing.
        - Results that changed something print one line each, naming the task (or the loop item); results
          that changed nothing print nothing; the messages of debug tasks print as plain lines.
        - A failure prints once, not also as ansible-core's "[ERROR]" block - its full message, wrapped (never
          cut), with the host, the task and its module; -v prints what the default prints (error block with
          its origin, result dump), -vvv the traceback.
        - Diffs (--diff) and the recap print as with the default callback. With -v or more, everything the
          default callback prints is printed.
        - Text in results (connector names, messages from servers) is printed inert - terminal control and
          bidirectional formatting characters as escapes (e.g. \\x1b, \\u202e), never obeyed.
    extends_documentation_fragment:
      - default_callback
      - result_format_callback
    requirements:
      - set as stdout in configuration (ansible.cfg stdout_callback = xcon)
"""

import functools
import os
import shutil
import sys
import textwrap

from ansible import constants as C
from ansible import context
from ansible.plugins.callback.default import CallbackModule as DefaultCallback
from ansible.playbook.task_include import TaskInclude

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils"))
from xcon.mask import inert_all  # noqa: E402

ARGSPEC_PREFIX = "Validating arguments against arg spec"
# how ansible-core words a module or action that crashed instead of failing with a reason
_CRASHED = ("MODULE FAILURE", "Unexpected failure")
WIDTH = 100


def _width():
    return max(60, min(shutil.get_terminal_size((WIDTH, 24)).columns, 120))


def wrap(text, indent="    "):
    """Every line of `text` wrapped to the terminal width, continuation lines indented; nothing cut."""
    out = []
    for line in str(text).splitlines() or [""]:
        lead = line[:len(line) - len(line.lstrip())]
        out.extend(textwrap.wrap(line, width=_width(), initial_indent="", subsequent_indent=lead + indent,
                                 break_long_words=False, break_on_hyphens=False) or [""])
    return "\n".join(out)


def _raw(result):
    """The task's own result data (ansible-core 2.19: `_return_data`), not read through `result`, which
    makes each callback its own converted deep copy of it; None when this ansible-core has none."""
    raw = getattr(result, "_return_data", None)
    return raw if isinstance(raw, dict) else None


def _loud(self, raw):
    """Something of `raw` prints on the console whatever the result: -v, a warning, a deprecation or an
    exception."""
    return self._verbose() or any(raw.get(k) for k in ("warnings", "deprecations", "exception"))


def _shown(result, raw):
    """The console prints this result (or item): a debug task's message, a change, or a fleet task's
    failed changes."""
    return bool((result.task.action in C._ACTION_DEBUG and "msg" in raw) or raw.get("changed") or raw.get("failed_changes"))


def _silent_ok(self, result):
    """An ok result that prints nothing (as v2_runner_on_ok decides: an include, a loop's result,
    whose items printed themselves, or neither a debug message nor a change): it is not copied."""
    raw = _raw(result)
    if raw is None or _loud(self, raw):
        return False
    task = result.task
    if not (isinstance(task, TaskInclude) or (task.loop and "results" in raw)) and _shown(result, raw):
        return False
    self._remember_report(raw)
    return True


def _silent_item(self, result):
    """A loop item's ok result that prints nothing: it is not copied."""
    raw = _raw(result)
    return raw is not None and not _loud(self, raw) and not _shown(result, raw)


def _inert(method, silent=None):
    """Run the handler on the result with every string in it made inert (xcon.mask.inert): a connector
    named "\\x1b[2J\\x1b[32mALL OK" must not clear the operator's screen and draw green text.
    `silent(self, result)`: True when the handler would print nothing; the result is then neither
    converted nor copied (ansible-core converts a result for each callback that reads `result`, and
    every per-host and per-item result of a fleet run comes through here)."""
    def handler(self, result, *args, **kwargs):
        if silent is not None and silent(self, result):
            return None
        res = result.result
        if isinstance(res, dict):
            clean = inert_all(res)
            res.clear()
            res.update(clean)
        return method(self, result, *args, **kwargs)
    handler.__name__, handler.__doc__ = method.__name__, method.__doc__
    return handler


class CallbackModule(DefaultCallback):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "xcon"

    def __init__(self):
        super().__init__()
        self._pending_play = None
        self._report = None
        self._diffed = None

    def _verbose(self):
        return self._display.verbosity > 0

    # -- phases ---------------------------------------------------------------------------------
    def v2_playbook_on_play_start(self, play):
        if self._verbose():
            return super().v2_playbook_on_play_start(play)
        self._play = play
        name = play.get_name().strip()
        self._pending_play = f"== {name}" + (" [check mode]" if play.check_mode else "")
        return None

    def _phase_line(self):
        if self._pending_play:
            self._display.display(self._pending_play, color=C.COLOR_HIGHLIGHT)
            self._pending_play = None

    def v2_playbook_on_include(self, included_file):
        if self._verbose():
            super().v2_playbook_on_include(included_file)

    def v2_playbook_on_no_hosts_matched(self):
        if self._verbose():
            super().v2_playbook_on_no_hosts_matched()

    def v2_playbook_on_task_start(self, task, is_conditional):
        if self._verbose():
            return super().v2_playbook_on_task_start(task, is_conditional)
        if not task.get_name().strip().startswith(ARGSPEC_PREFIX):
            self._phase_line()
        self._last_task_name = task.get_name().strip()
        return None

    def _print_task_banner(self, task):
        if self._verbose():
            return super()._print_task_banner(task)
        self._last_task_banner = task._uuid
        return None

    # -- results --------------------------------------------------------------------------------
    def _task_label(self, task):
        name = task.get_name().strip()
        return name.split(" : ", 1)[-1]

    @functools.partial(_inert, silent=_silent_ok)
    def v2_runner_on_ok(self, result):
        if self._verbose():
            self._remember_report(result.result)
            return super().v2_runner_on_ok(result)
        task, res = result.task, result.result
        self._remember_report(res)
        self._handle_warnings_and_exception(result)
        if isinstance(task, TaskInclude):
            return None
        if task.loop and "results" in res:
            self._process_items(result)
            return None
        if res.get("fleet_id") and isinstance(res.get("hosts"), dict):
            self._fleet_items(result, res)
            return None
        if task.action in C._ACTION_DEBUG and "msg" in res:
            self._debug(res["msg"])
            return None
        if res.get("changed") and not (context.CLIARGS.get("check") and self._diffed == task._uuid):
            # under --check --diff the diff just shown says what would change
            self._display.display(f"  changed: [{self.host_label(result)}] {self._task_label(task)}", color=C.COLOR_CHANGED)
        return None

    def _fleet_items(self, result, res):
        """A fleet task's changes (xcon_connector with fleet: one task for the play's servers, each
        server's changes as a loop's items under hosts[<host>].results), one line each as a loop's
        items print: the server's own name, the change, and a failure's full reason."""
        for host in res.get("fleet") or sorted(res["hosts"]):
            for item in (res["hosts"].get(host) or {}).get("results") or []:
                entry = item.get("item") if isinstance(item.get("item"), dict) else {}
                label = entry.get("description") or entry.get("id") or item.get("item")
                if item.get("failed"):
                    self._failure(result, item, label, host=host)
                elif item.get("changed"):
                    self._display.display(wrap(f"  changed: [{host}] {label}"), color=C.COLOR_CHANGED)

    def _get_diff(self, difflist):
        # the default ends every diff with an empty line; one run's diffs stay compact without it
        text = super()._get_diff(difflist)
        return "\n".join(line for line in text.splitlines() if line.strip())

    @_inert
    def v2_on_file_diff(self, result):
        self._diffed = result.task._uuid
        return super().v2_on_file_diff(result)

    def _debug(self, msg):
        for line in (msg if isinstance(msg, list) else [msg]):
            self._display.display(wrap(line))

    @functools.partial(_inert, silent=_silent_item)
    def v2_runner_item_on_ok(self, result):
        if self._verbose():
            return super().v2_runner_item_on_ok(result)
        if result.task.action in C._ACTION_DEBUG and "msg" in result.result:
            self._debug(result.result["msg"])
        elif result.result.get("changed"):
            label = self._get_item_label(result.result)
            self._display.display(wrap(f"  changed: [{self.host_label(result)}] {label}"), color=C.COLOR_CHANGED)
        return None

    def _remember_report(self, res):
        for key in ("paths", "report_paths"):
            paths = res.get(key)
            if isinstance(paths, dict) and paths.get("html"):
                self._report = paths["html"]

    def v2_playbook_on_stats(self, stats):
        super().v2_playbook_on_stats(stats)
        if self._report:
            self._display.display(f"Report: {inert_all(self._report)}", color=C.COLOR_HIGHLIGHT)

    @_inert
    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._remember_report(result.result)
        if self._verbose():
            return super().v2_runner_on_failed(result, ignore_errors)
        self._phase_line()
        res = result.result
        # Warnings as usual; the exception is not shown as ansible-core's own "[ERROR]: Task failed: ..."
        # block, which repeats the reason the fatal line below prints (whole, wrapped, with host and
        # module).  -v prints the default's block and result dump, -vvv the traceback.
        self._handle_warnings(res)
        had_exception = bool(res.pop("exception", None))
        if result.task.loop and "results" in res:
            for item in res["results"]:
                if item.get("failed"):
                    self._failure(result, item, self._get_item_label(item))
        else:
            self._failure(result, res, None, traceback=had_exception)
        if ignore_errors:
            self._display.display("  ...ignoring", color=C.COLOR_SKIP)
        return None

    @_inert
    def v2_runner_item_on_failed(self, result):
        if self._verbose():
            return super().v2_runner_item_on_failed(result)
        self._handle_warnings(result.result)
        result.result.pop("exception", None)
        return None  # reported once, with the loop's result (v2_runner_on_failed)

    @staticmethod
    def _reason(res):
        """The failure's own words: msg (the action plugins put the reason and what to do there); when a
        module crashed, msg is only Ansible's "MODULE FAILURE", so the module's stderr follows it."""
        msg = str(res.get("msg") or res.get("reason") or "").strip()
        if res.get("_ansible_no_log"):
            return msg or "failed (output hidden: no_log)"
        detail = next((str(res[k]).strip() for k in ("stderr", "module_stderr", "module_stdout")
                       if str(res.get(k) or "").strip()), "")
        if not msg:
            return detail or "failed"
        if detail and (msg.startswith("MODULE FAILURE") or "non-zero return code" in msg) and detail not in msg:
            return f"{msg}\n{detail}"
        return msg

    def _failure(self, result, res, item, traceback=False, host=None):
        # the full task name (role : task): where it failed; then the module that failed
        what = result.task.get_name().strip() + (f" ({item})" if item else "")
        module = result.task.action
        reason = self._reason(res)
        if traceback and self._display.verbosity < 3 and (res.get("module_stderr") or reason.startswith(_CRASHED)):
            reason += " (-vvv shows the traceback)"  # a crash, not a failure the module explained
        # Ansible's own words ("fatal:", "failed:" for a loop item), which operators and log scrapers know
        word = "failed" if item else "fatal"
        self._display.display(wrap(f"{word}: [{host or self.host_label(result)}] {what} ({module}): {reason}"),
                              color=C.COLOR_ERROR, stderr=self.get_option("display_failed_stderr"))

    @_inert
    def v2_runner_on_unreachable(self, result):
        self._phase_line()
        if self._verbose():
            return super().v2_runner_on_unreachable(result)
        reason = result.result.get("msg", "unreachable")
        self._display.display(wrap(f"fatal: [{self.host_label(result)}]: UNREACHABLE! {reason}"), color=C.COLOR_UNREACHABLE,
                              stderr=self.get_option("display_failed_stderr"))
        return None

    @_inert
    def v2_runner_on_skipped(self, result):
        return super().v2_runner_on_skipped(result)

    @_inert
    def v2_runner_item_on_skipped(self, result):
        return super().v2_runner_item_on_skipped(result)

    @_inert
    def v2_runner_retry(self, result):
        return super().v2_runner_retry(result)
