"""xcon_validate: every operator variable of the playbook contract checked before anything is read
or changed (type and range: xcon.inputs), and a warning for each host whose WinRM certificate is not
validated.  No connection: it reads variables only."""

from __future__ import annotations

import os

from xcon import inputs
from xcon import role_inputs
from xcon.action import XconAction
from xcon.specs import VALIDATE

WATCHED = tuple(var.name for var in inputs.CONTRACT) + inputs.INTERNAL


class ActionModule(XconAction):
    ARGUMENT_SPEC = VALIDATE

    def xcon_run(self, args, task_vars):
        hostvars = task_vars.get("hostvars", {})
        here = task_vars.get("inventory_hostname", "localhost")
        hosts = [here] + [h for h in args["exchange_hosts"] + args["firewall_hosts"] if h != here]
        values = {host: {name: self.host_var(task_vars, name, host=host) for name in WATCHED} for host in hosts}
        messages = inputs.validate(values, args["root"])
        # The write path's role variables (its roles are imported without argument-spec validation).
        roles = role_inputs.watched(args["root"])
        role_values = {host: {name: self.host_var(task_vars, name, host=host) for name in list(roles) + list(role_inputs.COMPUTED)}
                       for host in hosts}
        messages += role_inputs.validate(role_values, args["root"])
        # each host's variables as host_var read them above (hostvars[host] computes them all again)
        names = {host: list(task_vars) if host == here else list(self._hostvars_of(task_vars, host) or []) for host in hosts}
        messages += inputs.unknown_variables(names, inputs.known_names(args["root"]))
        messages += inputs.duplicate_addresses({host: self.host_var(task_vars, "xcon_server_address", host=host)
                                                for host in args["exchange_hosts"]})
        messages += saved_run_problems(self.host_var(task_vars, "xcon_saved_run_id"), self.host_var(task_vars, "xcon_report_dir"),
                                       args["root"], messages)
        unvalidated = []
        for host in args["exchange_hosts"]:
            endpoint = self.host_var(task_vars, "xcon_management_host", host=host) or host
            if endpoint not in hostvars:
                messages.append(f"xcon_management_host='{endpoint}' (seen by {host}): not a host of the inventory; "
                                "add the management host to the inventory with its WinRM connection variables.")
                continue
            if str(self.host_var(task_vars, "ansible_winrm_server_cert_validation", host=endpoint) or "").strip().lower() == "ignore":
                unvalidated.append(endpoint if endpoint == host else f"{endpoint} (for {host})")
        result = {"checked": sorted(WATCHED + tuple(roles)), "hosts": len(hosts), "problems": messages}
        if unvalidated:
            result["warnings"] = [
                "WinRM certificate validation is OFF (ansible_winrm_server_cert_validation=ignore) for "
                f"{', '.join(sorted(set(unvalidated)))}: nothing proves that these endpoints are your servers, and the "
                "credentials are sent to whoever answers. Give the CA with ansible_winrm_ca_trust_path instead."]
        if messages:
            result.update(failed=True, msg=(f"Nothing was read or changed: {len(messages)} operator value(s) are invalid. "
                                            + " ".join(messages)))
        return result


def saved_run_problems(run_id, report_dir, root, problems):
    """The offline analysis's run must exist with its raw answers: a missing run would otherwise be
    analysed as a site whose hosts were all unreadable, and replace reports/latest."""
    if not run_id or any(p.startswith(("xcon_saved_run_id=", "xcon_report_dir=")) for p in problems):
        return []
    base = report_dir or "reports"
    base = base if os.path.isabs(base) else os.path.join(root, base)
    raw = os.path.join(base, str(run_id), "raw")
    if os.path.isdir(raw):
        return []
    return [f"xcon_saved_run_id='{run_id}': no saved run there ({raw} does not exist); give the id of a run "
            f"that saved its answers (the folders of {base})."]
