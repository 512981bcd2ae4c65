#!/usr/bin/env python3
"""fix-xcon benchmark (`make bench`; README "Performance").

For each N (links; 2N Exchange hosts): generate an N-link KB topology (`xconlab generate N`), start
a fresh lab (own XCONLAB_STATE_DIR, fresh inventory, --time-scale 0, `advance 60`), and measure

* audit:    `ansible-playbook fix-xcon.yml --check` (the README's audit command)
* fix:      `ansible-playbook fix-xcon.yml` (fresh lab)
* baseline: tests/bench/naive/naive-audit.yml, one module execution and one WinRM command per
            property read (fresh lab, same topology, same forks)

recording wall time, controller CPU (getrusage(RUSAGE_CHILDREN) deltas: ansible-playbook and its
workers), the lab's CPU (utime+stime of the lab process from /proc/<pid>/stat) and the WinRM
HTTP requests / commands / shells per Exchange host (`xconlab stats` deltas).  Once per N it also
runs playbooks/audit.yml alone, to count the WinRM commands of the audit phase by itself.
Medians over --repeat runs.  Prints a table; writes reports/bench/latest.json and a timestamped copy.

    .venv/bin/python tests/bench/bench.py --sizes 10,50,100 --repeat 3 --baseline-repeat 1
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XCONLAB = os.path.join(ROOT, "tests", "lab", "xconlab")
NAIVE_DIR = os.path.join(ROOT, "tests", "bench", "naive")
FLOOR = os.path.join(ROOT, "tests", "bench", "floor.py")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import open_time  # noqa: E402  tests/bench/open_time.py: the report's opening time in Chromium
BIN = os.path.dirname(sys.executable)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ansible = subprocess.run([os.path.join(BIN, "ansible"), "--version"], capture_output=True, text=True).stdout.splitlines()
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "ansible": ansible[0] if ansible else "unknown", "platform": platform.platform()}


class Lab:
    """One lab in its own state dir; always stopped by `down()` (use try/finally)."""

    def __init__(self, workdir, topology):
        self.dir = workdir
        self.topology = topology
        self.state_dir = os.path.join(workdir, "lab")
        self.inventory = os.path.join(workdir, "hosts.yml")
        self.env = dict(os.environ, XCONLAB_STATE_DIR=self.state_dir, PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
                        ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")

    def ctl(self, *args):
        proc = subprocess.run([XCONLAB, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"xconlab {' '.join(args)} failed: {proc.stderr}{proc.stdout}")
        return proc.stdout

    def up(self):
        self.ctl("up", self.topology, "--inventory", self.inventory, "--time-scale", "0")
        self.ctl("advance", "60")

    def down(self):
        subprocess.run([XCONLAB, "down"], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120)

    def pid(self):
        with open(os.path.join(self.state_dir, "lab.pid"), encoding="utf-8") as handle:
            return int(handle.read().split()[0])

    def cpu_seconds(self):
        """utime+stime of the lab process (and its waited-for children), seconds."""
        with open(f"/proc/{self.pid()}/stat", encoding="utf-8") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17
        return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK

    def stats(self):
        return json.loads(self.ctl("stats"))


def exchange_hosts(inventory):
    """Inventory names of the Exchange hosts (the lab's stats are keyed by endpoint = host)."""
    import yaml  # ansible's dependency, in the venv

    with open(inventory, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    return sorted((data["all"]["children"]["xcon_exchange"].get("hosts") or {}).keys())


# The bench's timing callback beside the project's own (ansible.cfg's stdout callback `xcon` lives there).
CALLBACKS = os.pathsep.join([os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins"),
                             os.path.join(ROOT, "callback_plugins")])


def task_times(path):
    """The run's tasks in order (tests/bench/callback_plugins/xcon_task_times.py), [] when none."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return []


def top_tasks(tasks, count=20):
    """The `count` longest of a run's tasks."""
    return sorted(tasks, key=lambda t: -t["seconds"])[:count]


# --result-sizes: also record the largest result each of these modules registered (callback
# xcon_result_sizes; off by default: a callback with a result hook costs every result a copy).
RESULT_SIZES = {"enabled": False}
REGISTERED = ("xcon_diagnose", "xcon_verify", "xcon_report")


def registered_bytes(path):
    """{module: largest registered result in JSON bytes} of REGISTERED's modules in the run."""
    try:
        with open(path, encoding="utf-8") as handle:
            tasks = json.load(handle)
    except (OSError, ValueError):
        return {}
    sizes = {}
    for task in tasks:
        action = str(task.get("action") or "").rsplit(".", 1)[-1]
        if action in REGISTERED:
            sizes[action] = max(sizes.get(action, 0), task["result_bytes"])
    return sizes


def measure(lab, cmd, env, label):
    """Run `cmd`; return wall, controller CPU, lab CPU, per-host WinRM deltas and the longest tasks."""
    hosts = exchange_hosts(lab.inventory)
    times = os.path.join(lab.dir, f"{label}-tasks.json")
    sizes = os.path.join(lab.dir, f"{label}-results.json")
    env = dict(env, XCON_TASK_TIMES=times, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS, ANSIBLE_CALLBACKS_ENABLED="xcon_task_times")
    if RESULT_SIZES["enabled"]:
        env.update(XCON_RESULT_SIZES=sizes, ANSIBLE_CALLBACKS_ENABLED="xcon_task_times,xcon_result_sizes")
    before_stats, before_lab, load = lab.stats(), lab.cpu_seconds(), os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    launched, start = time.time(), time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=7200)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lab_cpu = lab.cpu_seconds() - before_lab
    after_stats = lab.stats()
    if proc.returncode != 0:
        log = os.path.join(lab.dir, f"{label}.log")
        with open(log, "w", encoding="utf-8") as handle:
            handle.write(proc.stdout + proc.stderr)
        raise RuntimeError(f"{label}: {' '.join(cmd)} exited {proc.returncode}; output in {log}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    per_host = {}
    for host in hosts:
        a, b = before_stats.get(host, {}), after_stats.get(host, {})
        per_host[host] = {k: b.get(k, 0) - a.get(k, 0) for k in ("commands", "http_requests", "shells")}
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    tasks = task_times(times)
    commands = [v["commands"] for v in per_host.values()]
    requests = [v["http_requests"] for v in per_host.values()]
    histogram = {}
    for c in commands:
        histogram[str(c)] = histogram.get(str(c), 0) + 1
    return {"wall_s": wall, "controller_cpu_s": cpu, "lab_cpu_s": lab_cpu, "load_avg_1m": round(load[0], 2),
            "lab_share": lab_cpu / (cpu + lab_cpu) if cpu + lab_cpu else 0.0,
            "hosts": len(hosts),
            "commands_per_host": {"min": min(commands, default=0), "max": max(commands, default=0),
                                  "mean": statistics.fmean(commands) if commands else 0, "histogram": histogram},
            "http_requests_per_host": {"min": min(requests, default=0), "max": max(requests, default=0),
                                       "mean": statistics.fmean(requests) if requests else 0},
            "hosts_with_more_than_one_command": sorted(h for h, v in per_host.items() if v["commands"] > 1),
            "longest_tasks": top_tasks(tasks), "stdout": proc.stdout,
            # Ansible's own start in this very run: launch to the first task (configuration,
            # inventory, playbook and roles loaded); `at` is when the callback saw the task start.
            **({"ansible_start_s": tasks[0]["at"] - launched} if tasks and tasks[0].get("at") else {}),
            **({"registered_bytes": registered_bytes(sizes)} if RESULT_SIZES["enabled"] else {})}


def playbook_cmd(lab, tmp, playbook, *args):
    return [os.path.join(BIN, "ansible-playbook"), "-i", lab.inventory, os.path.join(ROOT, playbook),
            "-e", f"xcon_report_dir={tmp}/reports", "-e", f"xcon_state_dir={tmp}/state", *args]


def one_run(kind, n, topology, workroot, index):
    """One measurement of `kind` (audit, audit_phase, fix, baseline, floor) on a fresh lab."""
    work = tempfile.mkdtemp(prefix=f"{kind}-{n}-{index}-", dir=workroot)
    lab = Lab(work, topology)
    try:
        lab.up()
        env = dict(lab.env, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
        if kind == "audit":
            cmd = playbook_cmd(lab, work, "fix-xcon.yml", "--check")
        elif kind == "audit_phase":
            cmd = playbook_cmd(lab, work, "playbooks/audit.yml", "--check")
        elif kind == "fix":
            cmd = playbook_cmd(lab, work, "fix-xcon.yml")
        elif kind == "floor":  # tests/bench/floor.py: its own wall and CPU, from its first command to its last
            result = measure(lab, [sys.executable, FLOOR, lab.inventory], env, f"{kind}-{n}")
            own = json.loads(result.pop("stdout"))
            result.update(wall_s=own["wall_s"], controller_cpu_s=own["cpu_s"], workers=own["workers"])
            result["lab_share"] = result["lab_cpu_s"] / (own["cpu_s"] + result["lab_cpu_s"]) if own["cpu_s"] else 0.0
            return result
        else:
            env = dict(lab.env, ANSIBLE_CONFIG=os.path.join(NAIVE_DIR, "ansible.cfg"))
            cmd = [os.path.join(BIN, "ansible-playbook"), "-i", lab.inventory, os.path.join(NAIVE_DIR, "naive-audit.yml")]
        result = measure(lab, cmd, env, f"{kind}-{n}")
        result.pop("stdout")
        latest = os.path.join(work, "reports", "latest")
        if kind == "audit" and os.path.isdir(latest):
            result["report_bytes"] = {k: os.path.getsize(os.path.join(latest, f"report.{k}")) for k in ("json", "html")}
            if index == 0:  # once per N (3 openings): how long the operator waits for the page
                result["report_open_ms"] = open_time.open_ms(os.path.join(latest, "report.html"))
        # The diagnosis (with the audit report) and the final report: the two tasks of pure controller work.
        result["diagnose_report_s"] = sum(t["seconds"] for t in result["longest_tasks"]
                                          if t["task"].startswith(("xcon_diagnose : Diagnose every link", "xcon_report : Write the final report")))
        return result
    finally:
        lab.down()


def median_of(runs):
    """Median of the numeric figures; WinRM counts are the same in every run (take the last)."""
    out = dict(runs[-1])
    for key in ("wall_s", "controller_cpu_s", "lab_cpu_s", "lab_share", "diagnose_report_s", "ansible_start_s"):
        if all(key in r for r in runs):
            out[key] = statistics.median(r[key] for r in runs)
    out["runs"] = len(runs)
    out["wall_s_all"] = [round(r["wall_s"], 2) for r in runs]
    out["load_avg_1m_all"] = [r.get("load_avg_1m") for r in runs]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,50,100", help="comma-separated N (links)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per N for audit and fix (median)")
    parser.add_argument("--fix-repeat", type=int, default=None, help="runs per N of the full fix (default: --repeat)")
    parser.add_argument("--baseline-repeat", type=int, default=1, help="runs per N of the naive baseline (slow)")
    parser.add_argument("--baseline-sizes", default=None, help="N for which the baseline runs (default: every size)")
    parser.add_argument("--skip-fix", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-audit-phase", action="store_true", help="do not run playbooks/audit.yml alone")
    parser.add_argument("--skip-floor", action="store_true", help="do not measure the wire's floor (tests/bench/floor.py)")
    parser.add_argument("--output", default=os.path.join(ROOT, "reports", "bench", "latest.json"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--result-sizes", action="store_true",
                        help="also record the largest result xcon_diagnose, xcon_verify and xcon_report registered (registered_bytes)")
    args = parser.parse_args(argv)
    RESULT_SIZES["enabled"] = args.result_sizes
    # A terminated benchmark still stops its lab (the try/finally blocks run on SystemExit).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    baseline_sizes = set(sizes if args.baseline_sizes is None else [int(s) for s in args.baseline_sizes.split(",") if s.strip()])
    workroot = tempfile.mkdtemp(prefix="xcon-bench-")
    started = time.monotonic()
    results = {"version": 1, "started": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "command": " ".join([os.path.relpath(sys.executable, ROOT), os.path.relpath(os.path.abspath(__file__), ROOT), *(argv or sys.argv[1:])]),
               "machine": machine(), "repeat": args.repeat, "fix_repeat": args.repeat if args.fix_repeat is None else args.fix_repeat, "baseline_repeat": args.baseline_repeat, "sizes": {}}
    try:
        for n in sizes:
            topology = os.path.join(workroot, f"topology-{n}.yml")
            subprocess.run([XCONLAB, "generate", str(n), "-o", topology], cwd=ROOT, check=True, capture_output=True)
            entry = {"links": n, "exchange_hosts": 2 * n}
            # Audit and floor interleaved: on a shared machine both see the same load (their ratio is the figure).
            kinds = ["audit"] + ([] if args.skip_floor else ["floor"])
            print(f"N={n}: {' and '.join(kinds)} x{args.repeat}, interleaved", file=sys.stderr, flush=True)
            runs = {kind: [] for kind in kinds}
            for i in range(args.repeat):
                for kind in kinds:
                    runs[kind].append(one_run(kind, n, topology, workroot, i))
            entry["audit"] = median_of(runs["audit"])
            if "floor" in runs:
                entry["floor"] = median_of(runs["floor"])
            if not args.skip_audit_phase:
                print(f"N={n}: audit phase alone (playbooks/audit.yml) x1", file=sys.stderr, flush=True)
                entry["audit_phase"] = median_of([one_run("audit_phase", n, topology, workroot, 0)])
            if not args.skip_fix:
                fix_repeat = args.repeat if args.fix_repeat is None else args.fix_repeat
                print(f"N={n}: fix x{fix_repeat}", file=sys.stderr, flush=True)
                entry["fix"] = median_of([one_run("fix", n, topology, workroot, i) for i in range(fix_repeat)])
            if not args.skip_baseline and n in baseline_sizes:
                print(f"N={n}: naive baseline x{args.baseline_repeat}", file=sys.stderr, flush=True)
                entry["baseline"] = median_of([one_run("baseline", n, topology, workroot, i) for i in range(args.baseline_repeat)])
            audit = entry["audit"]
            entry["audit_wall_s"] = round(audit["wall_s"], 2)
            entry["audit_per_link_s"] = round(audit["wall_s"] / n, 3)
            entry["fix_wall_s"] = round(entry["fix"]["wall_s"], 2) if "fix" in entry else None
            entry["baseline_wall_s"] = round(entry["baseline"]["wall_s"], 2) if "baseline" in entry else None
            entry["ratio"] = round(entry["baseline"]["wall_s"] / audit["wall_s"], 1) if "baseline" in entry else None
            entry["floor_wall_s"] = round(entry["floor"]["wall_s"], 2) if "floor" in entry else None
            entry["report_bytes"] = audit.get("report_bytes")
            entry["report_open_ms"] = runs["audit"][0].get("report_open_ms")
            entry["diagnose_report_s"] = round(audit["diagnose_report_s"], 2) if "diagnose_report_s" in audit else None
            entry["audit_over_floor"] = round(audit["wall_s"] / entry["floor"]["wall_s"], 2) if "floor" in entry else None
            # Ansible's start (the audit's own, launch to first task) plus the floor, over the floor: an
            # audit whose every task and play cost nothing.  Both figures come from the same runs as
            # the audit's wall time, so on a shared machine they see the same load.
            start = audit.get("ansible_start_s")
            entry["ansible_start_s"] = round(start, 2) if start is not None else None
            entry["start_and_floor_over_floor"] = (round((start + entry["floor"]["wall_s"]) / entry["floor"]["wall_s"], 2)
                                                   if "floor" in entry and start is not None else None)
            phase = entry.get("audit_phase", audit)
            entry["winrm_commands_per_host"] = {"audit_phase": phase["commands_per_host"]["max"],
                                                "audit_run": audit["commands_per_host"]["max"],
                                                "fix_run": entry["fix"]["commands_per_host"]["max"] if "fix" in entry else None,
                                                "baseline": entry["baseline"]["commands_per_host"]["max"] if "baseline" in entry else None}
            entry["winrm_http_requests_per_host"] = {"audit_phase": phase["http_requests_per_host"]["max"],
                                                     "audit_run": audit["http_requests_per_host"]["max"],
                                                     "fix_run": entry["fix"]["http_requests_per_host"]["max"] if "fix" in entry else None,
                                                     "baseline": entry["baseline"]["http_requests_per_host"]["max"] if "baseline" in entry else None}
            results["sizes"][str(n)] = entry
            results["total_s"] = round(time.monotonic() - started, 1)
            write_json(args.output, results)  # after each N: a long run stopped early keeps what it measured
            print(f"N={n} done ({results['total_s']} s so far)", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workroot, ignore_errors=True)
    results["total_s"] = round(time.monotonic() - started, 1)
    write_json(args.output, results)
    stamp = results["started"].replace(":", "").replace("-", "")
    shutil.copyfile(args.output, os.path.join(os.path.dirname(args.output), f"bench-{stamp}.json"))
    print_table(results)
    print(f"\nwritten: {os.path.relpath(args.output, ROOT)} (and bench-{stamp}.json); total {results['total_s']} s")
    return 0


def write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def fmt(value, spec="{:.1f}"):
    return "-" if value is None else spec.format(value)


def print_table(results):
    m = results["machine"]
    print(f"\nfix-xcon benchmark: {m['nproc']} CPU ({m['cpu_model']}), Python {m['python']}, {m['ansible']}; "
          f"medians of {results['repeat']} (baseline: {results['baseline_repeat']})")
    head = ("N", "hosts", "audit s", "floor s", "audit/floor", "start s", "per link s", "ctl CPU s", "lab share", "fix s", "baseline s", "ratio",
            "cmd/host audit", "cmd/host run", "cmd/host fix", "req/host audit", "cmd/host base")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n, e in sorted(results["sizes"].items(), key=lambda kv: int(kv[0])):
        a = e["audit"]
        row = (n, str(e["exchange_hosts"]), fmt(a["wall_s"]), fmt(e.get("floor_wall_s")), fmt(e.get("audit_over_floor"), "{:.2f}x"),
               fmt(e.get("ansible_start_s")), fmt(e["audit_per_link_s"], "{:.3f}"), fmt(a["controller_cpu_s"]),
               fmt(100 * a["lab_share"], "{:.0f}%"), fmt(e["fix_wall_s"]), fmt(e["baseline_wall_s"]),
               fmt(e["ratio"], "{:.1f}x"), str(e["winrm_commands_per_host"]["audit_phase"]),
               json.dumps(a["commands_per_host"]["histogram"]).replace('"', ""),
               json.dumps(e["fix"]["commands_per_host"]["histogram"]).replace('"', "") if "fix" in e else "-",
               str(e["winrm_http_requests_per_host"]["audit_phase"]), fmt(e["winrm_commands_per_host"]["baseline"], "{}"))
        print("| " + " | ".join(row) + " |")
    print("cmd/host run and fix: histogram {commands: hosts} over the whole playbook run; audit = playbooks/audit.yml alone.")
    ordered = sorted(results["sizes"].items(), key=lambda kv: int(kv[0]))
    print("\nLinearity (audit): per-link cost at each N, and the marginal cost per added link")
    previous = None
    for n, e in ordered:
        marginal = "" if previous is None else (
            f", marginal {(e['audit']['wall_s'] - previous[1]) / (int(n) - previous[0]):.3f} s/link from N={previous[0]}")
        print(f"  N={n}: {e['audit']['wall_s'] / int(n):.3f} s/link{marginal}")
        previous = (int(n), e["audit"]["wall_s"])
    if ordered:
        n, e = ordered[-1]
        for kind in ("audit", "fix"):
            if kind in e and e[kind].get("longest_tasks"):
                print(f"\nWhere the time goes, {kind} at N={n} (last run, wall seconds per task, hosts):")
                for t in e[kind]["longest_tasks"][:8]:  # the JSON keeps 20
                    print(f"  {t['seconds']:7.2f}  {t['hosts']:4d}  {t['task']}")


if __name__ == "__main__":
    sys.exit(main())
