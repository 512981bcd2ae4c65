"""The lab's MTA events as Windows shows them (written from the KB articles, docs/facts.md): 9301's
address as octets and which 9301s a build logs, 37 with 1293, restart events with the build, the
host without a message DLL, and a recorded log replayed exactly (topology ``event_log``)."""
import copy
import os

import pytest
import yaml

from xconlab_lab.model import Lab
from xconlab_lab.topology import TopologyError, validate

HERE = os.path.dirname(os.path.abspath(__file__))
TOPOLOGIES = os.path.join(os.path.dirname(HERE), "lab", "topologies")
FIXTURES = os.path.join(os.path.dirname(HERE), "fixtures", "kb_events.yml")
USER = "CONTOSO\\xcon"
STACK_EXIN = "/o=CONTOSO/ou=INSIDE/cn=Configuration/cn=Servers/cn=EXIN/cn=TCP (EXIN)"
DN_IN = "/O=CONTOSO/OU=INSIDE/CN=CONFIGURATION/CN=CONNECTIONS/CN=TO-OUTSIDE"
DN_OUT = "/O=CONTOSO/OU=OUTSIDE/CN=CONFIGURATION/CN=CONNECTIONS/CN=TO-INSIDE"
FQDN_HEX = "exout.outside.contoso.example".encode("ascii").hex().upper()


def kb_data(**exin):
    with open(os.path.join(TOPOLOGIES, "kb.yml"), encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    data["servers"]["EXIN"].update(exin)
    for key, value in list(data["servers"]["EXIN"].items()):
        if value is None:
            del data["servers"]["EXIN"][key]
    return data


def events(lab, server, event_id=None):
    return [e for e in lab.snapshot()["servers"][server]["events"] if event_id is None or e["id"] == event_id]


def query(lab, server, **params):
    params.setdefault("since", "2000-01-01T00:00:00Z")
    return lab.execute_op(server, USER, "event_query", dict({"server": server, "source": "MSExchangeMTA"}, **params))


def test_kb_9301_carries_the_outside_address_as_octets():
    """Q193380: 145.245.193.27 is logged as 91F5C11B; EXOUT (198.51.100.10) as C633640A. SP4 with no
    PTR record for EXOUT on EXIN: one 9301 per refused association, after the failed lookup."""
    lab = Lab.from_dict(kb_data())
    lab.advance(30)
    found = events(lab, "EXIN", 9301)
    assert found and len(found) == len(events(lab, "EXIN", 1293))
    for event in found:
        assert (event["type"], event["category"]) == ("Information", "Configuration")
        assert event["strings"] == [STACK_EXIN, "C633640A"]
        assert event["message"] == (
            f"The message transfer gateway that uses the network address C633640A and the transport stack {STACK_EXIN} "
            "could not be found. Check the configuration of the mail gateway. [BASE IL TCP/IP DRVR 8 218] (10)")
    refusal = events(lab, "EXIN", 1293)[0]
    assert refusal["strings"][0] == DN_IN and refusal["message"].startswith(f"A remotely-initiated association from {DN_IN} was refused.")
    out = events(lab, "EXOUT", 1290)[0]
    assert out["strings"] == [DN_OUT, "0", "0", "202", "1"] and (out["type"], out["category"]) == ("Warning", "X.400 Service")


@pytest.mark.parametrize("build, lookup, expected", [
    ("2448.1", None, []),                                     # 5.5 SP2: builds 2354-2620 log no 9301 (Q234962)
    ("2232.18", {"198.51.100.10": None}, ["C633640A", "C633640A"]),   # SP1: at the miss and after the lookup (Q193380)
    ("2232.18", {}, ["C633640A", FQDN_HEX]),                  # SP1, PTR found but no connector has that name
    ("2653.23", {}, [FQDN_HEX]),                              # SP4: only after the lookup, with the name (Q189345)
])
def test_which_9301_a_build_logs(build, lookup, expected):
    data = kb_data(mta_build=build, reverse_lookup=lookup)
    lab = Lab.from_dict(data)
    lab.advance(1)                       # EXOUT has mail queued after a minute: one refused association
    lab.advance(1)
    refusals = events(lab, "EXIN", 1293)
    assert len(refusals) == 1
    assert [e["strings"][1] for e in events(lab, "EXIN", 9301)] == expected


def test_name_match_after_9301_is_accepted_on_old_builds():
    """Q189345: an MTA without the fix logs 9301 for an address miss even when the reverse lookup then
    finds the connector by name and the association is accepted."""
    data = kb_data(mta_build="2232.18", reverse_lookup=None)
    data["servers"]["EXIN"]["connectors"].append(dict(
        data["servers"]["EXIN"]["connectors"][0], name="TO-OUTSIDE-REVERSE", schedule="remote", cost=99,
        stack_address="exout.outside.contoso.example", address_type="hostname"))
    lab = Lab.from_dict(data)
    lab.advance(20)
    assert events(lab, "EXIN", 9301) and not events(lab, "EXIN", 1293) and not events(lab, "EXOUT", 1290)
    assert all(e["strings"][1] == "C633640A" for e in events(lab, "EXIN", 9301))
    assert lab.snapshot()["servers"]["EXOUT"]["queues"]["TO-INSIDE"] == 0


def test_never_side_logs_37_security_with_1293():
    lab = Lab.from_file(os.path.join(TOPOLOGIES, "never.yml"))
    lab.advance(10)
    never = events(lab, "EXIN", 37)
    assert never and len(never) == len(events(lab, "EXIN", 1293))
    assert (never[0]["type"], never[0]["category"]) == ("Warning", "Security")
    assert never[0]["message"] == (f"The {DN_IN} (Adjacent-MTA) entity attempted to open an association while "
                                   "suspended. [MTA XFER-IN 22 35] (14)")


def test_restart_logs_closedown_and_startup_with_the_build():
    lab = Lab.from_dict(kb_data(mta_build="2448.1"))
    lab.execute_op("EXIN", USER, "service", {"server": "EXIN", "name": "MSExchangeMTA", "action": "restart"})
    closedown, startup = events(lab, "EXIN")[-2:]
    assert (closedown["id"], startup["id"]) == (9299, 9298)
    assert closedown["message"] == "Service closedown complete, version 5.5 (build 2448.1). [BASE IL MAIN BASE 31 490] (16)"
    assert startup["message"] == ("Microsoft Exchange Server MTA Service startup complete, version 5.5 (build 2448.1). "
                                  "[BASE IL MAIN BASE 31 490] (14)")
    assert (startup["type"], startup["category"]) == ("Information", "X.400 Service")


def test_backlog_events_are_warning_resource():
    data = kb_data()
    data["backlog_threshold"] = 6
    lab = Lab.from_dict(data)
    lab.advance(60)
    backlog = events(lab, "EXOUT", 659)
    assert backlog and (backlog[0]["type"], backlog[0]["category"]) == ("Warning", "Resource")
    assert backlog[0]["message"].startswith(f"The queue for {DN_OUT} is backlogged with ")
    subsided = events(lab, "EXOUT", 660)
    assert subsided and subsided[0]["message"].startswith(f"The queue backlog for {DN_OUT} has subsided leaving ")


def test_message_dll_unreachable_leaves_only_the_insertion_strings():
    lab = Lab.from_dict(kb_data(message_dll="unreachable"))
    lab.advance(30)
    served = query(lab, "EXIN", ids=[1293, 9301])["events"]
    assert served
    for event in served:
        strings = ", ".join(f"'{s}'" for s in event["strings"])
        assert event["message"] == (
            f"The description for Event ID '{event['id']}' in Source 'MSExchangeMTA' cannot be found.  The local "
            "computer may not have the necessary registry information or message DLL files to display the message, "
            "or you may not have permission to access them.  The following information is part of the event:"
            + strings)
    assert any(e["strings"] == [STACK_EXIN, "C633640A"] for e in served)
    assert query(lab, "EXOUT", ids=[1290])["events"][0]["message"].startswith("A locally initiated association to")


def test_event_log_is_replayed_exactly_as_recorded():
    with open(FIXTURES, encoding="utf-8") as handle:
        fixtures = yaml.safe_load(handle)
    recorded = [{"id": f["id"], "source": "MSExchangeMTA", "type": f["type"], "category": f["category"],
                 "minutes_ago": 50 - index, "message": f["message"]} for index, f in enumerate(fixtures)]
    recorded[0]["strings"] = ["/O=X/OU=Y/CN=CONFIGURATION/CN=CONNECTIONS/CN=Z", "0"]
    recorded.append({"id": 1000, "source": "Application Popup", "type": "Error", "category": "None",
                     "minutes_ago": 90, "message": "another source, kept too"})
    data = kb_data(event_log=recorded, message_dll="unreachable")
    data["traffic"] = []
    lab = Lab.from_dict(data)
    served = query(lab, "EXIN", source="")["events"]
    assert served[0]["message"] == "another source, kept too" and served[0]["time"] == "2026-01-05T07:30:00Z"
    mta = [e for e in served if e["source"] == "MSExchangeMTA"]
    assert len(mta) == len(fixtures)
    for entry, event in zip(recorded, mta):
        assert {k: event[k] for k in ("id", "type", "category", "message")} == \
            {k: entry[k] for k in ("id", "type", "category", "message")}
        assert event["strings"] == entry.get("strings", [])
    assert mta[0]["time"] == "2026-01-05T08:10:00Z"
    assert query(lab, "EXIN", ids=[9301])["events"][0]["message"] == fixtures[6]["message"]


@pytest.mark.parametrize("entry, key", [
    ({"id": 1290, "message": "x"}, "minutes_ago"),
    ({"id": 1290, "minutes_ago": -1, "message": "x"}, "minutes_ago"),
    ({"id": 1290, "minutes_ago": 1, "message": "x", "type": "Bad"}, "type"),
    ({"id": 1290, "minutes_ago": 1, "message": "x", "strings": [1]}, "strings"),
    ({"id": 1290, "minutes_ago": 1, "message": "x", "colour": "red"}, "colour"),
])
def test_event_log_entries_are_validated(entry, key):
    with pytest.raises(TopologyError) as error:
        validate(kb_data(event_log=[entry]))
    assert key in error.value.key


def test_event_keys_are_validated():
    for extra, key in (({"mta_build": "SP2"}, "mta_build"), ({"message_dll": "maybe"}, "message_dll"),
                       ({"reverse_lookup": {"not-an-ip": None}}, "reverse_lookup")):
        with pytest.raises(TopologyError) as error:
            validate(kb_data(**copy.deepcopy(extra)))
        assert key in error.value.key
