"""The lab model: topology validation, directory schema, and KB Q196381 happening and going away."""
import copy
import os

import pytest
import yaml

from xconlab_lab import schema
from xconlab_lab.model import Lab, OpError
from xconlab_lab.topology import TopologyError, generate, validate

HERE = os.path.dirname(os.path.abspath(__file__))
TOPOLOGIES = os.path.join(os.path.dirname(HERE), "lab", "topologies")
USER = "CONTOSO\\xcon"
IN_CONN = "cn=TO-OUTSIDE,cn=Connections,cn=Configuration,ou=INSIDE,o=CONTOSO"
OUT_CONN = "cn=TO-INSIDE,cn=Connections,cn=Configuration,ou=OUTSIDE,o=CONTOSO"
IN_PARENT = "cn=Connections,cn=Configuration,ou=INSIDE,o=CONTOSO"
TRIPLE = {1290, 289, 1294}
HEX_EXOUT = "C633640A"                       # 198.51.100.10 as four octets (KB Q193380)


def topo(name):
    return os.path.join(TOPOLOGIES, name)


def kb_data():
    with open(topo("kb.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def op(lab, endpoint, op_name, server=None, **params):
    """Run one op as the admin user; ``server`` defaults to the endpoint itself."""
    return lab.execute_op(endpoint, USER, op_name, dict(params, server=server or endpoint))


def ids(lab, server, since_record=0):
    return [e["id"] for e in lab.snapshot()["servers"][server]["events"] if e["record"] > since_record]


def last_record(lab, server):
    events = lab.snapshot()["servers"][server]["events"]
    return events[-1]["record"] if events else 0


def set_stack(lab, server, dn, address):
    op(lab, server, "dir_modify", dn=dn, changes=[
        {"attribute": "N-Address", "action": "replace", "values": [address.encode().hex()]},
        {"attribute": "N-Address-Type", "action": "replace", "values": [1]}])


# ---- topology validation -----------------------------------------------------------------------
@pytest.mark.parametrize("mutate, key, expected", [
    (lambda d: d["servers"]["EXIN"]["connectors"][0].update(schedule="sometimes"),
     "servers.EXIN.connectors[0].schedule", "always | never | selected | remote"),
    (lambda d: d["servers"]["EXIN"].update(colour="red"), "servers.EXIN.colour", "unknown key"),
    (lambda d: d["servers"]["EXOUT"].update(address="198.51.100.300"), "servers.EXOUT.address", "IPv4 or IPv6"),
    (lambda d: d["servers"]["EXIN"]["connectors"][0].update(remote_mta="NOPE"),
     "servers.EXIN.connectors[0].remote_mta", "server defined"),
    (lambda d: d["servers"]["EXIN"]["connectors"].append(copy.deepcopy(d["servers"]["EXIN"]["connectors"][0])),
     "servers.EXIN.connectors[1].name", "unique"),
    (lambda d: d["firewalls"]["FW1"].update(outside=["EXOUT", "EXIN"]), "firewalls.FW1.outside", "not also inside"),
    (lambda d: d["firewalls"]["FW1"]["passers"][0].update(target="GHOST"),
     "firewalls.FW1.passers[0].target", "server defined"),
    (lambda d: d.update(version=2), "version", "1"),
    (lambda d: d["traffic"][0].update(per_minute=-1), "traffic[0].per_minute", ">= 0"),
    (lambda d: d["servers"]["EXIN"]["winrm"].update(rights="root"), "servers.EXIN.winrm.rights", "read-only"),
])
def test_topology_errors_name_file_key_and_expectation(mutate, key, expected):
    data = kb_data()
    mutate(data)
    with pytest.raises(TopologyError) as info:
        validate(data, source="kb-broken.yml")
    message = str(info.value)
    assert message.startswith("topology kb-broken.yml: ") and key in message and expected in message
    assert info.value.key == key and info.value.file == "kb-broken.yml"


def test_topology_file_errors_and_generator(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 1\norganization: X\nservers: [1, 2]\n", encoding="utf-8")
    with pytest.raises(TopologyError) as info:
        Lab.from_file(str(bad))
    assert str(bad) in str(info.value) and "servers" in str(info.value) and "mapping" in str(info.value)
    data = generate(3, firewalls=2)
    assert sorted(data["servers"])[:2] == ["EXIN001", "EXIN002"]
    lab = Lab.from_dict(data, source="<gen>")
    lab.advance(30)
    snap = lab.snapshot()
    assert all(9301 in ids(lab, f"EXIN00{i}") for i in (1, 2, 3))
    healthy = Lab.from_dict(generate(3, firewalls=2, healthy=True))
    healthy.advance(30)
    assert all(not TRIPLE & set(ids(healthy, n)) for n in healthy.servers)
    assert snap["time"] == "2026-01-05T09:30:00Z"
    # ten firewalls or more do not fit beside the servers in IPv4 .1-.9: IPv6, still validated
    many = generate(12, firewalls=10)
    assert ":" in many["firewalls"]["FW10"]["interfaces"]["internal"]


# ---- schema ------------------------------------------------------------------------------------
@pytest.fixture
def kb():
    return Lab.from_file(topo("kb.yml"))


def modify_error(lab, attribute, values, server="EXIN", dn=IN_CONN, user=USER):
    with pytest.raises(OpError) as info:
        lab.execute_op(server, user, "dir_modify", {"server": server, "dn": dn, "changes": [
            {"attribute": attribute, "action": "replace", "values": values}]})
    return info.value


def test_schema_checks(kb):
    assert modify_error(kb, "Activation-Schedule", ["ff" * 83]).category == "ConstraintViolation"
    assert modify_error(kb, "N-Address", ["41" * 51]).hresult == "0x8007202F"
    assert modify_error(kb, "N-Address", ["zz"]).category == "InvalidSyntax"
    assert modify_error(kb, "Activation-Style", [4]).category == "ConstraintViolation"
    assert modify_error(kb, "Activation-Style", ["always"]).hresult == "0x80072015"
    assert modify_error(kb, "No-Such-Attribute", [1]).hresult == "0x8007200C"
    assert modify_error(kb, "Two-Way-Alternate-Facility", [True, False]).category == "ConstraintViolation"
    done = op(kb, "EXIN", "dir_modify", dn=IN_CONN, changes=[
        {"attribute": "Activation-Schedule", "action": "replace", "values": ["ff" * 84]},
        {"attribute": "Activation-Style", "action": "replace", "values": [1]}])
    assert done["modified"] == ["Activation-Schedule", "Activation-Style"]
    with pytest.raises(OpError) as info:           # all-or-nothing: the second change fails, nothing written
        op(kb, "EXIN", "dir_modify", dn=IN_CONN, changes=[
            {"attribute": "Activation-Style", "action": "replace", "values": [2]},
            {"attribute": "Home-MTA", "action": "clear"}])
    assert info.value.category == "ObjectClassViolation"
    style = op(kb, "EXIN", "dir_search", base=IN_CONN, scope="base", attributes=["Activation-Style"])
    assert style["entries"][0]["attributes"] == {"Activation-Style": 1}


def test_schema_mandatory_exists_missing_and_rights(kb):
    attrs = {"Delivery-Mechanism": 3, "N-Address": "41"}
    with pytest.raises(OpError) as info:
        op(kb, "EXIN", "dir_create", parent=IN_PARENT, cn="NEW", **{"class": "RFC1006-X400-Link"}, attributes=attrs)
    assert info.value.category == "ObjectClassViolation" and "Home-MTA" in info.value.message
    with pytest.raises(OpError) as info:
        op(kb, "EXIN", "dir_create", parent=IN_PARENT, cn="TO-OUTSIDE", **{"class": "RFC1006-X400-Link"},
           attributes={})
    assert info.value.category == "AlreadyExists" and info.value.hresult == "0x80071392"
    with pytest.raises(OpError) as info:
        op(kb, "EXIN", "dir_delete", dn="cn=GONE," + IN_PARENT)
    assert info.value.hresult == "0x80072030"
    with pytest.raises(OpError) as info:
        op(kb, "EXIN", "dir_search", base="cn=a,,o=x")
    assert info.value.hresult == "0x80072032"
    with pytest.raises(OpError) as info:
        kb.execute_op("EXIN", USER, "dir_search", {"server": "EXOUT"})
    assert info.value.category == "ServerUnavailable" and info.value.hresult == "0x8007203A"

    data = kb_data()
    data["servers"]["EXIN"]["winrm"]["rights"] = "read-only"
    readonly = Lab.from_dict(data)
    with pytest.raises(OpError) as info:
        op(readonly, "EXIN", "dir_modify", dn=IN_CONN, changes=[
            {"attribute": "Activation-Style", "action": "replace", "values": [2]}])
    assert info.value.category == "AccessDenied" and info.value.hresult == "0x80070005"
    with pytest.raises(OpError) as info:
        op(readonly, "EXIN", "service", name="MSExchangeMTA", action="restart")
    assert info.value.category == "AccessDenied"
    found = op(readonly, "EXIN", "dir_search", base=IN_CONN, scope="base",
               attributes=["N-Address", "Gateway-Local-Cred"])["entries"][0]["attributes"]
    assert found == {"N-Address": b"192.0.2.1".hex()}          # the secret is not shown to read-only


def test_operational_attributes_only_when_named(kb):
    plain = op(kb, "EXIN", "dir_search", base=IN_CONN, scope="base")["entries"][0]
    assert plain["objectClass"] == ["top", "Mail-Gateway", "X400-Link", "RFC1006-X400-Link"]
    assert "cn" in plain["attributes"] and "Activation-Style" not in plain["attributes"]
    assert "N-Address" not in plain["attributes"]
    named = op(kb, "EXIN", "dir_search", base="", classes=["X400-Link"],
               attributes=["Activation-Style", "Activation-Schedule", "Connected-Domains", "Supporting-Stack"],
               multi=["Connected-Domains", "Supporting-Stack"])
    attrs = named["entries"][0]["attributes"]
    assert attrs["Activation-Style"] == 2 and len(attrs["Activation-Schedule"]) == 168
    assert attrs["Connected-Domains"] == ["CONTOSO\u00a7OUTSIDE\u00a71\u00a7X400:c=US;a= ;p=CONTOSO;o=OUTSIDE;"]
    assert isinstance(attrs["Supporting-Stack"], list)
    assert named["entries"][0]["octets"] == ["Activation-Schedule"]     # what ADSI answered as byte[]
    # an attribute not named in multi is a list only when it has more than one value (the script
    # reads no schema)
    single = op(kb, "EXIN", "dir_search", base="", classes=["X400-Link"], attributes=["Connected-Domains"])
    assert isinstance(single["entries"][0]["attributes"]["Connected-Domains"], str)


def test_dn_escaping_round_trip(kb):
    name = 'To "Outside", Inc.+1 Zürich '
    escaped = schema.format_dn(((("cn", name),) + schema.parse_dn(IN_PARENT)))
    assert escaped.startswith('cn=To \\"Outside\\"\\, Inc.\\+1 Zürich\\ ,cn=Connections')
    assert schema.parse_dn(escaped)[0] == ("cn", name)
    source = op(kb, "EXIN", "dir_search", base=IN_CONN, scope="base",
                attributes=["Home-MTA", "Delivery-Mechanism"])["entries"][0]["attributes"]
    dn = op(kb, "EXIN", "dir_create", parent=IN_PARENT, cn=name, **{"class": "RFC1006-X400-Link"},
            attributes=dict(source, **{"N-Address": b"198.51.100.10".hex(), "Activation-Style": 3}))["dn"]
    assert dn == escaped
    entry = op(kb, "EXIN", "dir_search", base=dn, scope="base", attributes=["rdn", "cn"])["entries"][0]
    # 5.5: the directory name is rdn (Common-Name); cn (Display-Name) was not given, so there is none
    assert entry["dn"] == escaped and entry["attributes"]["rdn"] == name and "cn" not in entry["attributes"]
    assert schema.x500_upper(schema.parse_dn(dn)).endswith('/CN=TO "OUTSIDE", INC.+1 ZÜRICH ')
    op(kb, "EXIN", "dir_delete", dn=dn)


# ---- the KB behaviour --------------------------------------------------------------------------
def kb_evidence(lab):
    snap = lab.snapshot()
    flow = next(f for f in snap["flows"] if f["from"] == "EXOUT" and f["to"] == "EXIN")
    return snap, flow


def test_kb_fault_happens(kb):
    kb.advance(60)
    snap, flow = kb_evidence(kb)
    assert snap["time"] == "2026-01-05T10:00:00Z"
    assert snap["servers"]["EXOUT"]["queue_peaks"]["TO-INSIDE"] > 10
    out_ids = ids(kb, "EXOUT")
    in_ids = ids(kb, "EXIN")
    assert TRIPLE <= set(out_ids) and 1293 in in_ids and 9301 in in_ids
    messages = [e["message"] for e in snap["servers"]["EXIN"]["events"] if e["id"] == 9301]
    assert all(HEX_EXOUT in m for m in messages)
    dn = "/O=CONTOSO/OU=OUTSIDE/CN=CONFIGURATION/CN=CONNECTIONS/CN=TO-INSIDE"
    assert any(e["id"] == 1290 and dn in e["message"] and e["type"] == "Warning" and e["category"] == "X.400 Service"
               for e in snap["servers"]["EXOUT"]["events"])
    bursts = flow["history"]
    assert 1 <= len(bursts) <= 10 and all(b["delivered"] >= 10 for b in bursts)
    assert flow["sent"] == 120 and flow["peak_queued"] >= 10
    counters = op(kb, "EXOUT", "perf_counters", paths=["\\\\EXOUT\\MSExchangeMTA Connections(*)\\Queue Length",
                                                       "\\\\EXOUT\\MSExchangeMTA\\Work Queue Length"])
    assert [s["instance"] for s in counters["samples"]] == ["TO-INSIDE", None]
    events = op(kb, "EXOUT", "event_query", log="Application", source="MSExchangeMTA", ids=[1290], max=2,
                since="2000-01-01T00:00:00Z")
    assert len(events["events"]) == 2 and events["now"] == "2026-01-05T10:00:00Z"


def settle_and_check(lab, minutes=40):
    lab.advance(15)                              # the fix settles (retry timers, one burst)
    marks = {s: last_record(lab, s) for s in ("EXIN", "EXOUT")}
    lab.advance(minutes)
    snap, flow = kb_evidence(lab)
    assert snap["servers"]["EXOUT"]["queues"]["TO-INSIDE"] == 0
    assert not ({1290, 1293, 9301} & set(ids(lab, "EXOUT", marks["EXOUT"]) + ids(lab, "EXIN", marks["EXIN"])))
    assert flow["queued"] == 0 and flow["delivered"] == flow["sent"]
    return snap


def test_fix_1_routed_path(kb):
    kb.advance(30)
    state = kb.firewall_apply({"version": 1, "firewall": "FW1", "steps": [
        {"action": "remove_passer", "port": 102, "interface": "external", "target": "EXIN"},
        {"action": "remove_passer", "port": 102, "interface": "internal", "target": "EXOUT"},
        {"action": "add_routed_path", "hosts": ["EXIN", "EXOUT"], "port": 102}]})
    assert state["passers"] == [] and state["routed_paths"] == [{"hosts": ["EXIN", "EXOUT"], "port": 102}]
    again = kb.firewall_apply({"version": 1, "firewall": "FW1", "steps": [
        {"action": "remove_passer", "port": 102, "interface": "external", "target": "EXIN"}]})
    assert again["steps"][0]["result"] == "unchanged"
    set_stack(kb, "EXIN", IN_CONN, "198.51.100.10")
    set_stack(kb, "EXOUT", OUT_CONN, "192.0.2.10")
    settle_and_check(kb)


def test_fix_2_reverse_connector(kb):
    kb.advance(30)
    create_reverse(kb, "198.51.100.10")
    settle_and_check(kb)
    # outbound mail still takes the Always connector, not the cost-99 remote-initiated one
    assert kb.snapshot()["servers"]["EXIN"]["queues"].get("TO-OUTSIDE-REVERSE", 0) == 0


def create_reverse(lab, address):
    names = [a.name for a in schema.ATTRIBUTE_LIST if not a.system and a.name not in ("rdn", "o", "ou")]
    source = op(lab, "EXIN", "dir_search", base=IN_CONN, scope="base", attributes=names)["entries"][0]["attributes"]
    attrs = {k: v for k, v in source.items() if k not in ("Computer-Name", "Network-Address")}
    attrs.update({"Activation-Style": 3, "N-Address": address.encode().hex(), "N-Address-Type": 1,
                  "Admin-Display-Name": "X.400 from Outside (reverse)",
                  "Connected-Domains": [d.replace("\u00a71\u00a7", "\u00a799\u00a7") for d in attrs["Connected-Domains"]]})
    return op(lab, "EXIN", "dir_create", parent=IN_PARENT, cn="TO-OUTSIDE-REVERSE",
              **{"class": "RFC1006-X400-Link"}, attributes=attrs)


def test_fix_3_transparency_off(kb):
    kb.advance(30)
    state = kb.firewall_apply({"version": 1, "firewall": "FW1",
                               "steps": [{"action": "set_transparency", "value": False}]})
    assert state["client_transparency"] is False
    settle_and_check(kb)
    assert kb.snapshot()["firewalls"]["FW1"]["client_transparency"] is False


def test_wrong_fix_does_not_help(kb):
    kb.advance(30)
    create_reverse(kb, "198.51.100.1")             # the firewall's address, not EXOUT's
    mark = last_record(kb, "EXIN")
    kb.advance(40)
    assert {9301, 1293} <= set(ids(kb, "EXIN", mark))
    assert kb.snapshot()["servers"]["EXOUT"]["queue_peaks"]["TO-INSIDE"] > 10


def test_never_logs_37_on_the_never_side():
    lab = Lab.from_file(topo("never.yml"))
    lab.advance(30)
    assert 37 in ids(lab, "EXIN") and 9301 not in ids(lab, "EXIN")
    assert TRIPLE <= set(ids(lab, "EXOUT"))
    never_dn = "/O=CONTOSO/OU=INSIDE/CN=CONFIGURATION/CN=CONNECTIONS/CN=TO-OUTSIDE"
    assert any(never_dn in e["message"] for e in lab.snapshot()["servers"]["EXIN"]["events"] if e["id"] == 37)


def test_both_remote_initiated_never_associate():
    lab = Lab.from_file(topo("both-remote.yml"))
    lab.advance(60)
    snap = lab.snapshot()
    assert not any(e["id"] in TRIPLE | {1293, 9301, 37} for s in snap["servers"].values() for e in s["events"])
    assert all(f["delivered"] == 0 and f["queued"] == f["sent"] for f in snap["flows"])
    assert sum(s["associations"]["outbound_ok"] + s["associations"]["outbound_failed"]
               for s in snap["servers"].values()) == 0


def test_healthy_flows_and_restart(tmp_path):
    lab = Lab.from_file(topo("healthy.yml"))
    lab.advance(30)
    snap = lab.snapshot()
    assert all(f["queued"] == 0 and f["delivered"] == f["sent"] for f in snap["flows"])
    assert not any(s["events"] for s in snap["servers"].values())
    answer = op(lab, "EXIN", "service", name="MSExchangeMTA", action="restart")
    assert answer == {"name": "MSExchangeMTA", "state": "Running", "restarted": True, "dependents": [],
                      "stopped": ["MSExchangeMTA"], "started": ["MSExchangeMTA"], "timed_out": [], "not_running": [],
                      "error": None}
    assert lab.snapshot()["servers"]["EXIN"]["service"] == {"MSExchangeMTA": "Running", "restarts": 1}
    assert ids(lab, "EXIN")[-1] == 9298
    probe = op(lab, "EXOUT", "tcp_probe", host="198.51.100.1", port=102, timeout_ms=500)
    assert probe["connected"] is True
    assert op(lab, "EXOUT", "tcp_probe", host="192.0.2.10", port=102, timeout_ms=500)["connected"] is False


def test_management_host_serves_its_server():
    lab = Lab.from_file(topo("mgmt.yml"))
    endpoints = {e["name"]: e for e in lab.endpoints()}
    assert set(endpoints) == {"EXOUT", "MGMT1"} and endpoints["MGMT1"]["serves"] == ["EXIN"]
    assert endpoints["MGMT1"]["users"][USER]["rights"] == "admin"
    entries = op(lab, "MGMT1", "dir_search", server="EXIN", base="", classes=["RFC1006-X400-Link"], attributes=["rdn"])
    # every server's replica holds the whole organisation (EXOUT's site replicated to EXIN's)
    assert sorted(e["attributes"]["rdn"] for e in entries["entries"]) == ["TO-INSIDE", "TO-OUTSIDE"]
    with pytest.raises(OpError) as info:
        lab.execute_op("MGMT1", USER, "event_query", {"server": "EXOUT"})
    assert info.value.category == "ServerUnavailable"
    with pytest.raises(OpError) as info:
        lab.execute_op("MGMT1", "CONTOSO\\intruder", "event_query", {"server": "EXIN"})
    assert info.value.category == "AccessDenied"


def test_a_step_finds_each_address_and_mta_as_a_scan_of_the_lab_does():
    """The model's steps look addresses and MTA names up in indexes built per emulated minute (a scan
    per association grew with the square of the lab: 15.7 s for 20 minutes at 300 links); each lookup
    answers what the scan answers, aliases and unknown addresses included."""
    lab = Lab.from_dict(generate(6, firewalls=2))
    addresses = {server.address for server in lab.servers.values()} | {"192.0.2.250", "not an address"}
    for fw in lab.firewalls.values():
        addresses |= set(fw["interfaces"].values()) | {p["address"] for p in fw["passers"] if p.get("address")}
    names = {server.mta_name().casefold() for server in lab.servers.values()} | {"nobody"}
    scanned = ({a: (lab._server_at(a), lab._firewall_at(a)) for a in addresses}, {n: lab._mta_server(n) for n in names})
    lab._address_index = lab._address_indexes()
    lab._mta_index = {}
    for server in lab.servers.values():
        lab._mta_index.setdefault(server.mta_name().casefold(), server)
    indexed = ({a: (lab._server_at(a), lab._firewall_at(a)) for a in addresses}, {n: lab._mta_server(n) for n in names})
    assert indexed == scanned
    assert any(s is not None for s, _ in scanned[0].values()) and any(f is not None for _, f in scanned[0].values())
    lab._address_index = lab._mta_index = None
    lab.advance(3)
    assert lab._address_index is None and lab._mta_index is None  # outside a step, lookups scan again
