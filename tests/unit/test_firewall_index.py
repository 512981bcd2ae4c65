"""The firewall's passers indexed once per analysis (xcon.diagnose.links.indexed) answer exactly what
scanning them for every link answered: a fleet's diagnosis, plan and pictures are the same."""

from __future__ import annotations

import contextlib
import copy

from test_diagnose import Topology
from xcon.actions import diagnose as xdiagnose
from xcon.diagnose import links as xlinks


def _fleet(topo):
    """The KB firewall carrying 40 other links' rules, other ports, a hostless routed path, a passer
    without a target and one listening on the link's own Stack address for another target."""
    firewall = topo.firewall
    firewall["passers"] = list(firewall["passers"]) + [
        {"port": 102, "interface": "external", "target": f"EXIN{i:03d}", "address": f"203.0.113.{i}"} for i in range(40)] + [
        {"port": 25, "interface": "external", "target": "EXIN"}, {"port": 102, "interface": "internal"},
        {"port": 102, "interface": "internal", "target": "ELSEWHERE", "address": firewall["passers"][0].get("address")}]
    firewall["routed_paths"] = list(firewall.get("routed_paths") or []) + [
        {"port": 102, "hosts": [f"EXIN{i:03d}", f"EXOUT{i:03d}"]} for i in range(40)] + [
        {"port": 102, "hosts": []}, {"port": 25, "hosts": ["EXIN", "EXOUT"]}, {"port": 102, "hosts": ["EXIN", "EXOUT"]}]
    return topo


def _analysed(topo, workaround):
    servers = topo.servers()
    for name, server in servers.items():
        server.update(inventory_host=name, write_access=True)
    return xdiagnose.analyse(servers, [topo.firewall], workaround, {})


def test_indexed_and_scanned_answers_are_the_same(monkeypatch):
    for workaround in ("auto", "firewall_tunnel", "reverse_connector"):
        indexed = _analysed(_fleet(Topology.kb()), workaround)
        with monkeypatch.context() as patch:
            patch.setattr(xlinks, "indexed", lambda firewalls: contextlib.nullcontext())
            scanned = _analysed(_fleet(Topology.kb()), workaround)
        assert indexed == scanned, workaround
        assert indexed[0][0]["topology"]["before"]["firewall"]["routed_paths"] == [{"port": 102, "hosts": []},
                                                                                   {"port": 102, "hosts": ["EXIN", "EXOUT"]}]


def test_a_firewall_changed_after_indexing_is_scanned_again():
    firewall = copy.deepcopy(_fleet(Topology.kb()).firewall)
    with xlinks.indexed([firewall]):
        assert xlinks.index_of(firewall) is not None
        firewall["passers"] = firewall["passers"] + [{"port": 102, "interface": "internal", "target": "NEW", "address": "198.51.100.99"}]
        assert xlinks.index_of(firewall) is None
        assert "198.51.100.99" in xlinks.interface_addresses(firewall)
    assert xlinks.index_of(firewall) is None   # outside the analysis: no index at all
