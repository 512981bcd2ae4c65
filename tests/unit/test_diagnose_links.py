"""xcon.diagnose: link discovery (orientation, reverse connectors, order) and explicit workaround
requests. Factories in diagnose_helpers, scenario builders in test_diagnose."""
from __future__ import annotations

import pytest

from xcon import diagnose as dx

from diagnose_helpers import Topology, connector, run, EXIN_ADDR
from test_diagnose import healthy, kb, reverse_present, unreachable_outside


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


def test_unknown_workaround_is_rejected():
    topo, _ = kb()
    with pytest.raises(ValueError):
        dx.select_workaround(run(topo), "magic", topo.servers(), topo.firewall)
