"""The operator's console (callback_plugins/xcon.py and the run summary), as `make fix-lab` shows it:
an audit under --check --diff and a fix of the KB lab together fit on two screens, each phase is
one line, no role-argument validation banner, codes keep their XCON- prefix, --check says what
*would* restart (nothing is pending), each firewall change is shown once, and each run ends with the
path of its HTML report.  A failure's reason is printed whole (wrapped, never cut).  (~25 s)
"""

from __future__ import annotations

import os
import re
import subprocess

from conftest import BIN, ROOT


def _lines(run):
    return run.stdout.rstrip("\n").splitlines()


def test_audit_and_fix_fit_on_two_screens_and_end_with_the_report(lab):
    lab.up("kb.yml")
    lab.advance(60)
    audit = lab.playbook("--check", "--diff")
    assert audit.returncode == 0, audit.stdout[-4000:] + audit.stderr[-2000:]
    fix = lab.playbook()
    assert fix.returncode == 0, fix.stdout[-4000:] + fix.stderr[-2000:]
    both = _lines(audit) + _lines(fix)
    assert len(both) <= 100, f"{len(both)} lines:\n" + "\n".join(both)
    for run in (audit, fix):
        lines = _lines(run)
        report = lab.report()  # the fix's; the audit's path is checked by its run id
        last = lines[-1]
        assert re.fullmatch(r"Report: .*/report\.html", last), last
        assert os.path.isfile(last.split(": ", 1)[1]), last
        assert lab.reports in last
        assert "Validating arguments" not in run.stdout
        assert "TASK [" not in run.stdout and "PLAY [" not in run.stdout, "task banners are back"
        assert "XCON-TRANSPARENCY-REFUSAL" in run.stdout
        assert not re.search(r"(?<![-\w])TRANSPARENCY-REFUSAL", run.stdout.replace("XCON-TRANSPARENCY-REFUSAL", "")), \
            "a code without its XCON- prefix"
        phases = [l for l in lines if l.startswith("== ")]
        assert len(phases) == len(set(phases)), phases
        assert all(len(l) <= 120 for l in lines), [l for l in lines if len(l) > 120]
    assert report["run_id"] in _lines(fix)[-1]
    # --check: what would restart; nothing is pending because nothing changed
    assert "Would restart the MTA on: EXIN, EXOUT" in audit.stdout
    assert "pending" not in audit.stdout.lower()
    assert "would restart" not in fix.stdout.lower()
    # each firewall change record shown once (its role's diff, not also the plan's)
    assert audit.stdout.count("+routed_paths:") == 1, audit.stdout
    assert audit.stdout.count("+passers: []") == 1, audit.stdout
    assert fix.stdout.count("Render the change record for firewall tunnel (open)") == 1


def test_a_long_failure_reason_is_printed_whole(lab):
    lab.up("kb.yml")
    # transparency_off without the acknowledgement is refused before anything is read, with a
    # reason of about 400 characters that ends with the alternative to choose
    run = lab.playbook(extra={"xcon_workaround": "transparency_off"})
    assert run.returncode != 0
    lines = _lines(run)
    start = next(i for i, l in enumerate(lines) if l.startswith("fatal: [localhost] "))
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        block.append(line)
    text = " ".join(l.strip() for l in block)
    assert len(block) >= 3 and all(len(l) <= 120 for l in block), block
    assert len(text) > 300, text
    assert text.endswith("(reverse_connector needs no firewall change)."), text
    assert "xcon_transparency_off_acknowledged=true" in text, text
    # printed once: not also as ansible-core's "[ERROR]: Task failed" block; the module is named
    both = run.stdout + run.stderr
    assert "[ERROR]" not in both, both
    assert both.count("xcon_transparency_off_acknowledged=true") == 1, both
    assert "(ansible.builtin.assert): xcon_workaround=transparency_off" in text, text
    # -v loses nothing Ansible shows: its own error block with the origin, and the result dump
    verbose = lab.playbook("-v", extra={"xcon_workaround": "transparency_off"})
    assert verbose.returncode != 0
    both = verbose.stdout + verbose.stderr
    assert "[ERROR]: Task failed" in both and "Origin: " in both and "FAILED! =>" in both, both
    assert "evaluated_to: false" in both, both


def test_no_play_runs_an_argument_validation_task():
    # Each validation task is one more task per host on a fleet; the inputs are checked by
    # xcon_validate before any host is contacted (the contract, and the write path's role variables
    # against their roles' argument specs: xcon.role_inputs) and by the modules.
    # (~5 s, no lab: the validation tasks are part of the loaded playbook, as --list-tasks shows.)
    def tasks(playbook):
        run = subprocess.run([os.path.join(BIN, "ansible-playbook"), os.path.join(ROOT, playbook), "--list-tasks"],
                             cwd=ROOT, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg")),
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        return run.stdout

    for playbook in ("playbooks/audit.yml", "playbooks/analyze.yml", "fix-xcon.yml"):
        listed = tasks(playbook)
        assert "xcon_run : Check every operator value" in listed, listed  # the check itself still runs
        assert "Validating arguments" not in listed, listed
    assert "xcon_backup : Save every connector" in tasks("playbooks/remediate.yml")


def test_a_stopped_link_is_announced_once_while_the_run_goes_on(lab):
    """A link stopped by a failed step is said at the gate that first sees it, not again at every
    later phase's gate (the run summary and the final failure then repeat it once each)."""
    lab.up("kb.yml")
    lab.advance(60)
    lab.ctl("fault", "EXIN", "drop-after", "18")  # EXIN's Stack write (audit, read: 9 requests each)
    run = lab.playbook()
    assert run.returncode != 0, run.stdout[-4000:]
    progress = re.split(r"^fix-xcon \S+ run ", run.stdout, maxsplit=1, flags=re.M)[0]  # up to the summary
    said = re.findall(r"^EXIN<->EXOUT stopped at step \d+", progress, re.M)
    assert len(said) == 1, run.stdout[-6000:]
