"""The lab plays the directories of Exchange 4.0, 5.0 and 5.5 as the sources describe them: one
replica per server, replication within a site after about five minutes (Q137203) and between sites by
the directory replication connector's schedule, other sites' objects read-only, no LDAP on 4.0,
searches only on 5.0, every write to a server's own LDAP recorded (docs/facts.md)."""
import os

import pytest
import yaml

from xconlab_lab.model import Lab, OpError

HERE = os.path.dirname(os.path.abspath(__file__))
TOPOLOGIES = os.path.join(os.path.dirname(HERE), "lab", "topologies")
USER = "CONTOSO\\xcon"
IN_PARENT = "cn=Connections,cn=Configuration,ou=INSIDE,o=CONTOSO"
OUT_CONN = "cn=TO-INSIDE,cn=Connections,cn=Configuration,ou=OUTSIDE,o=CONTOSO"
EXIN_MTA = "cn=Microsoft MTA,cn=EXIN,cn=Servers,cn=Configuration,ou=INSIDE,o=CONTOSO"
EXIN_STACK = "cn=TCP (EXIN),cn=EXIN,cn=Servers,cn=Configuration,ou=INSIDE,o=CONTOSO"
REVERSE = "cn=TO-OUTSIDE-REVERSE," + IN_PARENT


def load(name):
    with open(os.path.join(TOPOLOGIES, name), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def op(lab, endpoint, op_name, server=None, **params):
    return lab.execute_op(endpoint, USER, op_name, dict(params, server=server or endpoint))


def rdns(lab, endpoint, base=IN_PARENT):
    found = op(lab, endpoint, "dir_search", base=base, scope="onelevel", classes=["RFC1006-X400-Link"],
               attributes=["rdn"])["entries"]
    return sorted(e["attributes"]["rdn"] for e in found)


def reverse_attributes():
    """The reverse connector of KB workaround 2, homed on EXIN's MTA (what an ADSI client writes)."""
    return {"cn": "Reverse", "Delivery-Mechanism": 3, "Home-MTA": EXIN_MTA, "Supporting-Stack": [EXIN_STACK],
            "Activation-Style": 3, "Two-Way-Alternate-Facility": True, "Gateway-Local-Desig": "EXOUT",
            "N-Address": "198.51.100.10".encode().hex(), "N-Address-Type": 1,
            "Connected-Domains": ["CONTOSO\u00a7OUTSIDE\u00a799\u00a7X400:c=US;a= ;p=CONTOSO;o=OUTSIDE;"]}


@pytest.fixture
def lab():
    return Lab.from_dict(load("kb-40-50.yml"), source="kb-40-50.yml")


def test_exchange_40_has_no_ldap_and_every_write_attempt_is_recorded(lab):
    for op_name, params in (("dir_search", {"base": IN_PARENT}), ("dir_root", {}),
                            ("dir_modify", {"dn": REVERSE, "changes": [{"attribute": "cn", "values": ["x"]}]})):
        with pytest.raises(OpError) as info:
            op(lab, "EXIN", op_name, **params)
        assert (info.value.category, info.value.hresult) == ("ServerUnavailable", "0x8007203A")
        assert "The server is not operational." in info.value.message
    writes = lab.snapshot()["servers"]["EXIN"]["ldap_writes"]
    assert [(w["op"], w["answer"], w["exchange"]) for w in writes] == [("dir_modify", "ServerUnavailable", "4.0")]


def test_exchange_50_answers_searches_and_refuses_every_write(lab):
    assert rdns(lab, "EXOUT", "cn=Connections,cn=Configuration,ou=OUTSIDE,o=CONTOSO") == ["TO-INSIDE"]
    assert rdns(lab, "EXOUT") == ["TO-OUTSIDE"]          # its replica holds the inside site too
    before = lab.snapshot()["servers"]["EXOUT"]["directory"]
    for op_name, params in (("dir_modify", {"dn": OUT_CONN, "changes": [{"attribute": "Activation-Style", "values": [3]}]}),
                            ("dir_create", {"parent": "cn=Connections,cn=Configuration,ou=OUTSIDE,o=CONTOSO",
                                            "cn": "X", "class": "RFC1006-X400-Link", "attributes": {}}),
                            ("dir_delete", {"dn": OUT_CONN})):
        with pytest.raises(OpError) as info:
            op(lab, "EXOUT", op_name, **params)
        assert (info.value.category, info.value.hresult) == ("UnwillingToPerform", "0x80072035")
    with pytest.raises(OpError) as info:                 # LDAP v2: no RootDSE
        op(lab, "EXOUT", "dir_root")
    assert info.value.category == "NoSuchObject"
    snap = lab.snapshot()["servers"]["EXOUT"]
    assert snap["directory"] == before
    assert [w["answer"] for w in snap["ldap_writes"]] == ["UnwillingToPerform"] * 3


def test_a_write_on_the_sites_55_server_replicates_after_five_minutes_and_ends_the_fault(lab):
    lab.advance(30)
    assert 1293 in [e["id"] for e in lab.snapshot()["servers"]["EXIN"]["events"]]   # the KB fault, on 4.0
    op(lab, "EXIN55", "dir_create", parent=IN_PARENT, cn="TO-OUTSIDE-REVERSE", **{"class": "RFC1006-X400-Link"},
       attributes=reverse_attributes())
    assert rdns(lab, "EXIN55") == ["TO-OUTSIDE", "TO-OUTSIDE-REVERSE"]
    assert lab.snapshot()["servers"]["EXIN"]["replication"]["pending"] == 1
    lab.advance(4)
    names = [e["dn"] for e in lab.snapshot()["servers"]["EXIN"]["directory"]]
    assert REVERSE not in names                           # EXIN's MTA reads its own replica: not yet
    lab.advance(1)
    snap = lab.snapshot()
    assert REVERSE in [e["dn"] for e in snap["servers"]["EXIN"]["directory"]]
    assert snap["servers"]["EXIN"]["replication"]["pending"] == 0
    assert rdns(lab, "EXOUT") == ["TO-OUTSIDE"]           # the outside site: by the DRC's schedule
    mark = snap["servers"]["EXIN"]["events"][-1]["record"]
    lab.advance(40)
    snap = lab.snapshot()
    refusals = [e for e in snap["servers"]["EXIN"]["events"] if e["record"] > mark and e["id"] == 1293]
    assert not refusals and snap["servers"]["EXOUT"]["queues"]["TO-INSIDE"] == 0
    lab.advance(180)
    assert rdns(lab, "EXOUT") == ["TO-OUTSIDE", "TO-OUTSIDE-REVERSE"]
    assert not snap["servers"]["EXIN"]["ldap_writes"] and not snap["servers"]["EXOUT"]["ldap_writes"]


def test_another_sites_object_is_read_only_in_a_replica(lab):
    before = rdns(lab, "EXIN55", "cn=Connections,cn=Configuration,ou=OUTSIDE,o=CONTOSO")
    with pytest.raises(OpError) as info:
        op(lab, "EXIN55", "dir_modify", dn=OUT_CONN, changes=[{"attribute": "Activation-Style", "values": [0]}])
    assert info.value.category == "UnwillingToPerform" and "site OUTSIDE" in info.value.message
    assert rdns(lab, "EXIN55", "cn=Connections,cn=Configuration,ou=OUTSIDE,o=CONTOSO") == before
    style = op(lab, "EXIN55", "dir_search", base=OUT_CONN, scope="base", attributes=["Activation-Style"])
    assert style["entries"][0]["attributes"]["Activation-Style"] == 2


def test_replication_delays_are_topology_keys():
    data = load("kb-40-50.yml")
    data["replication"] = {"intra_site_minutes": 1, "intersite_minutes": 15}
    lab = Lab.from_dict(data)
    op(lab, "EXIN55", "dir_create", parent=IN_PARENT, cn="TO-OUTSIDE-REVERSE", **{"class": "RFC1006-X400-Link"},
       attributes=reverse_attributes())
    lab.advance(1)
    assert REVERSE in [e["dn"] for e in lab.snapshot()["servers"]["EXIN"]["directory"]]
    lab.advance(14)
    assert rdns(lab, "EXOUT") == ["TO-OUTSIDE"]
    lab.advance(1)
    assert rdns(lab, "EXOUT") == ["TO-OUTSIDE", "TO-OUTSIDE-REVERSE"]
    op(lab, "EXIN55", "dir_delete", dn=REVERSE)            # a deletion replicates the same way
    lab.advance(1)
    assert REVERSE not in [e["dn"] for e in lab.snapshot()["servers"]["EXIN"]["directory"]]


def test_the_administrator_program_changes_the_servers_own_replica_without_ldap():
    lab = Lab.from_dict(load("kb-40-50-no55.yml"))
    lab.advance(30)
    record = {"version": 1, "kind": "exchange-administrator", "server": "EXIN", "connect_to": "EXIN", "action": "create",
              "connector": "TO-OUTSIDE-REVERSE", "clone_of": "TO-OUTSIDE",
              "pages": [{"page": "Schedule", "fields": [{"field": "Schedule", "value": "Remote initiated"}]},
                        {"page": "Stack", "fields": [{"field": "Address", "value": "IP address: 198.51.100.10"}]},
                        {"page": "Connected Sites", "fields": [{"field": "Cost (every connected site)", "value": "99"}]}]}
    assert lab.admin_apply(record)["dn"] == REVERSE
    snap = lab.snapshot()["servers"]["EXIN"]
    (reverse,) = [e for e in snap["directory"] if e["dn"] == REVERSE]
    assert reverse["attributes"]["Activation-Style"] == 3 and reverse["attributes"]["N-Address"] == "198.51.100.10"
    assert reverse["attributes"]["Connected-Domains"][0].split("\u00a7")[2] == "99"
    assert reverse["attributes"]["Gateway-Local-Desig"] == "EXOUT"        # every other page as on TO-OUTSIDE
    assert snap["ldap_writes"] == [] and [c["action"] for c in snap["admin_changes"]] == ["create"]
    mark = snap["events"][-1]["record"]
    lab.advance(40)
    snap = lab.snapshot()
    assert not [e for e in snap["servers"]["EXIN"]["events"] if e["record"] > mark and e["id"] == 1293]
    assert snap["servers"]["EXOUT"]["queues"]["TO-INSIDE"] == 0
    lab.admin_apply(dict(record, action="delete", pages=[]))
    assert REVERSE not in [e["dn"] for e in lab.snapshot()["servers"]["EXIN"]["directory"]]


@pytest.mark.parametrize("inside, outside", [("4.0", "5.5"), ("5.0", "5.5"), ("4.0", "5.0"), ("5.5", "4.0"), ("5.5", "5.0")])
@pytest.mark.parametrize("with_55", [True, False])
def test_the_kb_fault_and_its_fix_on_every_pair_of_versions(inside, outside, with_55):
    """The MTA is the same lineage on 4.0, 5.0 and 5.5: the fault happens on every pair, and the
    reverse connector ends it, written through the site's 5.5 server or made in the Administrator
    program; no write reaches a 4.0/5.0 server's own LDAP."""
    data = load("kb-40-50.yml" if with_55 else "kb-40-50-no55.yml")
    data["servers"]["EXIN"]["exchange"], data["servers"]["EXOUT"]["exchange"] = inside, outside
    lab = Lab.from_dict(data)
    lab.advance(30)
    snap = lab.snapshot()
    assert 1293 in [e["id"] for e in snap["servers"]["EXIN"]["events"]]
    assert {1290, 289, 1294} <= {e["id"] for e in snap["servers"]["EXOUT"]["events"]}
    if inside == "5.5":
        writer = "EXIN"
    elif with_55:
        writer = "EXIN55"
    else:
        writer = None
    if writer:
        op(lab, writer, "dir_create", parent=IN_PARENT, cn="TO-OUTSIDE-REVERSE", **{"class": "RFC1006-X400-Link"},
           attributes=reverse_attributes())
    else:
        lab.admin_apply({"kind": "exchange-administrator", "connect_to": "EXIN", "action": "create",
                         "connector": "TO-OUTSIDE-REVERSE", "clone_of": "TO-OUTSIDE", "pages": [
                             {"page": "Schedule", "fields": [{"field": "Schedule", "value": "Remote initiated"}]},
                             {"page": "Stack", "fields": [{"field": "Address", "value": "IP address: 198.51.100.10"}]}]})
    lab.advance(6)                                   # replication within the site (Q137203)
    mark = lab.snapshot()["servers"]["EXIN"]["events"][-1]["record"]
    lab.advance(40)
    snap = lab.snapshot()
    assert not [e for e in snap["servers"]["EXIN"]["events"] if e["record"] > mark and e["id"] == 1293]
    assert snap["servers"]["EXOUT"]["queues"]["TO-INSIDE"] == 0
    for name, server in snap["servers"].items():
        if server["exchange"] != "5.5":
            assert server["ldap_writes"] == [], name


def _scanned(directory, servers):
    """What each lookup of a replica answers when every entry is scanned (the indexes' oracle)."""
    from xconlab_lab import schema

    def site(dn):
        return next((v.casefold() for k, v in dn if k == "ou"), None)

    def home(entry):
        value = entry.get("Home-MTA") if entry.is_a("X400-Link") else None
        return None if value is None else schema.dn_key(value)

    entries = list(directory.entries.values())
    sites = {site(e.dn) for e in entries}
    return ({s: [e for e in entries if site(e.dn) == s] for s in sites if s},
            {m: [e for e in entries if home(e) == m] for m in (srv.mta_key for srv in servers)})


def test_replicas_indexes_and_searches_answer_what_a_scan_answers_through_writes_and_replication(lab):
    """Replicas share their seed's entries until a first write (a 300-link lab has 600 replicas; each
    copied its whole organisation at its first write and rebuilt its indexes after every write: the
    lab grew with the square of the fleet). Entries are never changed in place; the site and Home-MTA
    indexes are kept in step by every write, replication and the Administrator program, and a search
    whose base is inside a site reads that site's entries only. Each answers what a scan answers."""
    from xconlab_lab import schema

    exin, exin55 = lab.servers["EXIN"], lab.servers["EXIN55"]
    assert all(s.directory.entries is exin.directory.entries and s.directory.shared for s in lab.servers.values())
    to_outside = "cn=TO-OUTSIDE," + IN_PARENT
    before = exin.directory.require(to_outside)
    op(lab, "EXIN55", "dir_create", parent=IN_PARENT, cn="TO-OUTSIDE-REVERSE", **{"class": "RFC1006-X400-Link"},
       attributes=reverse_attributes())
    op(lab, "EXIN55", "dir_modify", dn=to_outside,
       changes=[{"attribute": "Home-MTA", "values": [EXIN_MTA.replace("EXIN,", "EXIN55,")]}])
    assert exin.directory.shared and exin.directory.require(to_outside) is before     # not changed in place
    assert [e.name for e in exin55.directory.homed_on(exin55.mta_key)] == ["TO-OUTSIDE"]
    op(lab, "EXIN55", "dir_delete", dn=REVERSE)
    op(lab, "EXIN55", "dir_create", parent=IN_PARENT, cn="TO-OUTSIDE-REVERSE", **{"class": "RFC1006-X400-Link"},
       attributes=reverse_attributes())
    lab.admin_apply({"version": 1, "kind": "exchange-administrator", "server": "EXOUT", "connect_to": "EXOUT",
                     "action": "modify", "connector": "TO-INSIDE",
                     "pages": [{"page": "Schedule", "fields": [{"field": "Schedule", "value": "Always"}]}]})
    lab.advance(lab.intra_site_minutes + lab.intersite_minutes + 1)     # every replica has every change
    for server in lab.servers.values():
        sites, homes = _scanned(server.directory, lab.servers.values())
        assert {s: server.directory.in_site(s) for s in sites} == sites
        assert {m: server.directory.homed_on(m) for m in homes} == homes
        if server.spec.get("exchange", "5.5") == "4.0":
            continue                                                   # no LDAP to search
        everything = op(lab, server.name, "dir_search", base="", classes=["RFC1006-X400-Link"], attributes=["rdn"],
                        page_size=1000)["entries"]
        for site in ("INSIDE", "OUTSIDE"):
            base = f"ou={site},o=CONTOSO"
            found = op(lab, server.name, "dir_search", base=base, classes=["RFC1006-X400-Link"], attributes=["rdn"],
                       page_size=1000)["entries"]
            assert found and found == [e for e in everything if e["dn"].lower().endswith(base.lower())]
    assert [e.name for e in exin.directory.homed_on(exin.mta_key)] == ["TO-OUTSIDE-REVERSE"]
    assert schema.dn_key(schema.parse_dn(REVERSE)) in exin.directory.entries
