"""The jobs of docs/awx.md as AWX runs them: through ansible_runner.run() (2.4.3, as in the execution
environment), with a private data directory laid out as AWX lays it (tests/integration/awx_job.py):
the project, an inventory script without credentials, env/extravars, env/envvars, env/settings,
and the WinRM password as AWX injects a Machine credential (-u and --ask-pass, the password typed
into ansible-playbook's prompt from env/passwords), against the KB lab.

Each job is checked as AWX would see it: runner's status and rc; one playbook_on_stats event whose
artifact data holds xcon_run_summary (AWX's job artifacts, passed on in a workflow); no task that
started and never ended (a prompt waiting under runner's pseudo-terminal; every job is bounded by
job_timeout and idle_timeout, so a wait shows as status 'timeout'); the report written and named in
the events; and no password of the lab (WinRM, remote MTA) in any event, in runner's stdout or in any
file of the job's artifacts directory, at -vvv too.

One lab for the module: the audit changes nothing (checked), the workflow test runs on from there.
(~1.5 min)
"""

from __future__ import annotations

import json
import os
import re

import pytest

from awx_job import AwxJobs
from conftest import Lab, directory_and_firewalls
from test_no_secrets import _leaks_in, _topology_secrets

SECRETS = _topology_secrets("kb.yml")
NO_OPERATOR = {"xcon_firewall_operator_command": []}  # AWX: nobody at a terminal, no driver


@pytest.fixture(scope="module")
def awx(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("awx-runner"))
    lab.up("kb.yml")
    lab.advance(60)
    try:
        yield AwxJobs(lab, lab.tmp / "awx")
    finally:
        lab.down()


def _leaks(job):
    leaks = _leaks_in(job.stdout.encode("utf-8"), "<runner stdout>", SECRETS)
    for where, text in job.event_texts():
        leaks += _leaks_in(text, where, SECRETS)
    scanned = []
    for path in job.artifact_files():
        scanned.append(os.path.basename(path))
        with open(path, "rb") as handle:
            leaks += _leaks_in(handle.read(), path, SECRETS)
    assert "stdout" in scanned and any(name.endswith(".json") for name in scanned), scanned  # job_events/*.json
    with open(os.path.join(job.dir, "env", "extravars"), "rb") as handle:
        leaks += _leaks_in(handle.read(), "env/extravars", SECRETS)
    return leaks


def _checked(job, status, rc):
    """The checks every job gets; returns its xcon_run_summary."""
    assert SECRETS, "kb.yml names no password: the leak check would prove nothing"
    assert job.status == status and job.rc == rc, job.tail()
    assert job.unfinished_tasks() == [], f"tasks that waited: {job.unfinished_tasks()}\n{job.tail()}"
    summary = job.summary()
    leaks = _leaks(job)
    assert not leaks, "secrets in the job's events or artifacts:\n" + "\n".join(leaks)
    return summary


def _report_named(job, summary):
    """The report exists, and the events name it (the report task's result, the stats' artifacts)."""
    for key in ("report_html", "report_json"):
        assert os.path.isfile(summary[key]), summary
    assert summary["run_id"] in summary["report_html"]
    named = [e for e in job.events if e.get("event") == "runner_on_ok"
             and summary["report_html"] in json.dumps(e["event_data"].get("res", {}))]
    assert named, "no task result names the report"


@pytest.mark.parametrize("console", ["awx", "xcon"])
def test_audit_job_changes_nothing_and_publishes_its_summary(awx, console):
    """runner replaces the stdout callback of ansible.cfg (xcon) with its own, awx_display, built on
    Ansible's default callback - or on the one named by ANSIBLE_STDOUT_CALLBACK in the job's
    environment: with ANSIBLE_STDOUT_CALLBACK=xcon the job output is the project's console, and
    every event is still emitted (no clash between the two)."""
    before = directory_and_firewalls(awx.lab.snapshot())
    env = {"ANSIBLE_STDOUT_CALLBACK": "xcon"} if console == "xcon" else {}
    job = awx.run("fix-xcon.yml", NO_OPERATOR, check=True, verbosity=3 if console == "awx" else 0, env=env)
    summary = _checked(job, "successful", 0)
    assert summary["check_mode"] is True and summary["links_total"] == 1, summary
    assert summary["changes_applied"] == 0 and summary["awaiting_firewall_confirmation"] == [], summary
    _report_named(job, summary)
    assert directory_and_firewalls(awx.lab.snapshot()) == before
    assert "PLAY RECAP" in job.stdout, job.tail()
    assert {"playbook_on_task_start", "runner_on_ok"} <= {e.get("event") for e in job.events}
    if console == "awx":  # Ansible's default output: a banner per task
        assert "TASK [xcon_report : Write the final report]" in job.stdout and "== Audit" not in job.stdout, job.tail()
    else:  # the project's console: a line per phase, the report's path last
        plain = re.sub(r"\x1b\[[0-9;]*m", "", job.stdout)
        assert "== Start the run [check mode]" in plain and "TASK [" not in plain, job.tail()
        assert plain.rstrip().splitlines()[-1] == f"Report: {summary['report_html']}", job.tail()


def test_fix_stops_at_the_firewall_record_resumes_on_approval_and_rolls_back(awx):
    lab = awx.lab
    start = directory_and_firewalls(lab.snapshot())
    first = awx.run("fix-xcon.yml", dict(NO_OPERATOR, xcon_workaround="firewall_tunnel"))
    stopped = _checked(first, "failed", 2)
    assert stopped["awaiting_firewall_confirmation"] == ["EXIN<->EXOUT"] and stopped["check_mode"] is False, stopped
    assert stopped["firewall_records"] and all(os.path.isfile(p) for p in stopped["firewall_records"]), stopped
    _report_named(first, stopped)
    # the record is in the job's output for the approver, once (not repeated in every later failure)
    shown = [e["event_data"]["res"]["msg"][-1] for e in first.events if e.get("event") == "runner_on_ok"
             and e["event_data"].get("task") == "Show the record to carry out (no terminal to ask at)"]
    assert shown == [f"Record: {r[:-len('.txt')]}.json" for r in stopped["firewall_records"]], shown
    # the approval node: the firewall administrator carries out the record(s), then approves
    for record in stopped["firewall_records"]:
        lab.ctl("firewall", "apply", record[:-len(".txt")] + ".json")
    second = awx.run("fix-xcon.yml", dict(NO_OPERATOR, xcon_workaround="firewall_tunnel",
                                          xcon_firewall_change_confirmed=True), verbosity=3)
    resumed = _checked(second, "successful", 0)
    assert resumed["awaiting_firewall_confirmation"] == [] and resumed["worst_status_after"] == "ok", resumed
    assert resumed["changes_applied"] > 0 and resumed["run_id"] != stopped["run_id"], resumed
    _report_named(second, resumed)

    rollback = awx.run("playbooks/rollback.yml", dict(NO_OPERATOR, xcon_rollback_run_id=resumed["run_id"]),
                       verbosity=3)
    fixed = directory_and_firewalls(lab.snapshot())
    undone = _checked(rollback, "failed", 2)
    # the rollback stops at the reverse firewall record, before any connector is touched
    assert undone["rollback_of"] == resumed["run_id"] and undone["awaiting_firewall_confirmation"] == ["FW1"], undone
    assert undone["restored"] == [] and directory_and_firewalls(lab.snapshot()) == fixed, undone
    _rollback_record_named(rollback, undone)
    # a second approval: the administrator carries out the reverse record, the rollback is re-run
    for record in undone["firewall_records"]:
        lab.ctl("firewall", "apply", record[:-len(".txt")] + ".json")
    again = awx.run("playbooks/rollback.yml", dict(NO_OPERATOR, xcon_rollback_run_id=resumed["run_id"],
                                                   xcon_firewall_change_confirmed=True))
    done = _checked(again, "successful", 0)
    assert done["awaiting_firewall_confirmation"] == [] and done["conflicts"] == [] and done["restored"], done
    _rollback_record_named(again, done)
    after = directory_and_firewalls(lab.snapshot())
    assert after["directory"] == start["directory"] and after["firewalls"] == start["firewalls"]


def _rollback_record_named(job, summary):
    with open(summary["report_json"], encoding="utf-8") as handle:
        assert json.load(handle) == summary
    assert any(summary["report_json"] in json.dumps(e["event_data"].get("res", {})) for e in job.events
               if e.get("event") == "runner_on_ok"), "no task result names the rollback's summary file"


def test_the_leak_check_finds_a_password_in_the_events_the_stdout_and_the_artifacts(awx):
    """The leak check can fail: a job that shows the WinRM password (given the wrong way, as the
    extra variable ansible_password, and printed by a task) is caught in env/extravars, in runner's
    stdout, in the job's events and in the artifact files."""
    with open(os.path.join(awx.project, "leak.yml"), "w", encoding="utf-8") as handle:
        handle.write("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                     "    - ansible.builtin.debug:\n        var: ansible_password\n")
    job = awx.run("leak.yml", {}, password_as_extra_var=True)
    assert job.status == "successful", job.tail()
    leaks = _leaks(job)
    for where in ("env/extravars", "<runner stdout>", "runner_on_ok", "/job_events/", "/stdout:"):
        assert any(where in leak for leak in leaks), (where, leaks)
