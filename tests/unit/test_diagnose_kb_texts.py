"""xcon.diagnose on the real event texts the KB articles quote (tests/fixtures/kb_events.yml):
the fault named with and without event 9301, and the Never side. Factories in diagnose_helpers."""
from __future__ import annotations

import os

from xcon import diagnose as dx

from diagnose_helpers import FW_EXTERNAL, FW_INTERNAL, NOW, Topology, codes, connector, evidence, pairs


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
