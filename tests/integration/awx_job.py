"""A job as AWX runs it: ansible_runner.run() on a private data directory laid out as AWX lays it.

AWX (awx/main/tasks/jobs.py, RunJob) builds, for each job, a private data directory with:

* ``project/``: the synced SCM project (here: a copy of the repository's files, without tests/);
  ansible-playbook runs there, so the project's ansible.cfg is found as ./ansible.cfg.
* ``inventory/hosts``: an executable script that prints the inventory as JSON (groups, their
  vars and children, ``_meta.hostvars``), without the Machine credential's user and password.
* ``env/extravars``: the job template's extra variables, survey answers and AWX's ``awx_*`` meta
  variables (YAML).
* ``env/cmdline``: ``--check`` for a Check job, ``--diff``, ``-u USER`` of the Machine credential,
  ``--ask-pass`` when it has a password, ``-v``..., ``--vault-id``/``--ask-vault-pass``.
* ``env/passwords``: the answers to the prompts ``--ask-pass`` makes ansible-playbook print
  (``SSH password:``, ``Password:``), keyed by AWX's own patterns: a Machine credential's password
  is typed into ansible-playbook's prompt by runner's pexpect, never put in a variable, so it is in
  no extra var and no environment variable (AWX documentation, "Understanding How Credentials Work":
  "AWX handles those by responding directly to the password prompt").
* ``env/envvars``: AWX's job environment (JOB_ID, INVENTORY_ID, PROJECT_REVISION, AWX_HOST,
  MAX_EVENT_RES, ANSIBLE_ROLES_PATH / ANSIBLE_COLLECTIONS_PATH computed from ansible.cfg).
* ``env/settings``: ``job_timeout``, ``idle_timeout``, ``suppress_ansible_output``.

runner then runs ansible-playbook under pexpect (a pseudo-terminal), with its own stdout callback
(``awx_display``) and event stream, and keeps the job's artifacts in ``artifacts/<ident>/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess

import ansible_runner
import yaml

from conftest import BIN, ROOT

# AWX's answers to the prompts of --ask-pass (RunJob.get_password_prompts), both for the Machine
# credential's password.
SSH_PASSWORD_PROMPTS = (r"SSH password:\s*?$", r"Password:\s*?$")
# Events that end a task started on a host (runner_on_start); a task without one waited.
TASK_END_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable",
                   "runner_on_async_failed")


def copy_project(dest):
    """The SCM project as AWX's project sync leaves it: the repository's files (not tests/)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in listed:
        src, target = os.path.join(ROOT, rel), os.path.join(dest, rel)
        if rel.startswith("tests/") or not (os.path.islink(src) or os.path.isfile(src)):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(src):  # git keeps symbolic links as links (playbooks/callback_plugins)
            os.symlink(os.readlink(src), target)
        else:
            shutil.copy2(src, target)
    return dest


def _walk(name, group, data, credential):
    entry = data.setdefault(name, {})
    if group.get("vars"):
        entry["vars"] = dict(group["vars"])
    if group.get("hosts"):
        entry["hosts"] = sorted(group["hosts"])
        for host, hostvars in group["hosts"].items():
            hostvars = dict(hostvars or {})
            for key, field in (("ansible_user", "username"), ("ansible_password", "password")):
                if key in hostvars:
                    credential.setdefault(field, set()).add(hostvars.pop(key))
            data["_meta"]["hostvars"][host] = hostvars
    if group.get("children"):
        entry["children"] = sorted(group["children"])
        for child, child_group in group["children"].items():
            _walk(child, child_group or {}, data, credential)


def awx_inventory(lab_inventory, dest):
    """Write the lab's inventory as AWX's inventory script; return the Machine credential
    (username, password) taken out of it (the lab gives every WinRM host the same account)."""
    with open(lab_inventory, encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    data, credential = {"_meta": {"hostvars": {}}}, {}
    _walk("all", inventory["all"], data, credential)
    assert len(credential.get("username", ())) == 1 and len(credential.get("password", ())) == 1, credential
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "w", encoding="utf-8") as handle:
        handle.write("#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(data))
    os.chmod(dest, 0o700)
    return next(iter(credential["username"])), next(iter(credential["password"]))


@contextlib.contextmanager
def _job_process_environment():
    """The environment runner starts from (it copies os.environ): the execution environment's,
    i.e. no ANSIBLE_* of the test run (ANSIBLE_CONFIG would point past the project's ansible.cfg),
    and ansible-playbook of this virtualenv first on PATH."""
    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith("ANSIBLE_")]:
            del os.environ[key]
        os.environ["PATH"] = BIN + os.pathsep + saved.get("PATH", "")
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Job:
    """One finished job: runner's result, its events and artifacts."""

    def __init__(self, runner, private_data_dir):
        self.runner, self.dir = runner, private_data_dir
        self.status, self.rc = runner.status, runner.rc
        self.events = list(runner.events)
        self.artifacts = runner.config.artifact_dir
        with open(os.path.join(self.artifacts, "stdout"), encoding="utf-8", errors="replace") as handle:
            self.stdout = handle.read()

    def stats_events(self):
        return [e for e in self.events if e.get("event") == "playbook_on_stats"]

    def summary(self):
        """xcon_run_summary from the one playbook_on_stats event (AWX: the job's artifacts)."""
        stats = self.stats_events()
        assert len(stats) == 1, [e.get("event") for e in self.events][-20:]
        return stats[0]["event_data"]["artifact_data"]["xcon_run_summary"]

    def unfinished_tasks(self):
        """(host, task) of every task started on a host that never ended: it waited for something."""
        started = {(e["event_data"].get("host"), e["event_data"].get("task_uuid")): e["event_data"].get("task")
                   for e in self.events if e.get("event") == "runner_on_start"}
        for e in self.events:
            if e.get("event") in TASK_END_EVENTS:
                started.pop((e["event_data"].get("host"), e["event_data"].get("task_uuid")), None)
        return sorted((host or "", task or "") for (host, _), task in started.items())

    def tail(self, chars=6000):
        return f"status {self.status} rc {self.rc}\n" + self.stdout[-chars:]

    def event_texts(self):
        """Everything the job's events carry, as AWX stores them: each event as JSON."""
        return [(f"event {e.get('counter')} {e.get('event')}", json.dumps(e).encode("utf-8")) for e in self.events]

    def artifact_files(self):
        for base, _dirs, files in os.walk(self.artifacts):
            for name in sorted(files):
                yield os.path.join(base, name)


class AwxJobs:
    """Launches jobs of one AWX project against one lab: each job gets its own private data dir."""

    def __init__(self, lab, base_dir):
        self.lab, self.base = lab, str(base_dir)
        self.project = copy_project(os.path.join(self.base, "project-sync"))
        self.count = 0

    def extravars(self, **values):
        """AWX's extra vars file: the job template's and survey's variables, and AWX's meta variables."""
        extra = {"xcon_report_dir": self.lab.reports, "xcon_state_dir": f"{self.lab.tmp}/state",
                 "awx_job_id": self.count, "tower_job_id": self.count, "awx_job_launch_type": "workflow",
                 "awx_user_name": "operator", "awx_project_revision": "0" * 40}
        extra.update(values)
        return extra

    def run(self, playbook, extravars, *, check=False, diff=True, verbosity=0, timeout=600, idle_timeout=180, env=None,
            password_as_extra_var=False):
        """One job; `env`: AWX's "Extra Environment Variables" (settings AWX_TASK_ENV).
        `password_as_extra_var`: the wrong way, for the leak check's own test - the WinRM password as
        the extra variable ansible_password (a custom credential type injecting it into extra_vars)."""
        self.count += 1
        pdd = os.path.join(self.base, f"job{self.count}")
        os.makedirs(os.path.join(pdd, "env"))
        shutil.copytree(self.project, os.path.join(pdd, "project"), symlinks=True)
        inventory = os.path.join(pdd, "inventory", "hosts")
        user, password = awx_inventory(self.lab.inventory, inventory)
        if password_as_extra_var:
            extravars, prompted = dict(extravars, ansible_password=password), []
        else:
            prompted = ["--ask-pass"]
        args = (["--check"] if check else []) + ["-u", user] + prompted + (["--diff"] if diff else [])
        args += ["--forks=5"] + ([f"-{'v' * verbosity}"] if verbosity else [])
        files = {
            "extravars": yaml.safe_dump(self.extravars(**extravars)),
            "cmdline": " ".join(shlex.quote(a) for a in args),
            "passwords": json.dumps({prompt: password for prompt in SSH_PASSWORD_PROMPTS} if prompted else {}),
            "envvars": json.dumps(dict(self._envvars(pdd), **(env or {}))),
            "settings": json.dumps({"job_timeout": timeout, "idle_timeout": idle_timeout,
                                    "suppress_ansible_output": True, "suppress_output_file": False}),
        }
        for name, text in files.items():
            with open(os.path.join(pdd, "env", name), "w", encoding="utf-8") as handle:
                handle.write(text)
        with _job_process_environment():
            runner = ansible_runner.run(private_data_dir=pdd, playbook=playbook, inventory=inventory,
                                        ident=str(self.count), quiet=True)
        return Job(runner, pdd)

    def _envvars(self, pdd):
        """AWX's job environment (RunJob.build_env), and the lab's state dir (for the lab's tools)."""
        roles = os.pathsep.join(["/runner/requirements_roles", "roles", "~/.ansible/roles", "/usr/share/ansible/roles",
                                 "/etc/ansible/roles"])
        collections = os.pathsep.join(["/runner/requirements_collections", "~/.ansible/collections",
                                       "/usr/share/ansible/collections"])
        return {"JOB_ID": str(self.count), "INVENTORY_ID": "1", "PROJECT_REVISION": "0" * 40,
                "ANSIBLE_RETRY_FILES_ENABLED": "False", "MAX_EVENT_RES": "700000", "AWX_HOST": "https://awx.example",
                "AWX_PRIVATE_DATA_DIR": pdd, "ANSIBLE_ROLES_PATH": roles, "ANSIBLE_COLLECTIONS_PATH": collections,
                "XCONLAB_STATE_DIR": self.lab.state_dir}
