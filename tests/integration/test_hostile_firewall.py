"""Issue 22, cases 4 (input part) and 7 (read failures): a firewall whose facts are unknown is
`unknown` and stops its links, and a firewall or a server that cannot be read still lets the run write
its report and free the lock.  On the code before the fix FW1 with only connection variables gave "changes 0/0
applied, verification passed -> OK", rc 0, while the fault stayed; and a firewall whose driver failed
(a damaged record of confirmed changes) ended the playbook with no report, as did a damaged state
file read with the servers (evidence-baseline.json), unnamed."""

from __future__ import annotations

import os

from conftest import directory_and_firewalls


def _flat(run):
    return " ".join((run.stdout + "\n" + run.stderr).split())


def _codes(report):
    return {f["code"] for link in report["links"] for f in link["findings"]}


def strip_firewall_facts(inventory):
    """FW1 keeps only its connection variables."""
    fw1 = inventory["all"]["children"]["xcon_firewalls"]["hosts"]["FW1"]
    for key in [k for k in fw1 if k.startswith("xcon_firewall_")]:
        del fw1[key]


def test_a_firewall_with_only_connection_variables_is_unknown_and_nothing_changes(lab):
    lab.up("kb.yml")
    lab.advance(60)
    lab.edit_inventory(strip_firewall_facts)
    before = directory_and_firewalls(lab.snapshot())
    run = lab.playbook()
    text = _flat(run)
    assert run.returncode != 0, text[-3000:]
    report = lab.report()
    (link,) = report["links"]
    assert link["status"] == "unknown" and "XCON-FIREWALL-UNKNOWN" in _codes(report), link
    assert "verification passed -> OK" not in text, text[-3000:]
    assert directory_and_firewalls(lab.snapshot()) == before


def test_a_firewall_that_cannot_be_read_still_gets_a_report_and_frees_the_lock(lab, tmp_path):
    lab.up("kb.yml")
    lab.advance(30)
    record = tmp_path / "state" / "firewall" / "FW1.json"
    record.parent.mkdir(parents=True)
    record.write_text("garbage{", encoding="utf-8")
    before = directory_and_firewalls(lab.snapshot())
    run = lab.playbook()
    text = _flat(run)
    assert run.returncode != 0, text[-3000:]
    assert os.path.exists(os.path.join(lab.reports, "latest", "report.json")), text[-3000:]
    report = lab.report()
    assert "XCON-FIREWALL-UNKNOWN" in _codes(report) and all(l["status"] != "ok" for l in report["links"]), report["links"]
    assert "FW1" in text and "could not read FW1" in text, text[-3000:]
    assert directory_and_firewalls(lab.snapshot()) == before
    lock = tmp_path / "state" / "lock"
    assert [f for f in os.listdir(lock) if f.endswith(".json")] == [], os.listdir(lock)
    again = lab.playbook("--check")
    assert "holds the lock" not in _flat(again)


def test_a_damaged_state_file_read_with_the_servers_still_gets_a_report_naming_it(lab, tmp_path):
    lab.up("kb.yml")
    lab.advance(30)
    baseline = tmp_path / "state" / "evidence-baseline.json"
    baseline.parent.mkdir(parents=True)
    baseline.write_text("garbage{", encoding="utf-8")
    run = lab.playbook("--check")
    text = _flat(run)
    assert run.returncode != 0, text[-3000:]
    assert os.path.exists(os.path.join(lab.reports, "latest", "report.json")), text[-3000:]
    assert f"{baseline} is damaged" in text, text[-3000:]
    assert all(l["status"] != "ok" for l in lab.report()["links"])
    lock = tmp_path / "state" / "lock"
    assert [f for f in os.listdir(lock) if f.endswith(".json")] == [], os.listdir(lock)
