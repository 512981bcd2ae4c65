"""Parsing the MTA event texts of docs/design.md into evidence."""
from xcon import evidence as ev

DN_IN = "/O=CONTOSO/OU=OUTSIDE/CN=CONFIGURATION/CN=CONNECTIONS/CN=TO-INSIDE"
TEXTS = {
    1290: f"A locally initiated association to {DN_IN} was refused. The failure reason provider was 0 and the reason was 0. Control block index 202. Type 1. [PLATFORM KERNEL 20 130] (12)",
    289: f"A connection to {DN_IN} could not be opened. [MTA XFER-IN 17 26] (12)",
    1294: f"An association with entity {DN_IN} ended abnormally. [198 1 0 1 PLATFORM KERNEL 20 130] (10)",
    1293: f"A remotely-initiated association from {DN_IN} was refused. The failure reason provider is 0 and the reason is 0. Control block index 1. Type 1. [PLATFORM KERNEL 26 128] (12)",
    37: f"An association to {DN_IN} was refused because the connector is not scheduled to be active (schedule Never). [MTA DISPATCHER 13 37] (12)",
    659: f"The queue for {DN_IN} is backlogged: 23 messages are waiting.",
    660: f"The backlog of the queue for {DN_IN} has subsided.",
}
HEX_9301 = ("An incoming connection from network address 3139382E35312E3130302E3130 did not match the Stack address "
            "of any X.400 connector on this server. The connection was refused. [MTA BASE 17 9301] (14)")


def event(event_id, message, record=1, type_="Warning", category="X.400 Service"):
    return {"record": record, "id": event_id, "time": "2024-01-01T00:00:00Z", "type": type_,
            "category": category, "source": "MSExchangeMTA", "message": message}


def test_each_kb_text_names_the_connector():
    for event_id, text in TEXTS.items():
        parsed = ev.parse_event(event(event_id, text))
        assert parsed["dn"] == DN_IN, event_id
        assert parsed["connector"] == "TO-INSIDE", event_id
        assert parsed["address"] is None
        assert parsed["message"] == text and parsed["time"] == "2024-01-01T00:00:00Z"


def test_9301_hex_decodes_to_text():
    parsed = ev.parse_event(event(9301, HEX_9301, type_="Information", category="Configuration"))
    assert parsed["address"] == "198.51.100.10" and parsed["dn"] is None and parsed["connector"] is None
    assert ev.decode_hex_address("484F5354") == "HOST"


def test_1293_on_container_has_no_connector():
    dn = "/O=CONTOSO/OU=INSIDE/CN=CONFIGURATION/CN=CONNECTIONS"
    parsed = ev.parse_event(event(1293, TEXTS[1293].replace(DN_IN, dn)))
    assert parsed["dn"] == dn and parsed["connector"] is None


def test_names_with_spaces_and_case_mapping():
    dn = "/O=CONTOSO/OU=OUTSIDE/CN=CONFIGURATION/CN=CONNECTIONS/CN=TO INSIDE, WAS OLD"
    parsed = ev.parse_event(event(1290, TEXTS[1290].replace(DN_IN, dn)), connectors=["To Inside, was old"])
    assert parsed["dn"] == dn and parsed["connector"] == "To Inside, was old"
    lower = ev.parse_event(event(289, TEXTS[289].replace(DN_IN, DN_IN.lower())))
    assert lower["connector"] == "to-inside"


def test_build_evidence():
    events = [event(i, TEXTS[i], record=n) for n, i in enumerate((1290, 289, 1294) * 2)]
    events.append(event(9301, HEX_9301, record=10, type_="Information", category="Configuration"))
    events.append(event(9301, HEX_9301, record=11, type_="Information", category="Configuration"))
    counters = {"samples": [
        {"path": "\\\\EXOUT\\MSExchangeMTA Connections(TO-INSIDE)\\Queue Length", "instance": "TO-INSIDE", "value": 23.0},
        {"path": "\\\\EXOUT\\MSExchangeMTA\\Work Queue Length", "instance": None, "value": 0},
    ]}
    result = ev.build_evidence("EXOUT", "2024-01-01T00:00:00Z", {"now": "2024-01-01T02:00:00Z", "events": events},
                               counters, {"name": "MSExchangeMTA", "state": "Running", "restarted": False})
    assert result["counts"] == {"1290": 2, "289": 2, "1294": 2, "1293": 0, "9301": 2, "37": 0}
    assert result["addresses_9301"] == ["198.51.100.10"]
    assert result["queues"] == {"TO-INSIDE": 23} and result["work_queue"] == 0
    assert result["service"] == {"name": "MSExchangeMTA", "state": "Running"}
    assert result["now"] == "2024-01-01T02:00:00Z" and result["since"] == "2024-01-01T00:00:00Z"
    assert [e["id"] for e in result["events"]][:3] == [1290, 289, 1294]


def test_evidence_ops():
    batch = ev.evidence_ops("EXOUT", since="2024-01-01T00:00:00Z")
    assert [o["op"] for o in batch] == ["event_query", "perf_counters", "service"]
    assert batch[1]["params"]["paths"] == ["\\\\EXOUT\\MSExchangeMTA Connections(*)\\Queue Length",
                                           "\\\\EXOUT\\MSExchangeMTA\\Work Queue Length"]
    assert batch[0]["params"]["source"] == "MSExchangeMTA" and 1293 in batch[0]["params"]["ids"]
