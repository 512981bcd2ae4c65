"""The report grows with the number of links, not its square (issue 19): each link's picture carries
only its own path through the firewall, and the HTML report's fleet view groups links that share a
finding and a plan, with a status filter that needs no script."""

from __future__ import annotations

import json
import re

from test_diagnose import Topology
from xcon import report
from xcon.actions.diagnose import analyse

OTHER_LINKS = 40


def _fleet_firewall(topo):
    """The KB firewall as a fleet's firewall: also the passers and routed paths of 40 other links."""
    firewall = topo.firewall
    firewall["passers"] = list(firewall["passers"]) + [
        {"port": 102, "interface": "external", "target": f"EXIN{i:03d}"} for i in range(OTHER_LINKS)]
    firewall["routed_paths"] = list(firewall.get("routed_paths") or []) + [
        {"port": 102, "hosts": [f"EXIN{i:03d}", f"EXOUT{i:03d}"]} for i in range(OTHER_LINKS)]
    return topo


def _links(topo):
    servers = topo.servers()
    for name, server in servers.items():
        server["inventory_host"] = name
        server["write_access"] = True
    links, _, _ = analyse(servers, [topo.firewall], "firewall_tunnel", {})
    return links


def _report(links, check_mode=True):
    return report.build_report("20240101T120000Z-abc", check_mode, "firewall_tunnel", ["EXIN", "EXOUT"], [], links, "0.1.0")


def test_a_links_picture_carries_only_its_own_rules():
    alone = _report(_links(Topology.kb()))["links"][0]
    in_fleet = _report(_links(_fleet_firewall(Topology.kb())))["links"][0]
    for when in ("before", "after"):
        fw = in_fleet["topology"][when]["firewall"]
        assert fw == alone["topology"][when]["firewall"], when
        assert not any(p["target"].startswith("EXIN0") for p in fw["passers"])
        assert not fw["routed_paths"] or all("EXIN" in p["hosts"] for p in fw["routed_paths"])
    # the picture after the tunnel: the link's own routed path, and still judged the same way
    assert in_fleet["topology"]["after"]["paths"] == alone["topology"]["after"]["paths"]
    assert len(json.dumps(in_fleet["topology"])) == len(json.dumps(alone["topology"]))


def test_fleet_view_groups_links_by_finding_and_plan_with_a_scriptless_filter():
    links = _links(Topology.kb()) + _links(Topology.kb()) + _links(Topology())
    html = report.render_html(_report(links))
    groups = re.findall(r'<details class="group st-(\w+)"><summary><span class="pill \w+">\w+</span> ([^<]+)</summary>', html)
    assert groups[0] == ("error", "2 links: XCON-QUEUE-BACKLOG, XCON-TRANSPARENCY-REFUSAL, firewall_tunnel through FW1"), groups
    assert groups[1] == ("ok", "1 link: no finding, no change"), groups
    assert sum(int(label.split(" ")[0]) for _, label in groups) == 3
    # the filter: one anchor per status, CSS :target rules hide the others, no script anywhere
    for status in report.STATUSES:
        assert f'href="#show-{status}"' in html and f'id="show-{status}"' in html
        assert f"#show-{status}:target ~ .fleet .group.st-{status}" in html
    assert "<script" not in html.lower()
    assert html.index('id="fleet-groups"') < html.index('id="overview-table"')
    assert html.count('<section class="link-details st-') == 3
