"""README's performance table, regenerated from the bench's JSON (README "Performance").

    .venv/bin/python tests/bench/table.py [reports/bench/latest.json] [--readme README.md]

Prints the machine line and the table; with --readme it replaces the text between the markers
``<!-- bench-table:start -->`` and ``<!-- bench-table:end -->`` of that file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


def _s(value, spec="{:.1f}"):
    return "-" if value is None else spec.format(value)


def _run(entry, kind, key="wall_s"):
    return (entry.get(kind) or {}).get(key)


def render(data):
    m = data["machine"]
    runs = f"medians of {data['repeat']} (fix: {data.get('fix_repeat', data['repeat'])}, baseline: {data['baseline_repeat']})"
    loads = sorted(x for e in data["sizes"].values() for kind in ("audit", "floor")
                   for x in (e.get(kind) or {}).get("load_avg_1m_all") or [] if x is not None)
    load = f"; 1-minute load average during the audit and floor runs {loads[0]:.1f}-{loads[-1]:.1f}" if loads else ""
    lines = [f"Measured {data['started']} on {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, {m['ansible']}: "
             f"`{data['command']}`, {runs}{load}.", "",
             "| N links | hosts | audit (`--check`) s | floor s | audit / floor | Ansible's start s | (start + floor) / floor "
             "| per link s | controller CPU s | full fix s "
             "| naive baseline s | baseline / audit | diagnosis + report s | WinRM commands per host: audit, fix, baseline | report.json / .html MB (HTML opens in) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, e in sorted(data["sizes"].items(), key=lambda kv: int(kv[0])):
        audit = e["audit"]
        commands = e.get("winrm_commands_per_host") or {}
        sizes = e.get("report_bytes") or {}
        report = (f"{sizes['json'] / 1e6:.2f} / {sizes['html'] / 1e6:.2f}" if sizes else "-")
        if e.get("report_open_ms") is not None:  # Chromium's parse + layout of the HTML (tests/bench/open_time.py)
            report += f" (opens in {e['report_open_ms'] / 1000:.2f} s)"
        lines.append("| " + " | ".join([
            n, str(e["exchange_hosts"]), _s(audit["wall_s"]), _s(e.get("floor_wall_s")), _s(e.get("audit_over_floor"), "{:.2f}x"),
            _s(e.get("ansible_start_s")), _s(e.get("start_and_floor_over_floor"), "{:.2f}x"),
            _s(audit["wall_s"] / int(n), "{:.3f}"), _s(audit["controller_cpu_s"]), _s(e.get("fix_wall_s")),
            _s(e.get("baseline_wall_s")), _s(e.get("ratio"), "{:.0f}x"), _s(e.get("diagnose_report_s"), "{:.2f}"),
            f"{commands.get('audit_run', '-')}, {commands.get('fix_run') or '-'}, {commands.get('baseline') or '-'}", report]) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="?", default=os.path.join(ROOT, "reports", "bench", "latest.json"))
    parser.add_argument("--readme", help="replace the table between the bench-table markers of this file")
    args = parser.parse_args(argv)
    with open(args.json, encoding="utf-8") as handle:
        table = render(json.load(handle))
    print(table)
    if args.readme:
        with open(args.readme, encoding="utf-8") as handle:
            text = handle.read()
        if START not in text or END not in text:
            print(f"{args.readme}: no {START} ... {END} markers", file=sys.stderr)
            return 2
        head, rest = text.split(START, 1)
        text = head + START + "\n" + table + "\n" + END + rest.split(END, 1)[1]
        with open(args.readme, "w", encoding="utf-8") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
