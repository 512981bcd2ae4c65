"""The wire's floor of the audit (tests/bench/bench.py, `sizes[N].floor`).

The audit's WinRM commands - for every Exchange host of the inventory, the same one-command batch
the audit sends (`xcon.gather.audit_ops`) - through the project's own client (`xcon.winrm_client`)
from a thread pool in this one process, without Ansible: no play, no worker, no templating, no
diagnosis, no report.  What the audit costs above this is the toolkit's and Ansible's own work.

    .venv/bin/python tests/bench/floor.py INVENTORY [--workers 40]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "module_utils"))

from xcon import gather  # noqa: E402
from xcon import ops as xops  # noqa: E402
from xcon.winrm_client import WinRMClient  # noqa: E402

WORKERS = 40  # ansible.cfg's forks


def exchange_hostvars(inventory):
    """{host: its variables (group `all` vars under the host's own)} of group xcon_exchange."""
    import yaml  # ansible's dependency, in the venv

    with open(inventory, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)["all"]
    common = data.get("vars") or {}
    hosts = (data["children"]["xcon_exchange"].get("hosts") or {})
    return {name: dict(common, inventory_hostname=name, **(values or {})) for name, values in hosts.items()}


def prepare(name, variables):
    """(client, ops) of one host's audit command, as xcon_connector_info builds it."""
    server = variables.get("xcon_server_name") or name
    profile = gather.get_profile(variables.get("xcon_exchange_version", "5.5"))
    ops = gather.audit_ops(server, profile, variables.get("xcon_ldap_port"), variables.get("xcon_organization"),
                           evidence_window_minutes=int(variables.get("xcon_evidence_window_minutes", 120)),
                           site=variables.get("xcon_site"))
    return WinRMClient(variables), ops


def read_one(client, ops):
    """One host's audit command on the wire; the number of ops answered."""
    return len(xops.run_ops(client, ops))


def measure(inventory, workers=WORKERS):
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader()  # the client resolves settings through Ansible's winrm connection plugin
    # The settings are resolved before the clock starts, one host after the other (Ansible's plugin
    # loader is not thread-safe): what is timed is the wire work only.
    commands = [prepare(name, variables) for name, variables in exchange_hostvars(inventory).items()]
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        answered = list(pool.map(lambda item: read_one(*item), commands))
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "hosts": len(commands), "workers": workers, "commands": len(answered), "ops_answered": sum(answered)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inventory")
    parser.add_argument("--workers", type=int, default=WORKERS)
    cli = parser.parse_args()
    print(json.dumps(measure(cli.inventory, cli.workers), indent=2))
