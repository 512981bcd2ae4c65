"""Parsing MSExchangeMTA events into evidence: the real texts the KB articles quote
(tests/fixtures/kb_events.yml, one article per entry), insertion strings first, text second."""
import os

import pytest
import yaml

from xcon import evidence as ev

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "kb_events.yml")
with open(FIXTURES, encoding="utf-8") as _handle:
    KB_EVENTS = yaml.safe_load(_handle)

DN_IN = "/O=CONTOSO/OU=OUTSIDE/CN=CONFIGURATION/CN=CONNECTIONS/CN=TO-INSIDE"
STACK = "/o=CONTOSO/ou=INSIDE/cn=Configuration/cn=Servers/cn=EXIN/cn=TCP (EXIN)"
# .NET's EventLogEntry.Message when the message DLL cannot be loaded (resource MessageNotFormatted)
NOT_FOUND = ("The description for Event ID '{id}' in Source 'MSExchangeMTA' cannot be found.  The local computer may "
             "not have the necessary registry information or message DLL files to display the message, or you may "
             "not have permission to access them.  The following information is part of the event:")


def event(event_id, message, record=1, type_="Warning", category="X.400 Service", strings=None):
    data = {"record": record, "id": event_id, "time": "2024-01-01T00:00:00Z", "type": type_,
            "category": category, "source": "MSExchangeMTA", "message": message}
    if strings is not None:
        data["strings"] = strings
    return data


def unformatted(event_id, strings):
    return NOT_FOUND.format(id=event_id) + ", ".join(f"'{s}'" for s in strings)


def check(parsed, expect):
    for key, value in expect.items():
        if key == "hex":
            assert parsed["address_hex"] == value
        else:
            assert parsed[key] == value, (key, parsed)


@pytest.mark.parametrize("fixture", KB_EVENTS, ids=lambda f: f"{f['article']}-{f['id']}")
def test_kb_text(fixture):
    """Each article's text, as quoted (wraps removed) and as the article prints it (wrapped)."""
    for text in filter(None, (fixture["message"], fixture.get("wrapped"))):
        parsed = ev.parse_event(event(fixture["id"], text, type_=fixture["type"], category=fixture["category"]))
        check(parsed, fixture["expect"])
        assert parsed["parsed_from"] == "text" and parsed["message"] == text


def test_9301_address_forms():
    # Q193380: each pair of hex digits is an octet; Q169113 / Q193380: other lengths are ASCII text
    assert ev.decode_hex_address("91F5C11B") == "145.245.193.27"
    assert ev.decode_hex_address("c633640a") == "198.51.100.10"
    assert ev.decode_hex_address("52656d6f74654d5441") == "RemoteMTA"
    assert ev.decode_hex_address("4E434F5354455354") == "NCOSTEST"
    assert ev.decode_hex_address("20010DB8000200000000000000001000") == "20010DB8000200000000000000001000"
    assert ev.decode_hex_address("not hex") == "not hex"


def test_insertion_strings_first():
    """Strings win over the text; the DN and the address are found by their form, not position."""
    parsed = ev.parse_event(event(1290, "some other wording", strings=[DN_IN, "0", "0", "202", "1"]))
    assert parsed["dn"] == DN_IN and parsed["connector"] == "TO-INSIDE" and parsed["parsed_from"] == "strings"
    parsed = ev.parse_event(event(9301, "", type_="Information", category="Configuration",
                                  strings=[STACK, "C633640A"]))
    assert (parsed["address"], parsed["address_hex"], parsed["stack"]) == ("198.51.100.10", "C633640A", STACK)
    swapped = ev.parse_event(event(9301, "", strings=["C633640A", STACK]))
    assert swapped["address"] == "198.51.100.10" and swapped["stack"] == STACK
    queue = ev.parse_event(event(659, "", strings=[DN_IN, "23"]))
    assert queue["connector"] == "TO-INSIDE" and queue["count"] == 23
    start = ev.parse_event(event(9298, "", strings=["5.5", "2653.23"]))
    assert (start["version"], start["build"]) == ("5.5", "2653.23")


def test_message_dll_unreachable():
    """Only the insertion strings survive (message: .NET's 'cannot be found' text): still attributed."""
    for event_id, strings in ((1290, [DN_IN, "0", "0", "202", "1"]), (289, [DN_IN]), (1294, [DN_IN]),
                              (1293, [DN_IN, "0", "0", "1", "1"]), (37, [DN_IN])):
        parsed = ev.parse_event(event(event_id, unformatted(event_id, strings), strings=strings))
        assert parsed["connector"] == "TO-INSIDE" and parsed["dn"] == DN_IN, event_id
    parsed = ev.parse_event(event(9301, unformatted(9301, [STACK, "C633640A"]), strings=[STACK, "C633640A"]))
    assert parsed["address"] == "198.51.100.10" and parsed["connector"] is None
    # without the strings (an older op), the unformatted text still carries them quoted
    text_only = ev.parse_event(event(1290, unformatted(1290, [DN_IN, "0", "0", "202", "1"])))
    assert text_only["connector"] == "TO-INSIDE"


def test_1293_on_container_has_no_connector():
    dn = "/O=CONTOSO/OU=INSIDE/CN=CONFIGURATION/CN=CONNECTIONS"
    parsed = ev.parse_event(event(1293, KB_EVENTS[3]["message"].replace(KB_EVENTS[3]["expect"]["dn"], dn)))
    assert parsed["dn"] == dn and parsed["connector"] is None


def test_names_with_spaces_and_case_mapping():
    text = KB_EVENTS[0]["message"]
    dn = "/O=CONTOSO/OU=OUTSIDE/CN=CONFIGURATION/CN=CONNECTIONS/CN=TO INSIDE, WAS OLD"
    parsed = ev.parse_event(event(1290, text.replace(KB_EVENTS[0]["expect"]["dn"], dn)), connectors=["To Inside, was old"])
    assert parsed["dn"] == dn and parsed["connector"] == "To Inside, was old"
    lower = ev.parse_event(event(289, KB_EVENTS[1]["message"].replace(KB_EVENTS[1]["expect"]["dn"], DN_IN.lower())))
    assert lower["connector"] == "to-inside"


def test_build_evidence():
    triple = [(1290, [DN_IN, "0", "0", "202", "1"]), (289, [DN_IN]), (1294, [DN_IN])]
    events = [event(i, "", record=n, strings=s) for n, (i, s) in enumerate(triple * 2)]
    for record in (10, 11):
        events.append(event(9301, "", record=record, type_="Information", category="Configuration",
                            strings=[STACK, "C633640A"]))
    events.append(event(9298, "", record=12, type_="Information", strings=["5.5", "2653.23"]))
    counters = {"samples": [
        {"path": "\\\\EXOUT\\MSExchangeMTA Connections(TO-INSIDE)\\Queue Length", "instance": "TO-INSIDE", "value": 23.0},
        {"path": "\\\\EXOUT\\MSExchangeMTA\\Work Queue Length", "instance": None, "value": 0},
    ]}
    result = ev.build_evidence("EXOUT", "2024-01-01T00:00:00Z", {"now": "2024-01-01T02:00:00Z", "events": events},
                               counters, {"name": "MSExchangeMTA", "state": "Running", "restarted": False})
    assert result["counts"] == {"1290": 2, "289": 2, "1294": 2, "1293": 0, "9301": 2, "37": 0, "9298": 1}
    assert result["addresses_9301"] == ["198.51.100.10"]
    assert result["mta"]["build"] == "2653.23"
    assert result["queues"] == {"TO-INSIDE": 23} and result["work_queue"] == 0
    assert result["service"] == {"name": "MSExchangeMTA", "state": "Running"}
    assert result["now"] == "2024-01-01T02:00:00Z" and result["since"] == "2024-01-01T00:00:00Z"
    assert [e["id"] for e in result["events"]][:3] == [1290, 289, 1294]


def test_evidence_ops_one_copy():
    """gather (audit, verify) and xcon_mta_evidence send the same ops: the one in xcon.evidence."""
    from xcon import gather

    batch = ev.evidence_ops("EXOUT", since="2024-01-01T00:00:00Z")
    assert [o["op"] for o in batch] == ["event_query", "perf_counters", "service"]
    assert [o["id"] for o in batch] == ["events", "counters", "service"]
    assert batch[1]["params"]["paths"] == ["\\\\EXOUT\\MSExchangeMTA Connections(*)\\Queue Length",
                                           "\\\\EXOUT\\MSExchangeMTA\\Work Queue Length"]
    assert batch[0]["params"]["source"] == "MSExchangeMTA"
    assert set(batch[0]["params"]["ids"]) == set(ev.EVENT_IDS) >= {1293, 9301, 37, 659, 660, 666, 667, 9298, 9299}
    profile = gather.get_profile("5.5")
    assert gather.evidence_ops("EXOUT", profile) == ev.evidence_ops("EXOUT", profile)
    # the read always stops: at the window on the server's clock, or at an absolute server time
    assert ev.evidence_ops("EXOUT")[0]["params"]["since"] == "-PT120M"
    assert gather.evidence_ops("EXOUT", profile, 30)[0]["params"]["since"] == "-PT30M"
    assert batch[0]["params"]["since"] == "2024-01-01T00:00:00Z"
    assert not hasattr(gather, "EVIDENCE_EVENT_IDS")
