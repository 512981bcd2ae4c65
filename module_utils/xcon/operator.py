"""Handing a change record to the operator: written as JSON (machine-readable) and text (the steps),
then carried out by an operator command (the lab plays the operator this way), or confirmed by the
operator (a variable for unattended runs, or the play's prompt), or left awaiting. Used by the
firewall records (raptor, guided) and the Exchange Administrator records; the run never trusts a
confirmation: it verifies by observing mail flow."""

from __future__ import annotations

import subprocess

from ansible.errors import AnsibleActionFail

from xcon import state as xstate


def hand_off(record, record_path, text, operator_command=None, confirmed=False):
    """``{"status": applied_by_operator | confirmed | awaiting_operator, "record_path", ...}``."""
    xstate.write_json_atomic(record_path, record)
    with open(record_path[:-5] + ".txt", "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    result = {"record_path": record_path}
    if operator_command:
        proc = subprocess.run(list(operator_command) + [record_path], capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise AnsibleActionFail(f"the operator command failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        return dict(result, status="applied_by_operator", operator_output=proc.stdout.strip()[-2000:])
    return dict(result, status="confirmed" if confirmed else "awaiting_operator")
