"""Firewall driver model (see docs/design.md and shared domain/firewall.md).

Three facts: service passers (port, interface, target, optional alias address), routed paths (host pair, port), and the
source rewrite of inbound proxied connections (client-side transparency).  Three changes and their
inverses: remove/add a passer, add/remove a routed path, transparency off/on.

Drivers:
* ``raptor`` (guided): Raptor Eagle and its successors have no scriptable interface; the facts are
  what the operator documented, overlaid with change records the toolkit saw confirmed; a change
  is an operator change record plus a confirmation; the console steps for the operator, per
  product generation, are rendered here (``operator_instructions``).
* ``nftables``: the same facts and change records as ``raptor`` today (declared facts overlaid
  with confirmed records); the toolkit neither reads nor writes the gateway's table itself.
"""

from __future__ import annotations

import copy

from xcon import state as xstate

STEP_ACTIONS = ("remove_passer", "add_passer", "add_routed_path", "remove_routed_path", "set_transparency")
NFT_TABLE = "xcon"


TRANSPARENCY_SIDE_EFFECT = (
    "Side effect: every server behind this firewall rule (web, mail and other servers) will see the "
    "firewall's address instead of the real client address, in its logs and access controls."
)


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
    missing = missing_facts(facts)
    if missing:
        facts["missing"] = missing
    return facts


# What a firewall's facts must say before any link through it is diagnosed: which servers sit on
# each side, and the two interfaces' addresses (what the connectors' Stack addresses are checked
# against).  A firewall whose inventory has only connection variables says none of it.
REQUIRED_FACTS = ("inside", "outside", "interfaces.internal", "interfaces.external")


def missing_facts(facts):
    """The REQUIRED_FACTS that `facts` leave empty."""
    missing = []
    for name in REQUIRED_FACTS:
        key, _, sub = name.partition(".")
        value = facts.get(key)
        if sub:
            value = (value or {}).get(sub) if isinstance(value, dict) else None
        if not value:
            missing.append(name)
    return missing


def unknown_reason(facts):
    """Why a firewall's facts cannot be used (its driver could not read it, or the inventory leaves
    required facts out), or None."""
    if facts.get("error"):
        return f"its facts could not be read: {facts['error']}"
    if facts.get("missing"):
        names = [f"xcon_firewall_{key}" + (f" ({sub})" if sub else "") for key, _, sub in (m.partition(".") for m in facts["missing"])]
        return f"the inventory does not give {', '.join(names)}"
    return None


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


def _new_passer(step):
    passer = {"port": int(step["port"]), "interface": step["interface"], "target": step["target"]}
    if step.get("address"):
        passer["address"] = str(step["address"])
    return passer


def _new_path(step):
    return {"hosts": list(step["hosts"]), "port": int(step["port"])}


# What the rule steps work on: "<add|remove>_<kind>" -> (the facts' list, its rules' key, a new rule).
_RULE_KINDS = {"passer": ("passers", _passer_key, _new_passer), "routed_path": ("routed_paths", _path_key, _new_path)}


def _apply(rules, step):
    """Apply one step to `rules` (the facts' rule lists as (key, rule) pairs, and the transparency;
    the caller's own copy); whether it changed anything."""
    validate_step(step)
    if step["action"] == "set_transparency":
        value = _as_bool(step["value"])
        changed = rules["client_transparency"] != value
        rules["client_transparency"] = value
        return changed
    verb, _, kind = step["action"].partition("_")
    name, keyed, new_rule = _RULE_KINDS[kind]
    key = keyed(step)
    present = any(k == key for k, _ in rules[name])
    if verb == "remove":
        if present:
            rules[name] = [(k, rule) for k, rule in rules[name] if k != key]
        return present
    if present:
        return False
    rules[name] = sorted(rules[name] + [(key, new_rule(step))], key=lambda pair: pair[0])
    return True


def pending_steps(facts, steps):
    """The steps that would change something, in order (a re-run keeps none), and the facts after
    them; pure: `facts` is not changed, and the facts after share its rules (dicts no caller changes).
    Each rule's key is computed once and the rules are not deep-copied: a copy per step, then a key
    per rule and step, grew with the square of the fleet (every link's steps against every link's
    rules: 1.5 s, then 0.3 s, to render a 300-link record), and the gates and the report ask once per
    plan entry (a deep copy of the whole firewall each time)."""
    facts = dict(facts)
    lists = [(name, keyed) for name, keyed, _ in _RULE_KINDS.values() if name in facts]
    rules = {name: [(keyed(rule), rule) for rule in facts[name]] for name, keyed in lists}
    if "client_transparency" in facts:
        rules["client_transparency"] = facts["client_transparency"]
    pending = [dict(step) for step in steps if _apply(rules, step)]
    for name, _ in lists:
        facts[name] = [rule for _, rule in rules[name]]
    if "client_transparency" in facts:
        facts["client_transparency"] = rules["client_transparency"]
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


# -- change record and the guided driver's operator instructions (its console text, per product) --
def firewall_change_record(firewall, steps, run_id):
    """design.md's machine-readable record; `steps` are record steps or planned changes."""
    flat = []
    for item in steps or []:
        if "firewall_steps" in item:
            items = item["firewall_steps"]
        elif "kind" in item:  # a planned connector change: not the firewall's
            items = []
        else:
            items = [item]
        for step in items:
            validate_step(step)
            flat.append(copy.deepcopy(step))
    return {"version": 1, "firewall": (firewall or {}).get("name"), "run_id": run_id,
            "product": (firewall or {}).get("product") or "raptor-eagle-5", "steps": flat}


LOCAL_TUNNEL_ASSUMPTION = (
    "ASSUMPTION: KB Q196381 calls this a \"local tunnel\"; the exact Raptor 5.x object behind that word "
    "is not confirmed. What is needed is a path on which TCP 102 between the two hosts is routed, not "
    "proxied, so that both keep their real addresses. Use the object your Raptor version offers for that."
)

# Per product generation: console name, how a change takes effect, and the text of each step kind.
CONSOLES = {
    "raptor": {
        "title": "Raptor Eagle 5.x/6.x - Raptor Management Console (RMC) on the Windows NT firewall",
        "finish": "Save the configuration in the Management Console and let the firewall reload its rules.",
        "remove_passer": "Delete the Generic Service Passer (GSP) that listens on TCP {port} on the {interface} interface "
                         "and relays to {target}, and the authorization rule that allows it.",
        "add_passer": "Create a Generic Service Passer (GSP) listening on TCP {port} on the {interface} interface, relaying to "
                      "{target}, with an authorization rule allowing it.",
        "add_routed_path": "Create a local tunnel between {a} and {b} for TCP {port}. " + LOCAL_TUNNEL_ASSUMPTION,
        "remove_routed_path": "Delete the local tunnel between {a} and {b} for TCP {port}. " + LOCAL_TUNNEL_ASSUMPTION,
        "set_transparency": "In the properties of the TCP {port} GSP rule, turn client-side transparency {onoff}.",
    },
    "sgmi": {
        "title": "Symantec Enterprise Firewall 7/8 or Gateway Security - SGMI web console",
        "finish": "Click Activate: SGMI stages every change until the configuration is activated.",
        "remove_passer": "Under Policy > Rules, delete the rule that allows the Generic Service Proxy (GSP) on TCP {port} "
                         "arriving on the {interface} interface to {target}; delete the GSP service on port {port} if "
                         "no other rule uses it.",
        "add_passer": "Create a Generic Service Proxy (GSP) service on TCP {port} and a rule allowing it from the "
                      "{interface} interface to {target}.",
        "add_routed_path": "Create a rule allowing TCP {port} between {a} and {b} in both directions that is passed, not "
                           "proxied, and keeps both original addresses (no address transform). (Modelled as a routed path; "
                           "check the exact rule options of your release.)",
        "remove_routed_path": "Delete the rule that passes TCP {port} between {a} and {b} unproxied.",
        "set_transparency": "In the rule for the TCP {port} GSP, set Address transforms to {transform}.",
    },
    "generic": {
        "title": "Firewall of unknown product - apply the equivalent of each step",
        "finish": "Make the change effective as your firewall requires.",
        "remove_passer": "Remove the TCP {port} relay listening on the {interface} interface to {target}.",
        "add_passer": "Add a TCP {port} relay listening on the {interface} interface to {target}.",
        "add_routed_path": "Route (do not proxy) TCP {port} between {a} and {b}, keeping both real addresses.",
        "remove_routed_path": "Remove the routed path for TCP {port} between {a} and {b}.",
        "set_transparency": "Turn client-side transparency {onoff} (source address {transform}).",
    },
}


def product_family(product):
    product = str(product or "").lower()
    if product.startswith("raptor"):
        return "raptor"
    if product.startswith(("sef", "sgs", "symantec")):
        return "sgmi"
    return "generic"


def _step_text(console, step):
    hosts = list(step.get("hosts") or ["?", "?"])
    value = _as_bool(step.get("value", False))
    interface = step.get("interface") if not step.get("address") else f"{step.get('interface')} ({step['address']})"
    fields = {"port": step.get("port", 102), "interface": interface, "target": step.get("target"),
              "a": hosts[0], "b": hosts[-1], "onoff": "on" if value else "off",
              "transform": "Use Original Source Address" if value else "Use Gateway Address"}
    text = console[step["action"]].format(**fields)
    if step["action"] == "set_transparency" and not value:
        text += " " + TRANSPARENCY_SIDE_EFFECT
    return text


def operator_instructions(record, product):
    """Console steps for a person, for the product generation of the firewall."""
    console = CONSOLES[product_family(product)]
    lines = [f"Firewall change for {record.get('firewall')} (run {record.get('run_id')})", console["title"], ""]
    if product_family(product) == "generic":
        lines.insert(2, f"(product {product!r} is not one the toolkit knows; the steps say what to achieve)")
    for number, step in enumerate(record.get("steps") or [], start=1):
        lines.append(f"{number}. {_step_text(console, step)}")
    lines += ["", console["finish"],
              "Then confirm at the prompt (or rerun with xcon_firewall_change_confirmed=true). The toolkit does not "
              "trust the confirmation: it verifies by TCP probes and the MTA evidence."]
    return "\n".join(lines)
