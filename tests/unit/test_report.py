"""Tests of xcon.report: report.md's keys, HTML layout and escaping, atomic files, masking."""

from __future__ import annotations

import json
import os

from test_diagnose import Topology
from xcon import diagnose as dx
from xcon import plan
from xcon import report

SECRET = "Pa55w0rd!Zq9"
TOP_KEYS = {"run_id", "generated_at", "tool_version", "check_mode", "workaround_requested", "coverage", "links"}
LINK_KEYS = {"id", "inside", "outside", "firewall", "status", "findings", "recommended_workaround", "changes", "verification"}
FINDING_KEYS = {"code", "severity", "host", "connector", "message", "evidence"}
CHANGE_KEYS = {"target", "object", "action", "before", "after", "applied"}


def links_for(*topologies, workaround="auto"):
    links = []
    for topo in topologies:
        servers = topo.servers()
        for link in dx.diagnose(servers, [topo.firewall], requested=workaround):
            link["changes"] = plan.plan_changes(link, servers, topo.firewall, workaround)
            links.append(link)
    return links


def sample_report(**overrides):
    unreachable = Topology()
    unreachable.out_error = {"code": dx.UNREACHABLE, "reason": "WinRM timeout"}
    args = {"run_id": "20240101T120000Z-abc", "check_mode": True, "workaround_requested": "auto",
            "hosts_scanned": ["EXIN", "EXOUT"], "hosts_failed": [{"host": "EXOUT2", "reason": "WinRM timeout"}],
            "links": links_for(Topology.kb(), Topology(), unreachable), "tool_version": "0.1.0"}
    args.update(overrides)
    return report.build_report(**args)


def test_json_keys_follow_report_md():
    built = sample_report()
    assert TOP_KEYS <= set(built) and "summary" in built
    assert set(built["coverage"]) == {"hosts_scanned", "hosts_failed", "directories"}
    assert built["coverage"]["hosts_failed"] == [{"host": "EXOUT2", "reason": "WinRM timeout"}]
    assert built["links"]
    for link in built["links"]:
        assert LINK_KEYS <= set(link)
        assert set(link["inside"]) >= {"host", "connector"} and set(link["outside"]) >= {"host", "connector"}
        assert link["status"] in ("ok", "warning", "error", "unknown")
        assert link["recommended_workaround"] in ("reverse_connector", "firewall_tunnel", "transparency_off", "none")
        assert link["verification"]["state"] in ("not_run", "passed", "failed") and "details" in link["verification"]
        for finding in link["findings"]:
            assert FINDING_KEYS <= set(finding)
            assert finding["severity"] in ("info", "warning", "error", "unknown")
        for change in link["changes"]:
            assert CHANGE_KEYS <= set(change) and change["action"] in ("create", "modify", "delete", "operator")
    json.dumps(built)  # serialisable


def test_summary_counts():
    summary = sample_report()["summary"]
    assert summary["links_total"] == 3
    assert summary["links_by_status"] == {"error": 1, "unknown": 1, "warning": 0, "ok": 1}
    assert summary["worst_status"] == "error"
    assert summary["changes_planned"] == 4 and summary["changes_applied"] == 0
    assert summary["restart_required"] == ["EXIN", "EXOUT"]
    assert summary["hosts_scanned"] == 2 and summary["hosts_failed"] == 1


def test_links_are_listed_worst_first():
    assert [l["status"] for l in sample_report()["links"]] == ["error", "unknown", "ok"]


def test_html_overview_comes_first_with_status_colours():
    html = report.render_html(sample_report())
    overview, coverage, details = html.index('id="overview-table"'), html.index('id="coverage"'), html.index('id="details"')
    assert overview < coverage < details
    row = html[overview:coverage]
    for status in ("error", "unknown", "ok"):
        assert f'<td class="{status}">{status}</td>' in row
    assert ".ok { background: #c8e6c9" in html and ".unknown { background: #d6d6d6" in html
    assert html[details:].count("XCON-TRANSPARENCY-REFUSAL") >= 1 and "firewall_tunnel" in html[details:]
    assert "not scanned" in html[coverage:details] and "EXOUT2" in html[coverage:details]


def test_html_escapes_values():
    links = links_for(Topology.kb())
    links[0]["findings"][0]["message"] = "<script>alert(1)</script>"
    html = report.render_html(report.build_report("r", True, "auto", [], [], links, "0.1.0"))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_secrets_never_appear_anywhere(tmp_path):
    links = links_for(Topology.kb(), workaround="reverse_connector")
    links[0]["changes"][0]["after"]["remote_password"] = SECRET
    links[0]["changes"][0]["before"] = {"override": {"local_mta_password": SECRET}}
    links[0]["findings"][0]["evidence"]["connection"] = {"ansible_password": SECRET, "credential": SECRET}
    links[0]["findings"][0]["message"] += f" (the operator typed {SECRET} here)"
    links[0]["verification"] = {"state": "failed", "details": {"winrm_password": SECRET}}
    failed = [{"host": "EXOUT2", "reason": f"login with {SECRET} failed", "password": SECRET}]
    built = report.build_report("run-9", False, "auto", ["EXIN"], failed, links, "0.1.0")
    paths = report.write_report(built, str(tmp_path))
    texts = [json.dumps(built), report.render_html(built), report.render_summary(built)]
    texts += [open(p, encoding="utf-8").read() for p in paths.values()]
    for text in texts:
        assert SECRET not in text
    assert "********" in texts[0]


def test_extra_secrets_are_masked_in_free_text():
    failed = [{"host": "EXOUT2", "reason": "vault said hunter2-xyz"}]
    built = report.build_report("r", True, "auto", [], failed, [], "0.1.0", secrets=["hunter2-xyz"])
    assert "hunter2-xyz" not in json.dumps(built)


def test_a_report_built_unmasked_and_masked_once_after_its_last_change_is_the_masked_report():
    # xcon_diagnose and xcon_report add to the report after building it and mask it once, then
    links = links_for(Topology.kb())
    links[0]["findings"][0]["evidence"]["remote_password"] = "hunter2-xyz"
    links[0]["findings"][0]["evidence"]["note"] = "logon with hunter2-xyz refused"
    raw = report.build_report("r", True, "auto", [], [], links, "0.1.0", masked=False)
    assert "hunter2-xyz" in json.dumps(raw)
    raw["generated_at"] = "x"
    masked = report.build_report("r", True, "auto", [], [], links, "0.1.0")
    masked["generated_at"] = "x"
    assert report.mask_report(raw) == masked and "hunter2-xyz" not in json.dumps(masked)


def test_masked_values_stay_masked():
    links = links_for(Topology.kb())
    links[0]["findings"][0]["evidence"]["remote_password"] = "********"
    built = report.build_report("r", True, "auto", [], [], links, "0.1.0")
    assert built["links"][0]["findings"][0]["evidence"]["remote_password"] == "********"


def test_write_report_writes_run_and_latest_atomically(tmp_path):
    built = sample_report()
    paths = report.write_report(built, str(tmp_path))
    run_dir = tmp_path / built["run_id"]
    assert paths == {"json": str(run_dir / "report.json"), "html": str(run_dir / "report.html"),
                     "latest_json": str(tmp_path / "latest" / "report.json"), "latest_html": str(tmp_path / "latest" / "report.html")}
    assert json.loads((run_dir / "report.json").read_text()) == json.loads((tmp_path / "latest" / "report.json").read_text())
    assert (run_dir / "report.html").read_text() == (tmp_path / "latest" / "report.html").read_text()
    leftovers = [n for d in (run_dir, tmp_path / "latest") for n in os.listdir(d) if n.startswith(".tmp-")]
    assert leftovers == []
    second = report.build_report("run-2", True, "none", [], [], [], "0.1.0")
    report.write_report(second, str(tmp_path))
    assert json.loads((tmp_path / "latest" / "report.json").read_text())["run_id"] == "run-2"
    assert (run_dir / "report.json").exists()


def test_one_render_serves_the_run_folder_and_latest(tmp_path):
    """write_report renders the page once (report_html.render_each): each copy is the page a render
    for its own folder gives, the artifacts' links prefixed for that folder, and a value that
    spells the placeholder stays text."""
    from xcon import report_html

    built = sample_report(check_mode=False)
    built["links"][0]["findings"][0]["message"] = 'sneaky <xcon-base/> "quoted"'
    run_dir = tmp_path / built["run_id"]
    (run_dir / "backup").mkdir(parents=True)
    (run_dir / "firewall").mkdir()
    (run_dir / "firewall" / "FW1-open.txt").write_text("record")
    paths = report.write_report(built, str(tmp_path))
    masked = json.loads((run_dir / "report.json").read_text())
    for key, folder, base in (("html", run_dir, ""), ("latest_html", tmp_path / "latest", f"../{built['run_id']}/")):
        page = open(paths[key], encoding="utf-8").read()
        docs = os.path.relpath(report.DOCS_FINDINGS, str(folder)).replace(os.sep, "/")
        assert page == report_html.render(masked, base, docs)
        assert f'href="{base}backup/"' in page and f'href="{base}firewall/FW1-open.txt"' in page
        assert "<xcon-base/>" not in page and "sneaky &lt;xcon-base/&gt;" in page


def test_summary_states_the_outcome_apart_from_the_status_as_found():
    links = links_for(Topology.kb(), Topology.kb())
    links[1]["id"] = "EXIN2<->EXOUT2"
    for link, state in zip(links, ("passed", "failed")):
        link["verification"] = {"state": state, "details": {}}
    text = report.render_summary(report.build_report("run-1", False, "auto", ["EXIN", "EXOUT"], [], links, "0.1.0"))
    assert "Links as found: 2 (2 error" in text
    assert "\nAfter the changes: 1 link(s) verified, mail flows again; 1 FAILED verification: EXIN2<->EXOUT2" in text
    audit = report.render_summary(sample_report())
    assert "After the changes" not in audit


def test_summary_fits_one_screen():
    text = report.render_summary(sample_report())
    lines = text.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 100 for line in lines)
    assert "[ERROR  ] EXIN<->EXOUT: workaround firewall_tunnel, would make 4 change(s)" in text
    assert "XCON-TRANSPARENCY-REFUSAL (error), XCON-QUEUE-BACKLOG (warning)" in text
    # under --check nothing is pending: the MTA would be restarted
    assert "not scanned: EXOUT2" in text and "Would restart the MTA on: EXIN, EXOUT" in text
    assert "pending" not in text


def test_summary_wraps_long_reasons_instead_of_cutting_them():
    built = sample_report(check_mode=False, hosts_failed=[{"host": "EXOUT2", "code": "XCON-UNREACHABLE",
                                                           "reason": "WinRM timeout " + "x" * 30 + " " + "word " * 40 + "END"}])
    text = report.render_summary(built)
    assert all(len(line) <= 100 for line in text.splitlines())
    assert "END" in text and "XCON-UNREACHABLE: WinRM timeout" in text and "..." not in text
    assert "would" not in text.lower()


def test_summary_names_the_workaround_applied_not_the_recommended_one():
    """Issue 15 item 8: a reverse-connector run read "workaround firewall_tunnel" (the recommendation)."""
    from xcon.actions.diagnose import analyse

    topo = Topology.kb()
    servers = {name: dict(server, inventory_host=name) for name, server in topo.servers().items()}
    links, _, _ = analyse(servers, [topo.firewall], "reverse_connector", {})
    assert links[0]["recommended_workaround"] == "firewall_tunnel"
    text = report.render_summary(report.build_report("run-2", False, "reverse_connector", ["EXIN", "EXOUT"], [], links, "0.1.0"))
    assert "EXIN<->EXOUT: workaround reverse_connector (requested; recommended firewall_tunnel)\n            changes 0/" in text
    assert "workaround firewall_tunnel," not in text
    links, _, _ = analyse(servers, [topo.firewall], "auto", {})
    text = report.render_summary(report.build_report("run-3", False, "auto", ["EXIN", "EXOUT"], [], links, "0.1.0"))
    assert "EXIN<->EXOUT: workaround firewall_tunnel, changes 0/" in text


def test_a_stopped_link_says_where_in_summary_and_html():
    links = links_for(Topology.kb())
    links[0]["transaction"] = {"state": "stopped", "stopped_at": {
        "step": 2, "phase": "stack_repoint", "host": "EXIN", "reason": "connection dropped", "safe": "the relays are still in place"}}
    built = report.build_report("run-4", False, "auto", ["EXIN", "EXOUT"], [], links, "0.1.0")
    built["rerun_command"] = "ansible-playbook fix-xcon.yml -e xcon_workaround=auto"
    text = report.render_summary(built)
    assert "STOPPED at step 2 (stack_repoint) on EXIN: connection dropped" in text
    assert "Re-run once the cause is removed: ansible-playbook fix-xcon.yml -e xcon_workaround=auto" in text
    html = report.render_html(built)
    assert "Stopped at step 2 (stack_repoint) on EXIN: connection dropped" in html
