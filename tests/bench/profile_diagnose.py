"""Time (and profile) the diagnosis and the report of a real run, without Ansible (README "Performance").

Takes what an audit left - its run directory (the per-host audit results in audit/, the firewall
facts in plan.json) and its inventory (addresses, FQDNs, versions) - and runs exactly what
xcon_diagnose runs after it has its inputs (`diagnose_and_report`: diagnose, plan, report.json,
report.html, plan.json) into a scratch directory, `--repeat` times; prints the median seconds and
the report's sizes.  `--profile` runs it once under pyinstrument (pinned in requirements.txt) instead.

    .venv/bin/python tests/bench/profile_diagnose.py RUN_DIR INVENTORY [--repeat 5] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "module_utils"))

from xcon import audit_results  # noqa: E402
from xcon.actions import diagnose as xdiagnose  # noqa: E402


def inputs(run_dir, inventory):
    """(servers, firewalls) as xcon_diagnose builds them for the run's hosts."""
    import yaml  # ansible's dependency, in the venv

    with open(inventory, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)["all"]
    common = data.get("vars") or {}
    hosts = data["children"]["xcon_exchange"].get("hosts") or {}
    servers = {}
    for host, values in hosts.items():
        variables = dict(common, **(values or {}))
        path = os.path.join(run_dir, "audit", f"{host}.json")
        audit = audit_results.load_result_file({"result_file": path})
        name = str(variables.get("xcon_server_name") or host)
        servers[name] = audit_results.server_entry(name, host, audit, lambda var, default=None, v=variables: v.get(var, default))
    return servers, xdiagnose.saved_firewalls(run_dir)


def once(servers, firewalls, scratch, check_mode=True):
    args = {"queue_threshold": 10, "reverse_connector_name": "", "address_type": "ip", "firewall_changes_possible": True,
            "transparency_off_acknowledged": False, "workaround": "auto", "exchange_hosts": [], "state_dir": None,
            "run_id": "profile", "run_dir": os.path.join(scratch, "profile"), "saved_run_dir": None}
    start = time.perf_counter()
    result = xdiagnose.diagnose_and_report(servers, firewalls, args, check_mode, "profile")
    return time.perf_counter() - start, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("inventory")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="one run under pyinstrument; prints its call tree")
    cli = parser.parse_args(argv)
    servers, firewalls = inputs(cli.run_dir, cli.inventory)
    scratch = tempfile.mkdtemp(prefix="xcon-profile-")
    if cli.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        once(servers, firewalls, scratch)
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        return 0
    times = []
    for _ in range(cli.repeat):
        seconds, result = once(servers, firewalls, scratch)
        times.append(seconds)
    paths = result["report_paths"]
    print(json.dumps({"links": len(result["link_status"]), "seconds_median": round(statistics.median(times), 3),
                      "seconds_all": [round(t, 3) for t in times], "load_avg_1m": round(os.getloadavg()[0], 2),
                      "report_json_bytes": os.path.getsize(paths["json"]), "report_html_bytes": os.path.getsize(paths["html"])}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
