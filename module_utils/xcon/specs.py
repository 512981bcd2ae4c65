"""Argument specs of every fix-xcon module: one place, used by the action plugins (validation)
and by the `library/` stubs (the documented face).  Keep DOCUMENTATION in library/ in step."""

from __future__ import annotations

# Options every WinRM-backed module shares (the connection itself comes from Ansible's
# Windows connection variables of the endpoint host, not from module options).
COMMON = {
    "server": {"type": "str"},
    "exchange_version": {"type": "str", "default": "5.5", "choices": ["4.0", "5.0", "5.5"]},
    "management_host": {"type": "str"},
    "ldap_port": {"type": "int"},
    "organization": {"type": "str"},
}

CONNECTOR_INFO = dict(
    COMMON,
    names={"type": "list", "elements": "str"},
    include_raw={"type": "bool", "default": False},
    evidence_window_minutes={"type": "int"},
    fail_on_error={"type": "bool", "default": True},
    check_write_access={"type": "bool", "default": False},
    save_raw_to={"type": "path"},
    evidence_baseline_file={"type": "path"},
    result_file={"type": "path"},
    fleet={"type": "list", "elements": "str"},
    result_dir={"type": "path"},
    save_raw_dir={"type": "path"},
    save_firewall_facts={"type": "dict"},
    raw_from_dir={"type": "path"},
)

MTA_EVIDENCE = dict(
    COMMON,
    window_minutes={"type": "int", "default": 120},
    connectors={"type": "list", "elements": "str"},
)

CONNECTOR = dict(
    COMMON,
    name={"type": "str"},  # required unless fleet
    fleet={"type": "list", "elements": "str"},  # every host of the play, from one task (role xcon_change)
    phase={"type": "str", "choices": ["precondition", "reverse_connector", "stack_repoint", "stack_repoint_outside"]},
    stopped_links={"type": "list", "elements": "str", "default": []},
    restart_marker_dir={"type": "path"},  # with fleet: each host's marker is <dir>/<host>
    state={"type": "str", "default": "present", "choices": ["present", "absent"]},
    display_name={"type": "str"},
    schedule={"type": "str", "choices": ["always", "never", "selected", "remote"]},
    two_way_alternate={"type": "bool"},
    stack_address={"type": "str"},
    address_type={"type": "str", "choices": ["ip", "hostname"]},
    cost={"type": "int"},
    remote_password={"type": "str", "no_log": True},
    clone_from={"type": "str"},
    restore={"type": "dict"},
    force={"type": "bool", "default": False},
    run_dir={"type": "path"},
    restart_marker={"type": "path"},
)

MTA_SERVICE = dict(
    COMMON,
    name={"type": "str"},  # default: the Exchange profile's MTA service
    state={"type": "str", "default": "started", "choices": ["started", "restarted", "query"]},
    restart_marker={"type": "path"},
    timeout={"type": "int", "default": 300},  # the restart's stops together, and each start (seconds)
    fleet={"type": "list", "elements": "str"},  # every host of the play, from one task (state restarted)
    restart_marker_dir={"type": "path"},  # with fleet: each host's marker is <dir>/<host>
)

FIREWALL_FACTS = {
    "name": {"type": "str"},
    "driver": {"type": "str", "default": "raptor", "choices": ["raptor", "nftables"]},
    "declared": {"type": "dict", "default": {}},
    "state_file": {"type": "path"},
}

FIREWALL_CHANGE = {
    "name": {"type": "str", "required": True},
    "driver": {"type": "str", "default": "raptor", "choices": ["raptor", "nftables"]},
    "product": {"type": "str", "default": "raptor-eagle-5"},
    "steps": {"type": "list", "elements": "dict"},
    "plan_phase": {"type": "str"},
    "stopped_links": {"type": "list", "elements": "str", "default": []},
    "run_id": {"type": "str", "required": True},
    "record_dir": {"type": "path", "required": True},
    "confirmed": {"type": "bool", "default": False},
    "operator_command": {"type": "list", "elements": "str"},
    "state_file": {"type": "path"},
    "current": {"type": "dict"},
}

DIAGNOSE = {
    "exchange_hosts": {"type": "list", "elements": "str", "required": True},
    "firewall_hosts": {"type": "list", "elements": "str", "default": []},
    "workaround": {"type": "str", "default": "auto", "choices": ["auto", "reverse_connector", "firewall_tunnel", "transparency_off", "none"]},
    "queue_threshold": {"type": "int", "default": 10},
    "reverse_connector_name": {"type": "str", "default": ""},
    "address_type": {"type": "str", "default": "ip", "choices": ["ip", "hostname"]},
    "firewall_changes_possible": {"type": "bool", "default": True},
    "transparency_off_acknowledged": {"type": "bool", "default": False},
    "run_id": {"type": "str", "required": True},
    "run_dir": {"type": "path", "required": True},
    "saved_run_dir": {"type": "path"},
    "state_dir": {"type": "path"},
    "open_transactions": {"type": "str", "default": "finish", "choices": ["finish", "rollback"]},
    "preview_on_servers": {"type": "bool", "default": True},
    "final_report": {"type": "bool", "default": False},
}

VERIFY = {
    "diagnosis_file": {"type": "path"},
    "skip_links": {"type": "list", "elements": "str", "default": []},
    "links": {"type": "list", "elements": "dict"},
    "plan": {"type": "list", "elements": "dict", "default": []},
    "timeout_minutes": {"type": "int", "default": 60},
    "poll_minutes": {"type": "int", "default": 5},
    "settle_minutes": {"type": "int", "default": 0},
    "lab_control": {"type": "str", "default": ""},
    "state_dir": {"type": "path"},
}

REPORT = {
    "run_id": {"type": "str", "required": True},
    "run_dir": {"type": "path", "required": True},
    "tool_version": {"type": "str", "default": "0.0.0"},
    "diagnosis": {"type": "dict"},
    "diagnosis_file": {"type": "path"},
    "verification": {"type": "dict", "default": {}},
    "change_results": {"type": "list", "elements": "str", "default": []},
    "exchange_hosts": {"type": "list", "elements": "str", "default": []},
    "firewall_hosts": {"type": "list", "elements": "str", "default": []},
    "state_dir": {"type": "path", "required": True},
    "transaction": {"type": "dict", "default": {}},
    "rerun_command": {"type": "str", "default": ""},
}

LINK_GATE = {
    "run_dir": {"type": "path", "required": True},
    "phase": {"type": "str", "required": True, "choices": ["backup", "precondition", "reverse_connector", "firewall_tunnel_open",
                                                          "stack_repoint", "stack_repoint_outside", "firewall_tunnel_close", "transparency_off",
                                                          "mta_restart", "final"]},
    "exchange_hosts": {"type": "list", "elements": "str", "default": []},
    "extra_hosts": {"type": "list", "elements": "str", "default": []},
    "state_dir": {"type": "path", "required": True},
    "rerun_command": {"type": "str", "default": ""},
}

RUN_LOCK = {
    "run_id": {"type": "str", "required": True},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "state_dir": {"type": "path"},
    "shared": {"type": "bool", "default": False},
    "wait_seconds": {"type": "int", "default": 0},
    "report_dir": {"type": "str"},
}

ROLLBACK_PLAN = {
    "run_id": {"type": "str", "required": True},
    "report_dir": {"type": "path", "default": "reports"},
    "exchange_hosts": {"type": "list", "elements": "str", "default": []},
    "firewall_hosts": {"type": "list", "elements": "str", "default": []},
}

VALIDATE = {
    "exchange_hosts": {"type": "list", "elements": "str", "default": []},
    "firewall_hosts": {"type": "list", "elements": "str", "default": []},
    "root": {"type": "path", "required": True},
}
