"""Firewall driver model (see docs/design.md and shared domain/firewall.md).

Three facts: service passers (port, interface, target, optional alias address), routed paths (host pair, port), and the
source rewrite of inbound proxied connections (client-side transparency).  Three changes and their
inverses: remove/add a passer, add/remove a routed path, transparency off/on.

Drivers:
* ``raptor`` (guided): Raptor Eagle and its successors have no scriptable interface; the facts are
  what the operator documented, overlaid with change records the toolkit saw confirmed; a change
  is an operator change record (rendered by xcon.plan) plus a confirmation.
* ``nftables`` (automated): the same three concepts as rules of one dedicated table, rendered here.
"""

from __future__ import annotations

import copy

from xcon import state as xstate

STEP_ACTIONS = ("remove_passer", "add_passer", "add_routed_path", "remove_routed_path", "set_transparency")
NFT_TABLE = "xcon"


class FirewallError(Exception):
    """A firewall fact or step is malformed."""


def _passer_key(passer):
    return (int(passer.get("port", 102)), str(passer.get("interface", "")).lower(), str(passer.get("target", "")).upper())


def _path_key(path):
    return (tuple(sorted(str(h).upper() for h in path.get("hosts", []))), int(path.get("port", 102)))


def normalize_facts(name, declared, driver="raptor", source="inventory"):
    """The design's firewall-facts shape from an operator's declaration (inventory variables)."""
    declared = declared or {}
    facts = {
        "name": name,
        "driver": driver,
        "product": declared.get("product", "raptor-eagle-5"),
        "source": source,
        "inside": [str(h) for h in declared.get("inside", []) or []],
        "outside": [str(h) for h in declared.get("outside", []) or []],
        "interfaces": dict(declared.get("interfaces", {}) or {}),
        "passers": sorted((dict(p) for p in declared.get("passers", []) or []), key=_passer_key),
        "routed_paths": sorted((dict(p) for p in declared.get("routed_paths", []) or []), key=_path_key),
        "client_transparency": _as_bool(declared.get("client_transparency", False)),
    }
    for passer in facts["passers"]:
        passer["port"] = int(passer.get("port", 102))
    for path in facts["routed_paths"]:
        path["port"] = int(path.get("port", 102))
    return facts


def _as_bool(value):
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def load_state(state_file):
    """The toolkit's record of confirmed changes for one firewall, or None."""
    return xstate.read_json(state_file)


def facts_with_state(name, declared, state_file, driver="raptor"):
    """Declared facts overlaid with the last confirmed state (the operator's inventory may lag)."""
    facts = normalize_facts(name, declared, driver)
    state = load_state(state_file)
    if state and state.get("firewall"):
        for key in ("passers", "routed_paths", "client_transparency"):
            if key in state["firewall"]:
                facts[key] = copy.deepcopy(state["firewall"][key])
        facts["source"] = "inventory+confirmed-records"
        facts["confirmed_records"] = [r.get("run_id") for r in state.get("records", [])]
    return facts


def validate_step(step):
    action = step.get("action")
    if action not in STEP_ACTIONS:
        raise FirewallError(f"unknown firewall step {action!r}; expected one of {', '.join(STEP_ACTIONS)}")
    if action in ("remove_passer", "add_passer"):
        missing = [k for k in ("port", "interface", "target") if k not in step]
    elif action in ("add_routed_path", "remove_routed_path"):
        missing = [k for k in ("hosts", "port") if k not in step]
        if not missing and len(step["hosts"]) != 2:
            raise FirewallError(f"{action}: hosts must name exactly two servers, got {step['hosts']!r}")
    else:
        missing = [] if "value" in step else ["value"]
    if missing:
        raise FirewallError(f"{action}: missing {', '.join(missing)}")


def apply_step(facts, step):
    """Return (new_facts, changed) after one step; pure."""
    validate_step(step)
    facts = copy.deepcopy(facts)
    action = step["action"]
    changed = False
    if action == "remove_passer":
        keep = [p for p in facts["passers"] if _passer_key(p) != _passer_key(step)]
        changed = len(keep) != len(facts["passers"])
        facts["passers"] = keep
    elif action == "add_passer":
        if all(_passer_key(p) != _passer_key(step) for p in facts["passers"]):
            passer = {"port": int(step["port"]), "interface": step["interface"], "target": step["target"]}
            if step.get("address"):
                passer["address"] = str(step["address"])
            facts["passers"] = sorted(facts["passers"] + [passer], key=_passer_key)
            changed = True
    elif action == "add_routed_path":
        if all(_path_key(p) != _path_key(step) for p in facts["routed_paths"]):
            facts["routed_paths"] = sorted(facts["routed_paths"] + [{"hosts": list(step["hosts"]), "port": int(step["port"])}], key=_path_key)
            changed = True
    elif action == "remove_routed_path":
        keep = [p for p in facts["routed_paths"] if _path_key(p) != _path_key(step)]
        changed = len(keep) != len(facts["routed_paths"])
        facts["routed_paths"] = keep
    else:
        value = _as_bool(step["value"])
        changed = facts["client_transparency"] != value
        facts["client_transparency"] = value
    return facts, changed


def pending_steps(facts, steps):
    """The steps that would change something, in order (a re-run keeps none)."""
    pending = []
    for step in steps:
        facts, changed = apply_step(facts, step)
        if changed:
            pending.append(dict(step))
    return pending, facts


def inverse_step(step):
    """The step that undoes `step` (rollback emits the reverse record)."""
    action = step["action"]
    inverse = dict(step)
    inverse["action"] = {
        "remove_passer": "add_passer",
        "add_passer": "remove_passer",
        "add_routed_path": "remove_routed_path",
        "remove_routed_path": "add_routed_path",
        "set_transparency": "set_transparency",
    }[action]
    if action == "set_transparency":
        inverse["value"] = not _as_bool(step["value"])
    return inverse


def record_confirmed(state_file, facts_after, record):
    """Remember that `record` was carried out; `facts_after` becomes this firewall's state."""
    state = load_state(state_file) or {"records": []}
    state["firewall"] = {k: facts_after[k] for k in ("passers", "routed_paths", "client_transparency")}
    state["records"].append({"run_id": record.get("run_id"), "steps": record.get("steps", [])})
    xstate.write_json_atomic(state_file, state)


# -- nftables (automated) driver ------------------------------------------------------------------
def render_nftables(facts, addresses):
    """The toolkit's own table for a Linux gateway, from the three facts.

    `addresses` maps server names to IP addresses.  A passer is a DNAT of TCP 102 on the interface
    address to the target; transparency off adds an SNAT to the interface facing the target; a
    routed path is a forward-chain accept for the host pair on TCP 102 with no NAT.
    """
    interfaces = facts.get("interfaces", {})
    inside = {h.upper() for h in facts.get("inside", [])}
    lines = [f"table inet {NFT_TABLE} {{", "  chain prerouting {", "    type nat hook prerouting priority dstnat; policy accept;"]
    for passer in facts.get("passers", []):
        listen = passer.get("address") or interfaces.get(passer["interface"])
        target = addresses.get(passer["target"].upper()) or addresses.get(passer["target"])
        lines.append(f"    ip daddr {listen} tcp dport {passer['port']} dnat ip to {target}:{passer['port']}")
    lines += ["  }", "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;"]
    for passer in facts.get("passers", []):
        target_name = passer["target"].upper()
        target = addresses.get(target_name) or addresses.get(passer["target"])
        facing = interfaces.get("internal" if target_name in inside else "external")
        if target_name not in inside or not facts.get("client_transparency"):
            lines.append(f"    ip daddr {target} tcp dport {passer['port']} snat ip to {facing}")
    lines += ["  }", "  chain forward {", "    type filter hook forward priority filter; policy accept;"]
    for path in facts.get("routed_paths", []):
        a, b = (addresses.get(h.upper()) or addresses.get(h) for h in path["hosts"])
        lines.append(f"    ip saddr {{ {a}, {b} }} ip daddr {{ {a}, {b} }} tcp dport {path['port']} accept")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"
