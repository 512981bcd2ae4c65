"""Factories of the normalized inputs of docs/design.md (servers, connectors, events, evidence, firewall)
and the KB topology, shared by the xcon.diagnose tests and by test_plan, test_report and others."""
from __future__ import annotations

import copy
import ipaddress

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
        self.port_errors = {}       # server -> why its RFC1006 port could not be read (port unknown)
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

        servers = {
            "EXIN": server("EXIN", EXIN_ADDR, [self.in_conn] + self.extra_in, self.in_events,
                           {self.in_conn["name"]: self.in_queue}, self.in_error, self.in_evidence, self.in_port),
            "EXOUT": server("EXOUT", EXOUT_ADDR, [self.out_conn] + self.extra_out, self.out_events,
                            {self.out_conn["name"]: self.out_queue}, self.out_error, self.out_evidence, self.out_port),
        }
        for name, reason in self.port_errors.items():
            servers[name].update(mta_port=None, mta_port_error=reason)
        return servers


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
