"""The diagnosis travels between tasks by file, not through Ansible (issue 19, README "Performance").

xcon_diagnose writes its whole result - every link with its findings, topology and timeline, the
plan, the servers, the coverage - to ``<run dir>/diagnosis.json`` (atomically, with its ``.sha256``
like the other run files, xcon.state) and registers only what the playbook's own tasks use and the
file's path (``diagnosis_file``).  xcon_verify and xcon_report read the file.  At 100 links the
whole result is about 2 MB: registered, Ansible copied it through its worker queue, its result
processing and the report task's templated arguments, seconds of controller CPU for nothing.
"""

from __future__ import annotations

import os

from xcon import mask as xmask
from xcon import state as xstate

FILE_NAME = "diagnosis.json"

# What the playbook's tasks read from the registered result of xcon_diagnose (roles/xcon_diagnose,
# roles/xcon_verify's condition, playbooks/audit.yml and analyze.yml, the console callback): it
# stays registered (with each link's status, ``link_status``); everything else only in the file,
# the plan's entries by server (``planned``) too: the change tasks read them from here
# (XconAction.planned_changes).
REGISTERED = ("lines", "targets", "mta_services", "target_groups", "preflight_errors", "unreadable_hosts", "workaround_requested",
              "report_paths", "coverage_problems", "audit_at", "diff", "changed")


class DiagnosisFileError(xstate.StateError):
    """The diagnosis file is missing, damaged or was changed after xcon_diagnose wrote it."""


def path(run_dir):
    return os.path.join(run_dir, FILE_NAME)


def write(run_dir, diagnosis):
    """Write the whole diagnosis (secrets masked, as in any result a module returns); return the
    registered result: the keys of REGISTERED that `diagnosis` has, each link's status
    (``link_status``) and ``diagnosis_file``."""
    target = path(run_dir)
    # compact JSON (no indentation: the file is the tool's, and indenting 2 MB took 0.15 s); masking
    # is a second walk of the data only when a secret-like word occurs in it at all
    text = xmask.masked_json_text(diagnosis, ensure_ascii=False, default=str)
    xstate.write_checked_text(target, text + "\n", checksum=True)
    small = {key: diagnosis[key] for key in REGISTERED if key in diagnosis}
    small["link_status"] = {link["id"]: link.get("status") for link in diagnosis.get("links") or []}
    small["diagnosis_file"] = target
    return small


def load(file_path):
    """The whole diagnosis xcon_diagnose wrote to `file_path`, checked against its checksum."""
    try:
        data = xstate.read_verified_json(file_path)
    except xstate.StateError as exc:
        raise DiagnosisFileError(f"the diagnosis of this run cannot be read ({exc}); run the playbook again "
                                 "(xcon_diagnose writes it)") from None
    if not isinstance(data, dict):
        raise DiagnosisFileError(f"{file_path} is not a diagnosis (not a JSON object); run the playbook again")
    return data


def from_options(file_path, diagnosis):
    """The whole diagnosis for xcon_report and xcon_verify: from ``diagnosis_file``, else from a
    ``diagnosis`` dict that names its file (xcon_diagnose's registered result), else that dict itself
    (a whole diagnosis given inline, as before the file existed)."""
    file_path = file_path or (diagnosis or {}).get("diagnosis_file")
    return load(file_path) if file_path else dict(diagnosis or {})


def links_and_plan(args):
    """xcon_verify's links and plan: from ``diagnosis_file`` (or the ``links`` and ``plan`` given
    inline), without the links of ``skip_links`` (those that stopped at a change step)."""
    if args.get("diagnosis_file"):
        diagnosis = load(args["diagnosis_file"])
        links, plan = diagnosis.get("links") or [], diagnosis.get("plan") or []
    else:
        links, plan = args.get("links") or [], args.get("plan") or []
    skip = set(args.get("skip_links") or [])
    return [l for l in links if l.get("id") not in skip], [e for e in plan if e.get("link") not in skip]
