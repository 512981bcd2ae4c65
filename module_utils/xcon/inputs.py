"""The operator variables of the playbook contract (docs/contracts/playbook.md, README "Operator
variables"): the type and range of each, checked in one place before anything is read or changed.

`xcon_validate` (the first task of every run, role xcon_run) reads each variable as every host that
uses it sees it (an extra variable, a group or host variable) and refuses the run with one message
per bad value: the variable, the value, where it was seen, what is allowed and what to write.
Values given with ``-e`` arrive as strings (``-e xcon_allow_mta_restart=false`` is the string
"false"), so booleans and numbers are accepted in their string forms too, and nothing else.

Pure Python, no Ansible: the unit tests call :func:`check` directly.
"""

from __future__ import annotations

import difflib
import glob
import ipaddress
import os
import re

# A connector's directory name (RDN, Common-Name) is at most 64 characters: the Exchange 5.5 schema
# (Common-Name, range 1..64) and Active Directory's cn (rangeUpper 64) agree.
NAME_MAX = 64
# Admin-Display-Name: at most 256 characters (Exchange 5.5 schema).
DISPLAY_NAME_MAX = 256
# N-Address (the Stack address, host name or dotted IP as ASCII): 1..50 bytes (Exchange 5.5 schema).
STACK_ADDRESS_MAX = 50

# Characters a name may not contain, by what it names (the lab's topology rules, tests/lab/xconlab_lab
# topology_checker.SITE_RE and topology_servers._connector): the X.500 form of a DN
# (/O=ORG/OU=SITE/CN=Configuration/CN=Connections/CN=NAME, as the MTA writes it in its events)
# separates its parts with '/' and a part's type from its value with '='.
FORBIDDEN_CHARS = {"reverse connector name": "/", "organisation name": "/="}

# A run id names a directory directly under the reports directory: letters, digits, '.', '_' and
# '-', not starting with '.', and not one of the directory's own entries.
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
RESERVED_RUN_IDS = ("latest", "state")

WORKAROUNDS = ("auto", "reverse_connector", "firewall_tunnel", "transparency_off", "none")
TRUE_WORDS = ("true", "yes", "on", "1", "y", "t")
FALSE_WORDS = ("false", "no", "off", "0", "n", "f")

MINUTES_PER_WEEK = 7 * 24 * 60
MINUTES_PER_YEAR = 366 * 24 * 60


class Var:
    """One operator variable: its kind and range, and an example value for the message."""

    def __init__(self, name, kind, example, low=None, high=None, choices=None, what=""):
        self.name, self.kind, self.example = name, kind, example
        self.low, self.high, self.choices, self.what = low, high, choices, what


# The playbook contract, and the other variables an operator may set (README).  `what` is the
# unit or meaning shown in the message.
CONTRACT = (
    Var("xcon_workaround", "choice", "auto", choices=WORKAROUNDS),
    Var("xcon_open_transactions", "choice", "finish", choices=("finish", "rollback")),
    Var("xcon_transparency_off_acknowledged", "bool", "true"),
    Var("xcon_firewall_change_confirmed", "bool", "true"),
    Var("xcon_exchange_change_confirmed", "bool", "true"),
    Var("xcon_allow_mta_restart", "bool", "false"),
    Var("xcon_report_dir", "dir", "reports"),
    Var("xcon_state_dir", "dir", "reports/state"),
    Var("xcon_verify_timeout_minutes", "int", "60", 1, MINUTES_PER_WEEK, what="minutes to wait for the queues to drain"),
    Var("xcon_verify_poll_minutes", "int", "5", 1, 24 * 60, what="minutes between two observations"),
    Var("xcon_verify_settle_minutes", "int", "0", 0, 24 * 60, what="minutes after the change before refusals count"),
    Var("xcon_queue_threshold", "int", "10", 0, 10 ** 9, what="queued messages that count as a backlog"),
    Var("xcon_evidence_window_minutes", "int", "120", 1, MINUTES_PER_YEAR, what="minutes of MTA events that count as evidence"),
    Var("xcon_reverse_connector_name", "name", "TO-OUTSIDE-REVERSE"),
    Var("xcon_stack_address_type", "choice", "ip", choices=("ip", "hostname")),
    Var("xcon_preview_on_servers", "bool", "true"),
    Var("xcon_lock_wait_seconds", "int", "600", 0, 7 * 24 * 3600, what="seconds to wait for another run's lock"),
    Var("xcon_firewall_changes_possible", "bool", "false"),
    Var("xcon_exchange_version", "choice", "5.5", choices=("4.0", "5.0", "5.5")),
    Var("xcon_firewall_driver", "choice", "raptor", choices=("raptor", "nftables")),
    # Per server: the Exchange 5.5 directory's LDAP port (moved off 389 on a Windows 2000 domain
    # controller, Q224447) and the organisation whose o= naming context it must serve.
    Var("xcon_ldap_port", "int", "390", 1, 65535, what="TCP port of the Exchange directory (LDAP)"),
    Var("xcon_organization", "name", "CONTOSO"),
    Var("xcon_site", "name", "INSIDE"),     # per server: its site (connector searches read its Connections)
    # Run ids: each names a directory under the reports directory, so none may leave it.
    Var("xcon_run_id_requested", "run_id", "20260105T090000Z-abc123"),
    Var("xcon_run_id", "run_id", "20260105T090000Z-abc123"),
    Var("xcon_saved_run_id", "run_id", "20260105T090000Z-abc123"),
    # playbooks/rollback.yml: the run to undo, and whether connectors changed since are restored too.
    Var("xcon_rollback_run_id", "run_id", "20260105T090000Z-abc123"),
    Var("xcon_rollback_force", "bool", "true"),
)
BY_NAME = {var.name: var for var in CONTRACT}

# Facts the run computes itself; given from outside (-e wins over set_fact) they would redirect
# where the run writes.
INTERNAL = ("xcon_run_dir", "xcon_run_report_root", "xcon_run_state_dir")


def as_bool(value):
    """True/False for a boolean or one of Ansible's boolean words, else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None


def as_int(value):
    """The integer in `value` (an int, or a string of digits with an optional sign), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None


def name_problem(name, what="name"):
    """Why `name` cannot be a connector's directory name, or None."""
    if not isinstance(name, str):
        return f"the {what} must be text"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return f"the {what} contains a control character"
    if name != name.strip():
        return f"the {what} starts or ends with a space"
    if len(name) > NAME_MAX:
        return f"the {what} has {len(name)} characters; the directory accepts at most {NAME_MAX}"
    bad = sorted({c for c in name if c in FORBIDDEN_CHARS.get(what, "/")})
    if bad:
        return (f"the {what} contains {', '.join(repr(c) for c in bad)}, which the directory's names may not contain "
                "(the X.500 form /O=ORG/OU=SITE/CN=NAME separates its parts with '/' and '=')")
    return None


def run_id_problem(run_id):
    """Why `run_id` cannot name a directory under the reports directory, or None."""
    text = str(run_id)
    if text.lower() in RESERVED_RUN_IDS:
        return f"'{text}' is the name of the reports directory's own '{text}' folder"
    if not RUN_ID_RE.match(text) or ".." in text:
        return ("a run id names a folder directly under the reports directory: letters, digits, '.', '_' "
                "and '-' only (at most 80, not starting with '.'); no '/', no '..', no absolute path")
    return None


def dir_problem(path, root):
    """Why the run cannot write under directory `path` (relative to `root`), or None."""
    if not isinstance(path, str) or not path.strip():
        return "the directory is empty"
    full = path if os.path.isabs(path) else os.path.join(root or os.getcwd(), path)
    full = os.path.normpath(full)
    if os.path.exists(full):
        if not os.path.isdir(full):
            return f"{full} is not a directory (a file is there)"
        if not os.access(full, os.W_OK | os.X_OK):
            return f"{full} is not writable"
        return None
    parent = os.path.dirname(full)
    while parent and not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    if parent and os.path.exists(parent):
        if not os.path.isdir(parent):
            return f"{full} cannot be created: {parent} is not a directory (a file is there)"
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"{full} cannot be created: {parent} is not writable"
    return None


def check(var, value, root=None):
    """Why `value` is not a valid value of contract variable `var` (a Var or its name), or None."""
    var = BY_NAME[var] if isinstance(var, str) else var
    if value is None:
        return None  # not set: the default applies
    if var.kind == "bool":
        if as_bool(value) is None:
            return "not a boolean: write true or false"
        return None
    if var.kind == "int":
        number = as_int(value)
        if number is None:
            return f"not a whole number: give {var.what} as a number from {var.low} to {var.high}"
        if (var.low is not None and number < var.low) or (var.high is not None and number > var.high):
            return f"out of range: give {var.what} from {var.low} to {var.high}"
        return None
    if var.kind == "choice":
        # YAML may give a version as a number (4.0, 5.5): the modules take it as text.
        if isinstance(value, (bool, dict, list)) or str(value) not in var.choices:
            return "not one of: " + ", ".join(var.choices)
        return None
    if var.kind == "dir":
        problem = dir_problem(value, root)
        return f"{problem}: give a directory the run can write to" if problem else None
    if var.kind == "name":
        if value == "":
            return None  # empty: <inside connector>-REVERSE
        what = {"xcon_organization": "organisation name", "xcon_site": "site name"}.get(var.name, "reverse connector name")
        problem = name_problem(value, what)
        return f"{problem}; choose another name" if problem else None
    if var.kind == "run_id":
        if value == "":
            return None
        return run_id_problem(value)
    raise AssertionError(var.kind)


def shown(value):
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 80 else text[:77] + "...'"


def _hosts(hosts):
    hosts = sorted(set(hosts), key=lambda h: (h != "localhost", h))
    return ", ".join(hosts) if len(hosts) <= 6 else ", ".join(hosts[:6]) + f" and {len(hosts) - 6} more"


def where(hosts, everyone):
    return "every host" if everyone and set(hosts) >= set(everyone) and len(everyone) > 1 else _hosts(hosts)


def validate(values_by_host, root=None):
    """Every problem of the operator variables, one message per variable and value.

    `values_by_host`: ``{host: {variable: value}}`` as each host sees the variables (unset ones
    absent or None).  A message names the variable, the value, where it was seen, what is wrong and
    what to write instead."""
    seen = {}
    for host, values in values_by_host.items():
        for name, value in (values or {}).items():
            if name in INTERNAL and value is not None:
                seen.setdefault((name, shown(value)), ["internal", []])[1].append(host)
                continue
            if name not in BY_NAME:
                continue
            problem = check(BY_NAME[name], value, root)
            if problem:
                seen.setdefault((name, shown(value)), [problem, []])[1].append(host)
    messages = []
    for (name, text), (problem, hosts) in sorted(seen.items()):
        if problem == "internal":
            messages.append(f"{name}={text} (seen by {where(hosts, values_by_host)}): the run sets this itself and it decides where "
                            f"the run writes; do not set it (use xcon_report_dir for the reports directory).")
            continue
        example = BY_NAME[name].example
        messages.append(f"{name}={text} (seen by {where(hosts, values_by_host)}): {problem} (e.g. -e {name}={example}).")
    return messages


# -- variables nobody reads ---------------------------------------------------------------------------
# The inventory variables the toolkit reads per host (docs/design.md "Server identity", the
# firewall facts of "Lab inventory", the second hop's target account) and the lab's.  With the
# contract, the internal facts and every name the roles and playbooks mention (role defaults and
# argument specs, registered results, facts), they are every xcon_ variable fix-xcon knows.
INVENTORY = (
    "xcon_server_name", "xcon_server_address", "xcon_server_fqdn", "xcon_management_host", "xcon_target_user",
    "xcon_directory_host", "xcon_replication_timeout_minutes", "xcon_exchange_operator_command",
    "xcon_target_password", "xcon_firewall_product", "xcon_firewall_inside", "xcon_firewall_outside",
    "xcon_firewall_interfaces", "xcon_firewall_passers", "xcon_firewall_routed_paths", "xcon_firewall_client_transparency",
    "xcon_firewall_operator_command", "xcon_tool_version", "xcon_lab_control", "xcon_lab_state_dir", "xcon_lab_topology",
)
_VARIABLE = re.compile(r"\bxcon_[a-z0-9_]*[a-z0-9]\b")


def known_names(root):
    """Every xcon_ variable name fix-xcon defines or reads (see INVENTORY)."""
    names = set(BY_NAME) | set(INTERNAL) | set(INVENTORY)
    for pattern in ("roles/*/*/*.yml", "playbooks/*.yml", "*.yml"):
        for path in glob.glob(os.path.join(root or os.getcwd(), pattern)):
            with open(path, encoding="utf-8") as handle:
                names.update(_VARIABLE.findall(handle.read()))
    return names


def unknown_variables(names_by_host, known):
    """One message per xcon_ variable that some host has and nothing reads (a misspelt
    ``-e xcon_allow_mta_restarts=false`` would be silently ignored), with the closest known name."""
    unknown = {}
    for host, names in names_by_host.items():
        for name in names:
            if str(name).startswith("xcon_") and name not in known:
                unknown.setdefault(str(name), []).append(host)
    operator = sorted(set(BY_NAME) | set(INVENTORY))
    messages = []
    for name, hosts in sorted(unknown.items()):
        close = (difflib.get_close_matches(name, operator, n=1, cutoff=0.75)
                 or difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75))
        hint = (f"did you mean {close[0]}?" if close
                else "README \"Operator variables\" lists the variables fix-xcon reads")
        messages.append(f"{name} (seen by {where(hosts, names_by_host)}): no such fix-xcon variable, so it would be "
                        f"ignored without a word; {hint}")
    return messages


# -- one address per server ---------------------------------------------------------------------------
def _address_key(value):
    text = str(value).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text.rstrip(".").casefold()


def duplicate_addresses(addresses):
    """Two Exchange hosts given one address (``{host: xcon_server_address}``): a link between them
    would be repointed at the wrong server.  One message per shared address."""
    by_address = {}
    for host, address in sorted(addresses.items()):
        if address not in (None, ""):
            by_address.setdefault(_address_key(address), []).append(host)
    return [f"xcon_server_address='{address}' is given to {len(hosts)} Exchange hosts ({', '.join(hosts)}): each server's "
            "address is its own MTA's; a change planned from it would point a connector at the wrong server. "
            "Correct the inventory (xcon_server_address of each host)."
            for address, hosts in sorted(by_address.items()) if len(hosts) > 1]
