"""Finding codes, event ids, options and the small helpers every part of the diagnosis shares."""

from __future__ import annotations

__all__ = [  # what the package re-exports (xcon.diagnose.<CODE>)
    "TRANSPARENCY_REFUSAL", "SCHEDULE_NEVER", "BOTH_REMOTE", "TWA_OFF", "SCHEDULE_NOT_ALWAYS", "STACK_ADDRESS",
    "QUEUE_BACKLOG", "FACTS_CONTRADICTED", "REVERSE_PRESENT", "REVERSE_WRONG_STACK", "REFUSALS_UNEXPLAINED",
    "CONNECTOR_MISSING", "MTA_PORT_MISMATCH", "MTA_PORT_UNKNOWN", "WRONG_DIRECTORY", "NO_DIRECTORY", "UNREACHABLE", "ACCESS_DENIED", "FIREWALL_UNKNOWN", "FINDING_CODES", "SEVERITIES", "WORKAROUNDS",
    "REQUESTABLE", "TUNNEL_DRIVERS", "DEFAULT_OPTIONS", "OUTSIDE_REFUSAL_IDS", "INSIDE_REFUSAL_ID", "NO_MATCH_ID",
    "NEVER_ID", "BACKLOG_ID", "X400_PORT", "merged_options", "norm", "link_status",
]

TRANSPARENCY_REFUSAL = "XCON-TRANSPARENCY-REFUSAL"
SCHEDULE_NEVER = "XCON-SCHEDULE-NEVER"
BOTH_REMOTE = "XCON-BOTH-REMOTE-INITIATED"
TWA_OFF = "XCON-TWA-OFF"
SCHEDULE_NOT_ALWAYS = "XCON-SCHEDULE-NOT-ALWAYS"
STACK_ADDRESS = "XCON-STACK-ADDRESS"
QUEUE_BACKLOG = "XCON-QUEUE-BACKLOG"
FACTS_CONTRADICTED = "XCON-FIREWALL-FACTS-CONTRADICTED"
REVERSE_PRESENT = "XCON-REVERSE-CONNECTOR-PRESENT"
REVERSE_WRONG_STACK = "XCON-REVERSE-CONNECTOR-WRONG-STACK"
REFUSALS_UNEXPLAINED = "XCON-REFUSALS-UNEXPLAINED"
CONNECTOR_MISSING = "XCON-CONNECTOR-MISSING"
MTA_PORT_MISMATCH = "XCON-MTA-PORT-MISMATCH"
MTA_PORT_UNKNOWN = "XCON-MTA-PORT-UNKNOWN"
WRONG_DIRECTORY = "XCON-WRONG-DIRECTORY"
NO_DIRECTORY = "XCON-NO-DIRECTORY"
UNREACHABLE = "XCON-UNREACHABLE"
ACCESS_DENIED = "XCON-ACCESS-DENIED"
FIREWALL_UNKNOWN = "XCON-FIREWALL-UNKNOWN"

FINDING_CODES = (
    TRANSPARENCY_REFUSAL, SCHEDULE_NEVER, BOTH_REMOTE, TWA_OFF, SCHEDULE_NOT_ALWAYS, STACK_ADDRESS,
    QUEUE_BACKLOG, FACTS_CONTRADICTED, REVERSE_PRESENT, REVERSE_WRONG_STACK, REFUSALS_UNEXPLAINED,
    CONNECTOR_MISSING, MTA_PORT_MISMATCH, MTA_PORT_UNKNOWN, WRONG_DIRECTORY, NO_DIRECTORY, UNREACHABLE, ACCESS_DENIED, FIREWALL_UNKNOWN,
)

SEVERITIES = ("error", "unknown", "warning", "info")  # most to least severe (also the sort order)
WORKAROUNDS = ("reverse_connector", "firewall_tunnel", "transparency_off", "none")
REQUESTABLE = ("auto",) + WORKAROUNDS
TUNNEL_DRIVERS = ("raptor", "nftables")

DEFAULT_OPTIONS = {
    "queue_threshold": 10,
    "firewall_changes_possible": True,
    "reverse_connector_name": "",
    "address_type": "ip",
    "transparency_off_acknowledged": False,
    "exchange_version": "5.5",
}

OUTSIDE_REFUSAL_IDS = (1290, 289, 1294)
INSIDE_REFUSAL_ID = 1293
NO_MATCH_ID = 9301
NEVER_ID = 37
BACKLOG_ID = 659
X400_PORT = 102          # the MTA's TCP port unless "RFC1006 Port Number" says otherwise (Q161931)
SAMPLE_LIMIT = 3


def merged_options(options):
    """DEFAULT_OPTIONS overlaid with the caller's (None values keep the default)."""
    merged = dict(DEFAULT_OPTIONS)
    merged.update({k: v for k, v in (options or {}).items() if v is not None})
    return merged


def norm(value):
    """Upper-cased, stripped text for case-insensitive comparison of names and addresses."""
    return str(value or "").strip().upper()


def event_samples(events):
    return [{"id": e.get("id"), "time": e.get("time"), "message": e.get("message")} for e in events[-SAMPLE_LIMIT:]]


def make_finding(code, severity, host, connector, message, evidence=None):
    return {"code": code, "severity": severity, "host": host, "connector": connector,
            "message": message, "evidence": evidence or {}}


def link_status(findings):
    """error > unknown > warning > ok (info never lowers the status)."""
    severities = {f["severity"] for f in findings}
    for status in ("error", "unknown", "warning"):
        if status in severities:
            return status
    return "ok"


def sort_key(finding):
    return (SEVERITIES.index(finding["severity"]), norm(finding["host"]), finding["code"], norm(finding["connector"]))
