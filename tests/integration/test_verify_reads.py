"""How often the verification reads the servers (issue 19, the fix path): on the KB lab with its clock
frozen (only the runs' waiting moves it), the lab's control program is wrapped so that each move
of the clock also records the lab's own WinRM counters at that moment.

* The fix's verification reads each server at the start (the baseline) and once more at the end of
  the link's 20-minute window (2 x the default open interval of 600 s), when the link can pass:
  one WinRM command per server after the clock has moved, none while it moves - not one every
  five minutes (five reads: 0, 5, 10, 15, 20).  The window is not shortened: the clock moved 20
  minutes, and the link passed with mail delivered and no refusal.
* The whole fix sends at most 6 commands to each Exchange server (audit 1 - the back-up is made
  from it -, connector read and write 2, MTA restart 1, verification 2); it sent 10 when every poll
  read, 7 with a back-up read of its own.
"""

from __future__ import annotations

import datetime
import json
import os
import stat
import sys

from conftest import XCONLAB

WRAPPER = """#!{python}
import json, os, subprocess, sys
def lab(*args):
    return json.loads(subprocess.run([{xconlab!r}, *args], capture_output=True, text=True, check=True).stdout)
snapshot = lab("snapshot")
record = {{"args": sys.argv[1:], "stats": lab("stats"), "time": snapshot["time"],
          "walked": {{name: s["event_log_reads"] for name, s in snapshot["servers"].items()}}}}
if {first!r} and not os.path.exists({log!r}):
    lab("firewall", "apply", {first!r})
with open({log!r}, "a", encoding="utf-8") as handle:
    handle.write(json.dumps(record) + "\\n")
sys.exit(subprocess.run([{xconlab!r}, *sys.argv[1:]]).returncode)
"""


def _wrap_lab_control(lab, first_move=None):
    """A control program that logs the lab's counters before each clock move (and applies the
    firewall change record `first_move` before the first); returns its path and the log's."""
    log = str(lab.tmp / "advances.jsonl")
    path = lab.tmp / "xconlab-logged"
    record = ""
    if first_move:
        record = str(lab.tmp / "first-move.json")
        with open(record, "w", encoding="utf-8") as handle:
            json.dump(first_move, handle)
    path.write_text(WRAPPER.format(python=sys.executable, xconlab=XCONLAB, log=log, first=record), encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path), log


def _minutes(start, end):
    parse = lambda text: datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds() / 60


def _commands(stats):
    return {host: stats[host]["commands"] for host in ("EXIN", "EXOUT")}


def test_the_verification_reads_at_the_start_and_when_the_window_ends(lab):
    lab.up("kb.yml", time_scale=0)
    lab.advance(35)
    control, log = _wrap_lab_control(lab)
    before = _commands(json.loads(lab.ctl("stats").stdout))
    start = lab.snapshot()["time"]
    run = lab.playbook(extra={"xcon_lab_control": control})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    after = _commands(json.loads(lab.ctl("stats").stdout))
    (link,) = lab.report()["links"]
    assert link["verification"]["state"] == "passed", link["verification"]
    assert link["status_after"] == "ok"
    with open(log, encoding="utf-8") as handle:
        moves = [json.loads(line) for line in handle]
    assert moves and all(m["args"][0] == "advance" for m in moves), moves
    # the window is watched whole: the clock moved 20 minutes (and the link's window is 20)
    assert sum(int(m["args"][1]) for m in moves) == 20 == link["verification"]["details"]["window_minutes"], \
        [m["args"] for m in moves]
    assert _minutes(start, lab.snapshot()["time"]) == 20
    # one read per server after the clock moved (at the window's end), none between the moves
    first_move = _commands(moves[0]["stats"])
    assert {h: after[h] - first_move[h] for h in after} == {"EXIN": 1, "EXOUT": 1}, [m["args"] for m in moves]
    assert all(_commands(m["stats"]) == first_move for m in moves), "a read while the clock moved"
    assert all(after[h] - before[h] <= 6 for h in after), (before, after)
    assert run.stdout.count("xcon_verify: ") == 1, [l for l in run.stdout.splitlines() if "xcon_verify" in l]
    assert os.path.isfile(os.path.join(lab.reports, "latest", "report.html"))


BREAK = {"version": 1, "firewall": "FW1", "steps": [{"action": "remove_routed_path", "hosts": ["EXIN", "EXOUT"], "port": 102}]}


def test_each_read_walks_the_event_log_from_the_previous_read_only(lab):
    lab.up("kb.yml", time_scale=0)
    lab.advance(35)
    # the routed path the fix opened is taken away as the verification starts waiting: the link
    # never passes, so the verification reads at 20, 25, ... 60 minutes
    control, log = _wrap_lab_control(lab, first_move=BREAK)
    run = lab.playbook(extra={"xcon_lab_control": control})
    assert run.returncode != 0
    (link,) = lab.report()["links"]
    details = link["verification"]["details"]
    assert link["verification"]["state"] == "failed" and details["new_refusals"] > 0, link["verification"]
    snapshot = lab.snapshot()
    with open(log, encoding="utf-8") as handle:
        moves = [json.loads(line) for line in handle]
    reads = [m["time"] for m in moves[1:]] + [snapshot["time"]]   # the full reads, on the lab's clock
    assert len(reads) == 9 and _minutes(moves[0]["time"], reads[-1]) == 60, [m["args"] for m in moves]
    previous = [moves[0]["time"]] + reads[:-1]                    # the baseline, then each full read
    for name, server in snapshot["servers"].items():
        walked = server["event_log_reads"] - moves[0]["walked"][name]
        # each read walks the entries from a minute before the previous read's time on (and the
        # first older one, where the walk stops) - not every entry since the audit, again and again
        bound = sum(1 + sum(1 for e in server["events"] if _minutes(before, e["time"]) >= -1 and e["time"] <= at)
                    for before, at in zip(previous, reads))
        again = sum(sum(1 for e in server["events"] if moves[0]["time"] <= e["time"] <= at) for at in reads)
        assert 0 < walked <= bound < again, (name, walked, bound, again)
    # the refusals the reads saw are the lab's: every one after the change is in the report's timeline
    refusals = {(e["host"], e["time"], e["id"]) for e in link["timeline"]["events"] if e["id"] in (1290, 289, 1294, 1293)}
    logged = {(name, e["time"], e["id"]) for name, s in snapshot["servers"].items() for e in s["events"]
              if e["id"] in (1290, 289, 1294, 1293) and moves[0]["time"] <= e["time"] <= reads[-1]}
    assert logged and logged <= refusals, sorted(logged - refusals)[:5]
