"""Issue 22, case 2 (and the rollback part of case 8): every change has its record where rollback
needs it.  After a real fix, each tampering below makes rollback refuse - non-zero exit, nothing on any
server or the firewall touched - naming the record: the journal folder removed (the run's plan and
transaction record still say two connectors were written), one host's journal and its checksum
removed, the journal folder or a journal file symlinked to a copy outside the run, an edited journal
with a recomputed checksum (its "before" disagrees with the backup), the transaction record removed.
On the code before the fix the first rollback said "No connector write of the run to undo", exited 0
and reverted only the firewall: both connectors kept pointing at each other and no mail moved."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

from conftest import directory_and_firewalls


def _flat(run):
    return " ".join((run.stdout + run.stderr).split())


def _rehash(path):
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    with open(path + ".sha256", "w", encoding="utf-8") as handle:
        handle.write(f"{digest}  {os.path.basename(path)}\n")


def _remove_journal(run_dir, outside):
    shutil.rmtree(os.path.join(run_dir, "journal"))


def _remove_one_host(run_dir, outside):
    for name in ("EXOUT.json", "EXOUT.json.sha256"):
        os.unlink(os.path.join(run_dir, "journal", name))


def _journal_folder_symlink(run_dir, outside):
    shutil.move(os.path.join(run_dir, "journal"), os.path.join(outside, "journal"))
    os.symlink(os.path.join(outside, "journal"), os.path.join(run_dir, "journal"))


def _journal_file_symlink(run_dir, outside):
    for name in ("EXIN.json", "EXIN.json.sha256"):
        shutil.move(os.path.join(run_dir, "journal", name), os.path.join(outside, name))
        os.symlink(os.path.join(outside, name), os.path.join(run_dir, "journal", name))


def _edited_before(run_dir, outside):
    path = os.path.join(run_dir, "journal", "EXIN.json")
    with open(path, encoding="utf-8") as handle:
        entries = json.load(handle)
    for entry in entries:
        for change in (entry.get("attributes") or {}).values():
            if isinstance(change, dict) and "before" in change:
                change["before"] = "3230332e302e3131332e3636"  # "203.0.113.66": never the connector's
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(entries, handle, indent=2)
    _rehash(path)


def _remove_transaction(run_dir, outside):
    for name in ("transaction.json", "transaction.json.sha256"):
        if os.path.exists(os.path.join(run_dir, name)):
            os.unlink(os.path.join(run_dir, name))


TAMPERING = {
    "journal folder removed": (_remove_journal, "has no record of that write"),
    "one host's journal and checksum removed": (_remove_one_host, "EXOUT.json has no record of that write"),
    "journal folder is a symlink out of the run": (_journal_folder_symlink, "journal is a symbolic link"),
    "journal file is a symlink out of the run": (_journal_file_symlink, "EXIN.json is a symbolic link"),
    "edited before value, recomputed checksum": (_edited_before, "the records disagree"),
    "transaction record removed": (_remove_transaction, "transaction record"),
}


def test_rollback_refuses_when_any_record_is_missing_or_disagrees(lab, tmp_path):
    lab.up("kb.yml")
    lab.advance(30)
    fix = lab.playbook(extra={"xcon_workaround": "firewall_tunnel"})
    assert fix.returncode == 0, fix.stdout[-4000:]
    run_id = lab.report()["run_id"]
    run_dir = os.path.join(lab.reports, run_id)
    pristine = str(tmp_path / "pristine")
    shutil.copytree(run_dir, pristine, symlinks=True)
    fixed = directory_and_firewalls(lab.snapshot())
    failures = []
    for what, (tamper, message) in TAMPERING.items():
        outside = tmp_path / what.replace(" ", "-").replace("'", "")
        outside.mkdir()
        tamper(run_dir, str(outside))
        run = lab.playbook(playbook="playbooks/rollback.yml", extra={"xcon_rollback_run_id": run_id})
        text = _flat(run)
        if run.returncode == 0 or message not in text or "refused" not in text or "Nothing was changed." not in text:
            failures.append((what, run.returncode, text[-1500:]))
        assert directory_and_firewalls(lab.snapshot()) == fixed, f"{what}: rollback changed something"
        shutil.rmtree(run_dir)
        shutil.copytree(pristine, run_dir, symlinks=True)
    assert not failures, failures
    # the intact records still roll back
    run = lab.playbook(playbook="playbooks/rollback.yml", extra={"xcon_rollback_run_id": run_id})
    assert run.returncode == 0, _flat(run)[-3000:]
    assert directory_and_firewalls(lab.snapshot()) != fixed
