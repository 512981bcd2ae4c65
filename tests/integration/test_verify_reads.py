"""How often the verification reads the servers (issue 19, the fix path): on the KB lab with its clock
frozen (only the runs' waiting moves it), the lab's control program is wrapped so that each move
of the clock also records the lab's own WinRM counters at that moment.

* The fix's verification reads each server at the start (the baseline) and once more at the end of
  the link's 20-minute window (2 x the default open interval of 600 s), when the link can pass:
  one WinRM command per server after the clock has moved, none while it moves - not one every
  five minutes (five reads: 0, 5, 10, 15, 20).  The window is not shortened: the clock moved 20
  minutes, and the link passed with mail delivered and no refusal.
* The whole fix sends at most 7 commands to each Exchange server (audit 1, backup 1, connector
  read and write 2, MTA restart 1, verification 2); it sent 10.
"""

from __future__ import annotations

import datetime
import json
import os
import stat
import sys

from conftest import XCONLAB

WRAPPER = """#!{python}
import json, subprocess, sys
stats = json.loads(subprocess.run([{xconlab!r}, "stats"], capture_output=True, text=True, check=True).stdout)
with open({log!r}, "a", encoding="utf-8") as handle:
    handle.write(json.dumps({{"args": sys.argv[1:], "stats": stats}}) + "\\n")
sys.exit(subprocess.run([{xconlab!r}, *sys.argv[1:]]).returncode)
"""


def _wrap_lab_control(lab):
    """A control program that logs the lab's counters before each clock move; returns the log's path."""
    log = str(lab.tmp / "advances.jsonl")
    path = lab.tmp / "xconlab-logged"
    path.write_text(WRAPPER.format(python=sys.executable, xconlab=XCONLAB, log=log), encoding="utf-8")
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
    assert all(after[h] - before[h] <= 7 for h in after), (before, after)
    assert run.stdout.count("xcon_verify: ") == 1, [l for l in run.stdout.splitlines() if "xcon_verify" in l]
    assert os.path.isfile(os.path.join(lab.reports, "latest", "report.html"))
