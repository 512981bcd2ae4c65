"""Table-driven tests of xcon.diagnose: links, every finding code, status and auto workaround.

The factories at the top build the normalized inputs of docs/design.md; test_plan and test_report
import them from here."""
from __future__ import annotations

import copy
import ipaddress
import os

import pytest

from xcon import diagnose as dx

ORG = "CONTOSO"
FW_INTERNAL = "192.0.2.1"
FW_EXTERNAL = "198.51.100.1"
EXIN_ADDR = "192.0.2.10"
EXOUT_ADDR = "198.51.100.10"
NOW = "2024-01-01T12:00:00Z"


def x500(site, name):
    return f"/O={ORG}/OU={site}/CN=CONFIGURATION/CN=CONNECTIONS/CN={name}".upper()


def connector(name, server, site, remote_mta, stack, schedule="always", twa=True, cost=1, **extra):
    data = {
        "name": name, "dn": f"cn={name},cn=Connections,cn=Configuration,ou={site},o={ORG}",
        "x500_dn": x500(site, name), "server": server, "site": site, "organization": ORG,
        "display_name": f"X.400 {name}", "schedule": schedule, "schedule_grid": "ff" * 84,
        "two_way_alternate": twa, "stack_address": stack, "address_type": "ip", "remote_mta": remote_mta,
        "remote_password": "********", "cost": cost, "connected_domains": [], "routing_list": [],
        "selectors": {"T-Selector": ""}, "override": {"local_mta_name": "", "local_mta_password": "********"},
        "attributes": {},
    }
    data.update(extra)
    return data


MESSAGES = {  # the wording the KB articles quote (tests/fixtures/kb_events.yml)
    1290: "A locally initiated association to {dn} was refused. The failure reason provider was 0 and the reason was 0. "
          "Control block index 202. Type 1. [PLATFORM KERNEL 20 130] (12)",
    289: "A connection to {dn} could not be opened. [MTA XFER-IN 17 26] (12)",
    1294: "An association with entity {dn} ended abnormally. [198 1 0 1 PLATFORM KERNEL 20 130] (10)",
    1293: "A remotely-initiated association from {dn} was refused. The failure reason provider is 0 and the reason is 0. "
          "Control block index 1. Type 1. [PLATFORM KERNEL 26 128] (12)",
    9301: "The message transfer gateway that uses the network address {hex} and the transport stack "
          "/o=CONTOSO/ou=INSIDE/cn=Configuration/cn=Servers/cn=EXIN/cn=TCP (EXIN) could not be found. Check the "
          "configuration of the mail gateway. [BASE IL TCP/IP DRVR 8 218] (10)",
    37: "The {dn} (Adjacent-MTA) entity attempted to open an association while suspended. [MTA XFER-IN 22 35] (14)",
    659: "The queue for {dn} is backlogged with 23 messages in the queue. [MTA GATEWAY 45 512] (14)",
}


def event(event_id, conn=None, address=None, minute=0):
    dn = conn["x500_dn"] if conn else ""
    hexaddr = ipaddress.IPv4Address(address).packed.hex().upper() if address else ""
    return {"id": event_id, "time": f"2024-01-01T11:{minute:02d}:00Z", "type": "Warning", "category": "X.400 Service",
            "dn": dn or None, "connector": conn["name"] if conn else None, "address": address,
            "message": MESSAGES[event_id].format(dn=dn, hex=hexaddr)}


def evidence(server, events=(), queues=None, state="Running"):
    events = list(events)
    counts = {str(i): sum(1 for e in events if e["id"] == i) for i in (1290, 289, 1294, 1293, 9301, 37)}
    return {"server": server, "since": "2024-01-01T10:00:00Z", "now": NOW, "events": events, "counts": counts,
            "addresses_9301": sorted({e["address"] for e in events if e["id"] == 9301 and e["address"]}),
            "queues": dict(queues or {}), "work_queue": 0, "service": {"name": "MSExchangeMTA", "state": state}}


def firewall(transparency=True, passers=None, routed_paths=None, driver="raptor", product="raptor-eagle-5"):
    return {"name": "FW1", "driver": driver, "product": product, "source": "inventory", "inside": ["EXIN"],
            "outside": ["EXOUT"], "interfaces": {"internal": FW_INTERNAL, "external": FW_EXTERNAL},
            "passers": [{"port": 102, "interface": "external", "target": "EXIN"}] if passers is None else passers,
            "routed_paths": [] if routed_paths is None else routed_paths, "client_transparency": transparency}


def triple(conn, n=2):
    return [event(i, conn, minute=k) for k in range(n) for i in (1290, 289, 1294)]


class Topology:
    """The KB topology by default; tests mutate connectors, evidence and facts per case."""

    def __init__(self):
        self.in_conn = connector("TO-OUTSIDE", "EXIN", "INSIDE", "EXOUT", FW_INTERNAL)
        self.out_conn = connector("TO-INSIDE", "EXOUT", "OUTSIDE", "EXIN", FW_EXTERNAL)
        self.extra_in = []
        self.extra_out = []
        self.in_events, self.out_events = [], []
        self.out_queue = 0
        self.in_queue = 0
        self.in_error = self.out_error = None
        self.in_evidence = self.out_evidence = True
        self.in_port = self.out_port = 102
        self.firewall = firewall(transparency=False)

    # -- scenarios --------------------------------------------------------------------------------
    @classmethod
    def kb(cls):
        topo = cls()
        topo.firewall = firewall(transparency=True)
        topo.out_events = triple(topo.out_conn, 3)
        topo.in_events = [event(1293, topo.in_conn), event(9301, address=EXOUT_ADDR)]
        topo.out_queue = 23
        return topo

    def servers(self):
        def server(name, address, conns, events, queues, error, with_evidence, port):
            return {"name": name, "address": address, "fqdn": f"{name.lower()}.contoso.com", "mta_port": port,
                    "connectors": [] if error else copy.deepcopy(conns),
                    "evidence": evidence(name, events, queues) if with_evidence and not error else None,
                    "error": error}

        return {
            "EXIN": server("EXIN", EXIN_ADDR, [self.in_conn] + self.extra_in, self.in_events,
                           {self.in_conn["name"]: self.in_queue}, self.in_error, self.in_evidence, self.in_port),
            "EXOUT": server("EXOUT", EXOUT_ADDR, [self.out_conn] + self.extra_out, self.out_events,
                            {self.out_conn["name"]: self.out_queue}, self.out_error, self.out_evidence, self.out_port),
        }


# -- helpers --------------------------------------------------------------------------------------
def run(topo, options=None):
    """Diagnose the topology; return its only link."""
    links = dx.diagnose(topo.servers(), [topo.firewall], options)
    assert len(links) == 1
    return links[0]


def pairs(link):
    return {(f["code"], f["severity"]) for f in link["findings"]}


def codes(link):
    return {f["code"] for f in link["findings"]}


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


def unreachable_outside():
    topo = Topology()
    topo.out_error = {"code": dx.UNREACHABLE, "reason": "WinRM: connection refused (exout:5986)"}
    return topo, None


def wrong_directory_outside():
    topo = Topology.kb()
    topo.out_error = {"code": dx.WRONG_DIRECTORY, "reason": "LDAP://EXOUT:389 is Active Directory"}
    return topo, None


def mta_ports_differ():
    topo = Topology()
    topo.out_port = 1102
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
    ("wrong-directory", wrong_directory_outside, {(dx.WRONG_DIRECTORY, "unknown")}, set(), "unknown", "none"),
    ("mta-ports-differ", mta_ports_differ, {(dx.MTA_PORT_MISMATCH, "error")}, set(), "error", "none"),
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


# -- link discovery -------------------------------------------------------------------------------
def test_link_orientation_follows_the_firewall():
    topo = Topology.kb()
    servers = topo.servers()
    topo.firewall.update(inside=["EXOUT"], outside=["EXIN"])  # names now contradict the sides
    link = dx.discover_links(servers, [topo.firewall])[0]
    assert link["id"] == "EXOUT<->EXIN"
    assert link["inside"] == {"host": "EXOUT", "connector": "TO-INSIDE", "reverse_connector": None}
    assert link["firewall"] == "FW1"


def test_link_without_firewall_is_alphabetical():
    link = dx.discover_links(Topology().servers(), [])[0]
    assert (link["id"], link["inside"]["host"], link["firewall"]) == ("EXIN<->EXOUT", "EXIN", None)


def test_unreadable_server_still_forms_a_link():
    topo, _ = unreachable_outside()
    link = dx.discover_links(topo.servers(), [topo.firewall])[0]
    assert link["outside"] == {"host": "EXOUT", "connector": None}
    assert link["inside"]["connector"] == "TO-OUTSIDE"


def test_primary_reverse_and_case_insensitive_remote_mta():
    topo, _ = reverse_present()
    topo.in_conn["remote_mta"] = "exout"
    link = dx.discover_links(topo.servers(), [topo.firewall])[0]
    assert link["inside"]["connector"] == "TO-OUTSIDE"
    assert link["inside"]["reverse_connector"] == "TO-OUTSIDE-REVERSE"


def test_links_are_deterministic_and_sorted():
    topo = Topology()
    servers = topo.servers()
    servers["EXTHIRD"] = {"name": "EXTHIRD", "address": "203.0.113.5", "fqdn": "exthird.contoso.com", "error": None, "evidence": None,
                          "connectors": [connector("TO-IN", "EXTHIRD", "THIRD", "EXIN", EXIN_ADDR)]}
    servers["EXIN"]["connectors"].append(connector("TO-THIRD", "EXIN", "INSIDE", "EXTHIRD", "203.0.113.5"))
    ids = [l["id"] for l in dx.discover_links(servers, [topo.firewall])]
    reordered = dict(reversed(list(servers.items())))
    assert ids == ["EXIN<->EXOUT", "EXIN<->EXTHIRD"]
    assert [l["id"] for l in dx.discover_links(reordered, [topo.firewall])] == ids


# -- explicit requests ----------------------------------------------------------------------------
@pytest.mark.parametrize("requested", ["reverse_connector", "firewall_tunnel", "transparency_off"])
def test_explicit_request_is_honoured_on_the_kb_fault(requested):
    topo, _ = kb()
    link = run(topo)
    assert dx.select_workaround(link, requested, topo.servers(), topo.firewall)[0] == requested


@pytest.mark.parametrize("requested", ["reverse_connector", "firewall_tunnel", "transparency_off"])
def test_explicit_request_on_a_healthy_link_plans_nothing(requested):
    topo, _ = healthy()
    link = run(topo)
    workaround, reason = dx.select_workaround(link, requested, topo.servers(), topo.firewall)
    assert workaround == "none" and "does not show" in reason


def test_auto_never_chooses_transparency_off():
    for case in CASES:
        topo, options = case[1]()
        assert run(topo, options)["recommended_workaround"] != "transparency_off"


def test_unknown_workaround_is_rejected():
    topo, _ = kb()
    with pytest.raises(ValueError):
        dx.select_workaround(run(topo), "magic", topo.servers(), topo.firewall)


# -- the diagnosis on the real texts the KB articles quote (tests/fixtures/kb_events.yml) ----------
def _kb_article_events():
    import yaml

    from xcon import evidence as ev

    path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "kb_events.yml")
    with open(path, encoding="utf-8") as handle:
        fixtures = yaml.safe_load(handle)

    def parsed(article, event_id, index=0):
        found = [f for f in fixtures if f["article"] == article and f["id"] == event_id][index]
        return ev.parse_event({"id": event_id, "time": NOW, "type": found["type"], "category": found["category"],
                               "message": found["message"]})
    return parsed


def kb_article_topology(with_9301):
    """Q196381's link with the article's own events: the outside logs the 1290/289/1294 triple for
    ConnectorName, the inside 1293 (Q196381) and, when `with_9301`, Q193380's 9301 whose address
    91F5C11B is 145.245.193.27, here the outside server's address."""
    parsed = _kb_article_events()
    topo = Topology.kb()
    topo.out_conn = connector("ConnectorName", "EXOUT", "SiteName", "EXIN", FW_EXTERNAL)
    topo.in_conn = connector("ConnectorName", "EXIN", "SiteName", "EXOUT", FW_INTERNAL)
    topo.out_events = [parsed("Q196381", i) for _ in range(3) for i in (1290, 289, 1294)]
    topo.in_events = [parsed("Q196381", 1293)] + ([parsed("Q193380", 9301)] if with_9301 else [])
    servers = topo.servers()
    servers["EXOUT"]["address"] = "145.245.193.27"
    return topo, servers


def test_kb_article_texts_name_the_fault_with_9301():
    topo, servers = kb_article_topology(with_9301=True)
    link = dx.diagnose(servers, [topo.firewall])[0]
    kb_finding = next(f for f in link["findings"] if f["code"] == dx.TRANSPARENCY_REFUSAL)
    assert kb_finding["severity"] == "error" and link["status"] == "error"
    evidence = kb_finding["evidence"]
    assert evidence["basis"] == "observed" and evidence["confirmed_by_9301"] is True
    assert evidence["addresses_9301_decoded"] == [{"hex": "91F5C11B", "address": "145.245.193.27", "outside_server": True}]
    assert "91F5C11B = 145.245.193.27" in kb_finding["message"]
    assert evidence["outside_events"] == {"1290": 3, "289": 3, "1294": 3}
    assert link["recommended_workaround"] == "firewall_tunnel"


def test_kb_article_texts_name_the_fault_without_9301():
    """5.5 SP2 and later log 9301 only after a failed reverse lookup (Q189345), builds 2354-2620
    never (Q234962): the same fault is named from 1290/289/1294 + 1293 + the Stack, basis stated."""
    topo, servers = kb_article_topology(with_9301=False)
    link = dx.diagnose(servers, [topo.firewall])[0]
    with_9301 = dx.diagnose(kb_article_topology(with_9301=True)[1], [topo.firewall])[0]
    assert pairs(link) == pairs(with_9301) and link["recommended_workaround"] == with_9301["recommended_workaround"]
    kb_finding = next(f for f in link["findings"] if f["code"] == dx.TRANSPARENCY_REFUSAL)
    evidence = kb_finding["evidence"]
    assert kb_finding["severity"] == "error" and evidence["basis"] == "observed"
    assert evidence["confirmed_by_9301"] is False and evidence["addresses_9301_decoded"] == []
    detail = evidence["basis_detail"]
    for part in ("9 events 1290/289/1294 on EXOUT", "1 events 1293 on EXIN", "internal address 192.0.2.1",
                 "no event 9301", "Q189345"):
        assert part in detail, part
    assert "no event 9301" in kb_finding["message"]


def test_kb_article_never_side_logs_37_and_1293():
    """Q169716: the side scheduled Never logs 37 (category Security) with 1293; the peer logs the
    triple. That is XCON-SCHEDULE-NEVER, never the firewall fault."""
    parsed = _kb_article_events()
    topo, servers = kb_article_topology(with_9301=False)
    servers["EXIN"]["connectors"][0]["schedule"] = "never"
    never = parsed("Q169716", 37)
    assert never["category"] == "Security" and never["connector"] == "ConnectorName"
    servers["EXIN"]["evidence"] = evidence("EXIN", [never, parsed("Q196381", 1293)])
    link = dx.diagnose(servers, [topo.firewall])[0]
    assert dx.SCHEDULE_NEVER in codes(link) and dx.TRANSPARENCY_REFUSAL not in codes(link)
    finding = next(f for f in link["findings"] if f["code"] == dx.SCHEDULE_NEVER)
    assert finding["evidence"]["events_37"] == 1
