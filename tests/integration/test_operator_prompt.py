"""The firewall operator's prompt, on a real terminal: with no driver and no confirmation variable,
the run stops at each firewall change record (ansible.builtin.pause), the person at the terminal
carries out the record and types "done". Everything else aborts before the next change, and a
run without a terminal never waits and never goes past the record."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time

from conftest import BIN, ROOT, XCONLAB, directory_and_firewalls

PROMPT = re.compile(rb"Record: (\S+)\s+Type \"done\" once the change is active on (\S+) \(anything else aborts\)")


def _command(lab, *extra):
    # The lab's inventory names a command that plays the operator; without it the run must ask.
    return [os.path.join(BIN, "ansible-playbook"), "-i", lab.inventory, os.path.join(ROOT, "fix-xcon.yml"),
            "-e", f"xcon_report_dir={lab.reports}", "-e", f"xcon_state_dir={lab.tmp}/state",
            "-e", json.dumps({"xcon_firewall_operator_command": []}), *extra]


def _run_on_terminal(cmd, env, answer, timeout=300):
    """Run `cmd` with a pseudo-terminal as its controlling terminal; at each operator prompt call
    `answer(record_path, firewall)` and type what it returns. Returns (exit status, output, prompts)."""
    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is stdin, stdout, stderr and the controlling terminal
        try:
            os.chdir(ROOT)
            os.execve(cmd[0], cmd, env)
        finally:
            os._exit(127)
    output, handled, prompts = b"", 0, []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            for match in PROMPT.finditer(output, handled):
                handled = match.end()
                record, firewall = match.group(1).decode(), match.group(2).decode()
                prompts.append((record, firewall))
                reply = answer(record, firewall).encode() + b"\r"
                # Like a person, answer after the prompt is up: input typed ahead of it is flushed
                # when the prompt takes the terminal.
                time.sleep(1.0)
                os.write(fd, reply)
        else:
            os.kill(pid, 9)
            raise AssertionError("the run did not finish in time:\n" + output[-4000:].decode(errors="replace"))
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace"), prompts


def test_operator_carries_out_each_record_and_types_done(lab):
    lab.up("kb.yml")
    lab.advance(30)

    def carry_out(record, firewall):
        assert firewall == "FW1" and os.path.isfile(record), record
        lab.ctl("firewall", "apply", record)
        return "done"

    code, output, prompts = _run_on_terminal(_command(lab, "-e", "xcon_workaround=firewall_tunnel"), lab.env, carry_out)
    assert code == 0, output[-6000:]
    assert len(prompts) == 2, prompts  # open (routed path), then close (GSPs removed)
    link = lab.report()["links"][0]
    assert link["verification"]["state"] == "passed", link["verification"]
    assert all(change["applied"] for change in link["changes"]), link["changes"]
    fixed_at = lab.snapshot()["time"]
    lab.advance(30)
    after = lab.snapshot()
    assert after["firewalls"]["FW1"]["passers"] == [] and after["firewalls"]["FW1"]["routed_paths"], after["firewalls"]["FW1"]
    for flow in after["flows"]:
        assert flow["queued"] == 0 and flow["delivered"] == flow["sent"], (fixed_at, flow)


def test_any_other_answer_stops_before_the_next_change(lab):
    lab.up("kb.yml")
    lab.advance(30)
    before = directory_and_firewalls(lab.snapshot())
    code, output, prompts = _run_on_terminal(_command(lab, "-e", "xcon_workaround=firewall_tunnel"), lab.env,
                                             lambda record, firewall: "no")
    assert code != 0, output[-6000:]
    assert len(prompts) == 1, prompts
    assert "was not confirmed" in " ".join(output.split()), output[-4000:]
    # Nothing carried out, and the Stack repoint that follows the record was not reached.
    assert directory_and_firewalls(lab.snapshot()) == before


def test_without_a_terminal_the_run_never_waits_and_changes_nothing_past_the_record(lab):
    lab.up("kb.yml")
    lab.advance(30)
    before = directory_and_firewalls(lab.snapshot())
    started = time.monotonic()
    run = subprocess.run(_command(lab, "-e", "xcon_workaround=firewall_tunnel"), cwd=ROOT, env=lab.env,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    assert run.returncode != 0, run.stdout[-6000:]
    assert time.monotonic() - started < 120
    assert "was not confirmed" in " ".join(run.stdout.split()), run.stdout[-4000:]
    assert directory_and_firewalls(lab.snapshot()) == before
