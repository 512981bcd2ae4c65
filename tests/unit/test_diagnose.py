"""Table-driven tests of xcon.diagnose: every finding code, status and auto workaround.

The factories are in diagnose_helpers; the scenario builders and CASES are here (test_plan and
others import the factories through this module too). Link discovery and explicit workaround
requests: test_diagnose_links; the KB articles' own event texts: test_diagnose_kb_texts."""
from __future__ import annotations

import os

import pytest

from xcon import diagnose as dx

from diagnose_helpers import (
    EXIN_ADDR, EXOUT_ADDR, FW_EXTERNAL, FW_INTERNAL, Topology, codes, connector, event, pairs, run, triple,
)


# -- scenario builders (each returns (topology, options)) -----------------------------------------
def kb():
    return Topology.kb(), None


def kb_no_firewall_changes():
    return Topology.kb(), {"firewall_changes_possible": False}


def kb_other_connector_uses_relay():
    topo = Topology.kb()
    topo.extra_in = [connector("TO-PARTNER", "EXIN", "INSIDE", "EXPARTNER", FW_INTERNAL)]
    return topo, None


def kb_unknown_driver():
    topo = Topology.kb()
    topo.firewall["driver"] = "manual"
    return topo, None


def kb_config_only():
    topo = Topology.kb()
    topo.in_evidence = topo.out_evidence = False
    return topo, None


def kb_outside_evidence_only():
    topo = Topology.kb()
    topo.in_evidence = False
    return topo, None


def kb_queue_drained():
    topo = Topology.kb()
    topo.out_queue = 0
    return topo, None


def healthy():
    return Topology(), None


def healthy_declared_transparency_no_refusals():
    topo = Topology()
    topo.firewall["client_transparency"] = True  # evidence outranks the declaration
    return topo, None


def never_inside():
    topo = Topology.kb()
    topo.in_conn["schedule"] = "never"
    topo.in_events = [event(37, topo.in_conn, minute=m) for m in range(3)]
    topo.out_events = triple(topo.out_conn, 3)
    return topo, None


def never_outside():
    topo = Topology()
    topo.out_conn["schedule"] = "never"
    topo.out_events = [event(37, topo.out_conn)]
    topo.in_events = triple(topo.in_conn, 1)
    return topo, None


def both_remote():
    topo = Topology()
    topo.in_conn["schedule"] = topo.out_conn["schedule"] = "remote"
    return topo, None


def twa_off_inside():
    topo = Topology()
    topo.in_conn["two_way_alternate"] = False
    return topo, None


def twa_off_relied_on():
    topo = Topology()
    topo.in_conn["two_way_alternate"] = False
    topo.out_conn["schedule"] = "remote"
    return topo, None


def selected_times():
    topo = Topology()
    topo.out_conn["schedule"] = "selected"
    return topo, None


def wrong_stack():
    topo = Topology()
    topo.in_conn["stack_address"] = "10.9.9.9"
    return topo, None


def stacks_at_peers():
    topo = Topology()
    topo.in_conn["stack_address"] = "exout.contoso.com"
    topo.out_conn["stack_address"] = EXIN_ADDR
    topo.firewall.update(passers=[], routed_paths=[{"hosts": ["EXIN", "EXOUT"], "port": 102}])
    return topo, None


def backlog():
    topo = Topology()
    topo.out_queue = 50
    return topo, None


def backlog_below_custom_threshold():
    topo = Topology()
    topo.out_queue = 50
    return topo, {"queue_threshold": 100}


def contradicted_transparency():
    topo = Topology.kb()
    topo.firewall["client_transparency"] = False
    return topo, None


def contradicted_transparency_no_9301():
    """Declared off, and the inside MTA (SP2 or later) logs 1293 but no 9301."""
    topo = Topology.kb()
    topo.firewall["client_transparency"] = False
    topo.in_events = [e for e in topo.in_events if e["id"] != 9301]
    return topo, None


def contradicted_no_passer():
    topo = Topology.kb()
    topo.firewall["passers"] = []
    return topo, None


def contradicted_rewrite():
    topo = Topology()
    topo.firewall["client_transparency"] = True
    topo.in_conn["stack_address"] = EXOUT_ADDR
    topo.in_events = [event(9301, address=FW_INTERNAL)]
    return topo, None


def reverse_present():
    topo = Topology()
    topo.firewall["client_transparency"] = True
    topo.extra_in = [connector("TO-OUTSIDE-REVERSE", "EXIN", "INSIDE", "EXOUT", EXOUT_ADDR, schedule="remote", cost=99)]
    return topo, None


def reverse_present_refusals_remain():
    topo, _ = reverse_present()
    topo.out_events = triple(topo.out_conn, 1)
    return topo, None


def reverse_wrong_stack():
    topo = Topology.kb()
    topo.extra_in = [connector("TO-OUTSIDE-REVERSE", "EXIN", "INSIDE", "EXOUT", "10.1.1.1", schedule="remote", cost=99)]
    return topo, None


def firewall_without_facts():
    """The KB fault behind a firewall whose inventory entry has only connection variables."""
    from xcon import firewall as fw
    topo = Topology.kb()
    topo.firewall = fw.normalize_facts("FW1", {})
    return topo, None


def unreachable_outside():
    topo = Topology()
    topo.out_error = {"code": dx.UNREACHABLE, "reason": "WinRM: connection refused (exout:5986)"}
    return topo, None


def wrong_directory_outside():
    topo = Topology.kb()
    topo.out_error = {"code": dx.WRONG_DIRECTORY, "reason": "LDAP://EXOUT:389 is Active Directory"}
    return topo, None


def no_directory_inside():
    topo = Topology.kb()
    topo.in_error = {"code": dx.NO_DIRECTORY, "reason": "EXIN runs Exchange 4.0 (no LDAP) and no other server of its "
                     "organisation in the inventory can be searched: give xcon_directory_host"}
    return topo, None


def mta_ports_differ():
    topo = Topology()
    topo.out_port = 1102
    return topo, None


def mta_port_unread():
    # The remote registry denied the read (anonymous second hop): the port is unknown, not 102.
    topo = Topology()
    topo.out_port = 1102
    topo.port_errors = {"EXIN": "AccessDenied (0x80070005): Access is denied."}
    return topo, None


def kb_stack_host_names():
    # Stack addresses written as host names; the Windows hosts' resolvers map them to the interfaces.
    topo = Topology.kb()
    topo.in_conn.update(stack_address="fw1-in.inside.contoso.com", address_type="hostname", stack_resolved=[FW_INTERNAL])
    topo.out_conn.update(stack_address="fw1-out.contoso.com", address_type="hostname", stack_resolved=[FW_EXTERNAL])
    return topo, None


def stack_name_unresolved():
    topo = Topology()
    topo.in_conn.update(stack_address="fw1-in.inside.contoso.com", address_type="hostname", stack_resolved=[],
                        stack_resolve_error="No such host is known")
    return topo, None


def access_denied_inside():
    topo = Topology.kb()
    topo.in_error = {"code": dx.ACCESS_DENIED, "reason": "CONTOSO\\xcon lacks rights on the site container"}
    return topo, None


def unreachable_and_backlog():
    topo, _ = unreachable_outside()
    topo.in_queue = 40
    return topo, None


def unreachable_and_never():
    topo, _ = unreachable_outside()
    topo.in_conn["schedule"] = "never"
    return topo, None


def connector_missing():
    topo = Topology()
    topo.out_conn["remote_mta"] = "EXELSEWHERE"
    return topo, None


def refusals_unexplained():
    topo, _ = stacks_at_peers()
    topo.out_events = triple(topo.out_conn, 2)
    return topo, None


# (case, builder, expected (code, severity) present, codes absent, status, auto workaround)
CASES = [
    ("kb", kb, {(dx.TRANSPARENCY_REFUSAL, "error"), (dx.QUEUE_BACKLOG, "warning")}, {dx.FACTS_CONTRADICTED}, "error", "firewall_tunnel"),
    ("kb-no-firewall-changes", kb_no_firewall_changes, {(dx.TRANSPARENCY_REFUSAL, "error")}, set(), "error", "reverse_connector"),
    ("kb-relay-shared", kb_other_connector_uses_relay, {(dx.TRANSPARENCY_REFUSAL, "error")}, set(), "error", "reverse_connector"),
    ("kb-unknown-driver", kb_unknown_driver, {(dx.TRANSPARENCY_REFUSAL, "error")}, set(), "error", "reverse_connector"),
    ("kb-config-only", kb_config_only, {(dx.TRANSPARENCY_REFUSAL, "warning")}, set(), "warning", "firewall_tunnel"),
    ("kb-outside-only", kb_outside_evidence_only, {(dx.TRANSPARENCY_REFUSAL, "warning")}, set(), "warning", "firewall_tunnel"),
    ("kb-queue-drained", kb_queue_drained, {(dx.TRANSPARENCY_REFUSAL, "error")}, {dx.QUEUE_BACKLOG}, "error", "firewall_tunnel"),
    ("healthy", healthy, set(), set(dx.FINDING_CODES), "ok", "none"),
    ("healthy-declared-on", healthy_declared_transparency_no_refusals, set(), set(dx.FINDING_CODES), "ok", "none"),
    ("never-inside", never_inside, {(dx.SCHEDULE_NEVER, "error")}, {dx.TRANSPARENCY_REFUSAL, dx.REFUSALS_UNEXPLAINED}, "error", "none"),
    ("never-outside", never_outside, {(dx.SCHEDULE_NEVER, "error")}, {dx.TRANSPARENCY_REFUSAL}, "error", "none"),
    ("both-remote", both_remote, {(dx.BOTH_REMOTE, "error")}, {dx.SCHEDULE_NOT_ALWAYS}, "error", "none"),
    ("twa-off", twa_off_inside, {(dx.TWA_OFF, "warning")}, set(), "warning", "none"),
    ("twa-off-relied", twa_off_relied_on, {(dx.TWA_OFF, "error"), (dx.SCHEDULE_NOT_ALWAYS, "warning")}, set(), "error", "none"),
    ("selected", selected_times, {(dx.SCHEDULE_NOT_ALWAYS, "warning")}, set(), "warning", "none"),
    ("wrong-stack", wrong_stack, {(dx.STACK_ADDRESS, "warning")}, set(), "warning", "none"),
    ("stacks-at-peers", stacks_at_peers, set(), set(dx.FINDING_CODES), "ok", "none"),
    ("backlog", backlog, {(dx.QUEUE_BACKLOG, "warning")}, {dx.TRANSPARENCY_REFUSAL}, "warning", "none"),
    ("backlog-threshold", backlog_below_custom_threshold, set(), {dx.QUEUE_BACKLOG}, "ok", "none"),
    ("contradicted-transparency", contradicted_transparency, {(dx.TRANSPARENCY_REFUSAL, "error"), (dx.FACTS_CONTRADICTED, "warning")}, set(), "error", "firewall_tunnel"),
    ("contradicted-transparency-no-9301", contradicted_transparency_no_9301, {(dx.TRANSPARENCY_REFUSAL, "error"), (dx.FACTS_CONTRADICTED, "warning")}, set(), "error", "firewall_tunnel"),
    ("contradicted-no-passer", contradicted_no_passer, {(dx.TRANSPARENCY_REFUSAL, "error"), (dx.FACTS_CONTRADICTED, "warning")}, set(), "error", "firewall_tunnel"),
    ("contradicted-rewrite", contradicted_rewrite, {(dx.FACTS_CONTRADICTED, "warning")}, {dx.TRANSPARENCY_REFUSAL}, "warning", "none"),
    ("reverse-present", reverse_present, {(dx.REVERSE_PRESENT, "info")}, {dx.TRANSPARENCY_REFUSAL, dx.REVERSE_WRONG_STACK}, "ok", "none"),
    ("reverse-refusals-remain", reverse_present_refusals_remain, {(dx.REVERSE_PRESENT, "info"), (dx.REFUSALS_UNEXPLAINED, "warning")}, {dx.TRANSPARENCY_REFUSAL}, "warning", "none"),
    ("reverse-wrong-stack", reverse_wrong_stack, {(dx.REVERSE_WRONG_STACK, "warning"), (dx.TRANSPARENCY_REFUSAL, "error")}, {dx.REVERSE_PRESENT}, "error", "reverse_connector"),
    ("unreachable", unreachable_outside, {(dx.UNREACHABLE, "unknown")}, set(), "unknown", "none"),
    ("firewall-unknown", firewall_without_facts, {(dx.FIREWALL_UNKNOWN, "unknown")}, set(), "unknown", "none"),
    ("wrong-directory", wrong_directory_outside, {(dx.WRONG_DIRECTORY, "unknown")}, set(), "unknown", "none"),
    ("no-directory", no_directory_inside, {(dx.NO_DIRECTORY, "unknown")}, set(), "unknown", "none"),
    ("mta-ports-differ", mta_ports_differ, {(dx.MTA_PORT_MISMATCH, "error")}, set(), "error", "none"),
    ("mta-port-unread", mta_port_unread, {(dx.MTA_PORT_UNKNOWN, "warning")}, {dx.MTA_PORT_MISMATCH}, "warning", "none"),
    ("kb-stack-host-names", kb_stack_host_names, {(dx.TRANSPARENCY_REFUSAL, "error")}, {dx.STACK_ADDRESS}, "error", "firewall_tunnel"),
    ("stack-name-unresolved", stack_name_unresolved, {(dx.STACK_ADDRESS, "warning")}, set(), "warning", "none"),
    ("access-denied", access_denied_inside, {(dx.ACCESS_DENIED, "unknown")}, {dx.TRANSPARENCY_REFUSAL}, "unknown", "none"),
    ("unknown-beats-warning", unreachable_and_backlog, {(dx.UNREACHABLE, "unknown"), (dx.QUEUE_BACKLOG, "warning")}, set(), "unknown", "none"),
    ("error-beats-unknown", unreachable_and_never, {(dx.UNREACHABLE, "unknown"), (dx.SCHEDULE_NEVER, "error")}, set(), "error", "none"),
    ("connector-missing", connector_missing, {(dx.CONNECTOR_MISSING, "error")}, set(), "error", "none"),
    ("refusals-unexplained", refusals_unexplained, {(dx.REFUSALS_UNEXPLAINED, "warning")}, {dx.TRANSPARENCY_REFUSAL}, "warning", "none"),
]


@pytest.mark.parametrize("builder,present,absent,status,workaround", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_diagnosis(builder, present, absent, status, workaround):
    topo, options = builder()
    link = run(topo, options)
    assert present <= pairs(link), link["findings"]
    assert not (absent & (codes(link) - {code for code, _ in present})), link["findings"]
    assert link["status"] == status
    assert link["recommended_workaround"] == workaround
    assert link["reason"]


def test_every_code_has_a_case_and_a_page():
    covered = {code for case in CASES for code, _ in case[2]}
    assert covered == set(dx.FINDING_CODES)
    pages = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "findings")
    assert {f"{code}.md" for code in dx.FINDING_CODES} <= set(os.listdir(pages))


def test_kb_finding_evidence_is_complete():
    link = run(*kb())
    finding = next(f for f in link["findings"] if f["code"] == dx.TRANSPARENCY_REFUSAL)
    evidence = finding["evidence"]
    assert finding["host"] == "EXOUT" and finding["connector"] == "TO-INSIDE"
    assert evidence["basis"] == "observed"
    assert evidence["outside_events"] == {"1290": 3, "289": 3, "1294": 3}
    assert evidence["inside_events"] == {"1293": 1, "9301": 1}
    assert evidence["addresses_9301"] == [EXOUT_ADDR]
    assert evidence["outside_queue"] == 23
    assert any("was refused" in sample["message"] for sample in evidence["outside_samples"])
    assert any("could not be found" in sample["message"] for sample in evidence["inside_samples"])
    assert "KB Q196381" in finding["message"]


def test_never_evidence_counts_event_37_and_peer_refusals():
    link = run(*never_inside())
    finding = next(f for f in link["findings"] if f["code"] == dx.SCHEDULE_NEVER)
    assert finding["host"] == "EXIN"
    assert finding["evidence"]["events_37"] == 3
    assert finding["evidence"]["peer_refusals"] == {"1290": 3, "289": 3, "1294": 3}


def test_config_only_finding_says_its_basis():
    link = run(*kb_config_only())
    finding = next(f for f in link["findings"] if f["code"] == dx.TRANSPARENCY_REFUSAL)
    assert finding["evidence"]["basis"] == "configuration"


def test_counts_are_used_when_events_are_not_listed():
    topo = Topology.kb()
    servers = topo.servers()
    for server in servers.values():
        server["evidence"]["events"] = []
    link = dx.diagnose(servers, [topo.firewall])[0]
    assert (dx.TRANSPARENCY_REFUSAL, "error") in pairs(link)


def test_auto_never_chooses_transparency_off():
    for case in CASES:
        topo, options = case[1]()
        assert run(topo, options)["recommended_workaround"] != "transparency_off"


# -- issue 22, case 4 (input part): a firewall with no facts is unknown and stops its links ------------
def test_a_firewall_without_facts_makes_every_link_it_may_sit_on_unknown_and_plans_nothing():
    from xcon import firewall as fw
    topo = Topology.kb()
    servers, firewall = topo.servers(), topo.firewall
    bare = fw.normalize_facts(firewall["name"], {})
    assert bare["missing"] == ["inside", "outside", "interfaces.internal", "interfaces.external"]
    for facts in (bare, {"name": firewall["name"], "error": "the raptor driver could not read FW1 (ValueError: x)"},
                  dict(firewall, error="the driver could not read it")):
        (link,) = dx.diagnose(servers, [facts], requested="auto")
        codes = {f["code"]: f for f in link["findings"]}
        assert "XCON-FIREWALL-UNKNOWN" in codes and codes["XCON-FIREWALL-UNKNOWN"]["severity"] == "unknown", link["findings"]
        assert link["status"] in ("unknown", "error") and link["workaround_chosen"] == "none", link
        assert link["status"] != "ok"
    # a known firewall elsewhere does not hide it; a link behind a known firewall is not touched by it
    (link,) = dx.diagnose(servers, [firewall, dict(bare, name="FW2")], requested="auto")
    assert "XCON-FIREWALL-UNKNOWN" not in {f["code"] for f in link["findings"]}
