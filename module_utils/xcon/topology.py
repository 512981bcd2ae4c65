"""The picture of one link for the report: who opens associations, through what, and whether the
called MTA accepts them (pure Python; the HTML report draws it as SVG).

``picture(link, servers, firewall)`` describes the link as read::

    {"inside":  {"host", "address", "readable", "connectors": [{"name", "role", "stack_address", "schedule", "opens"}]},
     "outside": {...},
     "firewall": None | {"name", "internal", "external", "client_transparency", "passers", "routed_paths"},
     "paths": [{"from": "inside" | "outside", "connector", "stack_address", "via": "passer" | "routed" | "direct" | "none",
                "seen_as", "state": "working" | "refused" | "unknown", "why"}]}

A path is drawn for every connector of the link that opens associations (not remote-initiated, not
Never).  The model is KB Q196381's: a connector connects to its Stack address; through a TCP 102
passer of the firewall the called MTA sees the firewall's address facing it, except that with
client-side transparency on a connection relayed to the inside server keeps the outside server's
real address; on a routed path (or with no firewall) it sees the caller's own address.  The called
MTA accepts the association only when one of its connectors to the caller has that address as its
Stack address and is not scheduled Never (Q189345/Q193380).  Evidence outranks the model: a side
whose refusals the diagnosis observed is drawn refused.

``after(picture, changes)`` is the same picture with the given changes' ``after`` values applied
(connector attributes, new connectors, passers, routed paths, transparency), recomputed.
"""

from __future__ import annotations

from xcon import diagnose as dx
from xcon.diagnose import links as dlinks
from xcon.mask import inert
from xcon.report_json import copied

OBSERVED_REFUSAL_CODES = (dx.TRANSPARENCY_REFUSAL,)


def _side(link, role, servers):
    host = link[role]["host"]
    server = servers.get(host) or {}
    names = {dx.norm(link[role].get("connector")): "primary", dx.norm(link[role].get("reverse_connector")): "reverse"}
    names.pop("", None)
    connectors = []
    for connector in server.get("connectors") or []:
        role_of = names.get(dx.norm(connector.get("name")))
        if role_of:
            connectors.append(_connector(connector, role_of))
    connectors.sort(key=lambda c: (c["role"] != "primary", dx.norm(c["name"])))
    return {"host": host, "address": server.get("address"), "fqdn": server.get("fqdn"),
            "readable": bool(server) and not server.get("error"), "connectors": connectors}


def _connector(connector, role):
    schedule = connector.get("schedule")
    return {"name": connector.get("name"), "role": role, "stack_address": connector.get("stack_address"),
            "schedule": schedule, "opens": schedule not in ("remote", "never", None)}


def _firewall(firewall, sides=None):
    """The firewall's part of a picture: its rules on the MTA port; with the link's `sides`, and the
    firewall indexed for the analysis under way (xcon.diagnose.links.indexed), only the candidates
    for the link's own rules (_own_rules keeps those), not a copy of every link's."""
    if not firewall:
        return None
    interfaces = firewall.get("interfaces") or {}
    entry = dlinks.index_of(firewall) if sides else None
    if entry is not None:
        passers, routed = entry.own_rules(_ids(sides["inside"]) | _ids(sides["outside"]), _stacks(sides), dx.X400_PORT)
    else:
        passers = [p for p in firewall.get("passers") or [] if int(p.get("port", dx.X400_PORT)) == dx.X400_PORT]
        routed = [p for p in firewall.get("routed_paths") or [] if int(p.get("port", dx.X400_PORT)) == dx.X400_PORT]
    return {"name": firewall.get("name"), "internal": interfaces.get("internal"), "external": interfaces.get("external"),
            "client_transparency": bool(firewall.get("client_transparency")),
            "passers": [dict(p) for p in passers], "routed_paths": [dict(p) for p in routed]}


def _stacks(pic):
    return {dx.norm(c.get("stack_address")) for role in ("inside", "outside") for c in pic[role]["connectors"]} - {""}


def _own_rules(pic):
    """Only the link's own path through the firewall: the passers that relay to one of its two
    servers (or listen on one of its connectors' Stack addresses) and the routed paths between them (a fleet's firewall carries every link's rules; a
    picture with all of them made each link's picture, and so the report, grow with the fleet)."""
    fw = pic.get("firewall")
    if not fw:
        return pic
    ours = _ids(pic["inside"]) | _ids(pic["outside"])
    stacks = _stacks(pic)
    fw["passers"] = [p for p in fw["passers"] if dx.norm(p.get("target")) in ours or dx.norm(p.get("address")) in stacks]
    fw["routed_paths"] = [p for p in fw["routed_paths"] if {dx.norm(h) for h in p.get("hosts") or []} <= ours]
    return pic


def picture(link, servers, firewall):
    """The link as read, with its paths judged by the model and the diagnosis' observations."""
    sides = {"inside": _side(link, "inside", servers), "outside": _side(link, "outside", servers)}
    pic = _own_rules(dict(sides, firewall=_firewall(firewall, sides)))
    observed = {f.get("host") for f in link.get("findings") or []
                if f.get("code") in OBSERVED_REFUSAL_CODES and f.get("severity") == "error"}
    pic["paths"] = _paths(pic, {role for role in ("inside", "outside") if pic[role]["host"] in observed})
    return pic


def after(pic, changes):
    """`pic` with `changes` (report.md change records) applied, paths recomputed by the model."""
    new = copied(pic)
    by_host = {new[role]["host"]: new[role] for role in ("inside", "outside")}
    for change in changes:
        after_values = change.get("after") or {}
        if change.get("kind") == "firewall" or change.get("action") == "operator":
            fw = new.get("firewall")
            if not fw:
                continue
            for key in ("passers", "routed_paths"):
                if key in after_values:
                    before_list = (change.get("before") or {}).get(key) or []
                    kept = [p for p in fw[key] if p not in before_list]
                    fw[key] = kept + [p for p in after_values[key] if p not in kept]
            if "client_transparency" in after_values:
                fw["client_transparency"] = bool(after_values["client_transparency"])
            continue
        side = by_host.get(change.get("target"))
        if side is None:
            continue
        name = change.get("connector") or after_values.get("name") or change.get("object")
        existing = next((c for c in side["connectors"] if dx.norm(c["name"]) == dx.norm(name)), None)
        if existing is None:
            if change.get("action") == "delete":
                continue
            existing = _connector({"name": name}, "reverse")
            side["connectors"].append(existing)
        elif change.get("action") == "delete":
            side["connectors"].remove(existing)
            continue
        for key in ("stack_address", "schedule"):
            if key in after_values:
                existing[key] = after_values[key]
        existing["opens"] = existing["schedule"] not in ("remote", "never", None)
    _own_rules(new)
    new["paths"] = _paths(new, set())
    return new


def _ids(side):
    return {dx.norm(side.get("host")), dx.norm(side.get("address")), dx.norm(side.get("fqdn"))} - {""}


def _paths(pic, observed_refused):
    paths = []
    for role, peer_role in (("inside", "outside"), ("outside", "inside")):
        caller, called = pic[role], pic[peer_role]
        for connector in caller["connectors"]:
            if connector["opens"]:
                paths.append(_path(pic, role, caller, called, connector, role in observed_refused))
    return paths


def _path(pic, role, caller, called, connector, observed):
    fw = pic.get("firewall")
    stack = dx.norm(connector.get("stack_address"))
    path = {"from": role, "connector": connector["name"], "stack_address": connector.get("stack_address"),
            "via": "none", "seen_as": None, "state": "unknown", "why": ""}
    facing = "internal" if role == "inside" else "external"
    other = "external" if role == "inside" else "internal"
    if stack in _ids(called):
        routed = not fw or any({dx.norm(h) for h in p.get("hosts") or []} == {dx.norm(caller["host"]), dx.norm(called["host"])}
                               for p in fw["routed_paths"])
        if not routed:
            path["why"] = f"no routed path for TCP 102 through {fw['name']}: the firewall drops the connection"
            path["state"] = "refused"
            return path
        path["via"] = "routed" if fw else "direct"
        path["seen_as"] = caller.get("address") or caller["host"]
    elif fw and (stack == dx.norm(fw.get(facing)) or any(dx.norm(p.get("address")) == stack for p in fw["passers"])):
        relays = [p for p in fw["passers"] if dx.norm(p.get("interface")) == dx.norm(facing)
                  and dx.norm(p.get("target")) in _ids(called)
                  and (not p.get("address") or dx.norm(p.get("address")) == stack)]
        if not relays:
            path["why"] = f"no TCP 102 passer on {fw['name']}'s {facing} interface relays to {called['host']}"
            path["state"] = "refused"
            return path
        path["via"] = "passer"
        transparent = fw["client_transparency"] and role == "outside"
        path["seen_as"] = (caller.get("address") or caller["host"]) if transparent else fw.get(other)
    else:
        path["why"] = f"Stack address {connector.get('stack_address')} is neither {called['host']} nor a firewall address facing {caller['host']}"
        path["state"] = "refused"
        return path
    if not called.get("readable", True):
        path["state"], path["why"] = "unknown", f"{called['host']} could not be read"
        return path
    seen = dx.norm(path["seen_as"])
    seen_ids = {seen} | (_ids(caller) if seen in _ids(caller) else set())
    match = [c for c in called["connectors"] if dx.norm(c.get("stack_address")) in seen_ids and c.get("schedule") != "never"]
    if match and not observed:
        path["state"] = "working"
        path["why"] = f"{called['host']} sees {path['seen_as']} and matches it to connector {match[0]['name']}"
    elif match:
        path["state"] = "refused"
        path["why"] = f"{called['host']} refuses the associations (observed in its events; see the findings)"
    else:
        path["state"] = "refused"
        path["why"] = (f"{called['host']} sees {path['seen_as']}, the Stack address of none of its connectors to "
                       f"{caller['host']}: refused (event 9301)")
    return path


def for_report(link, check_mode):
    """``link["topology"]`` completed for the report: ``after`` from the applied changes (or, when
    none was applied, the planned ones: ``after_basis`` says which), judged against verification."""
    topo = copied(link.get("topology") or {})
    before = topo.get("before")
    changes = link.get("changes") or []
    if not before or not changes:
        return topo if before else None
    applied = [c for c in changes if c.get("applied")]
    if check_mode or not applied:
        topo["after"], topo["after_basis"] = after(before, changes), "planned"
    else:
        topo["after"] = after(before, applied)
        topo["after_basis"] = "applied" if len(applied) == len(changes) else "partly_applied"
    verification = link.get("verification") or {}
    if verification.get("state") == "failed":
        details = verification.get("details") or {}
        for path in topo["after"]["paths"]:
            if path["from"] == "outside" and path["state"] == "working":
                path["state"] = "refused"
                path["why"] = (f"verification failed: {details.get('new_refusals', '?')} new refusal(s), "
                               f"queue {details.get('outside_queue', '?')}")
    return topo


# -- drawing --------------------------------------------------------------------------------------
_W = 780
_BOX = {"inside": (5, 145), "firewall": (285, 495), "outside": (635, 775)}
_COLOURS = {"working": "#2e7d32", "refused": "#c62828", "unknown": "#757575"}


def _esc(value):
    # xcon.mask.inert first: a control character is not allowed in XML and would lose the label
    return (inert(str(value if value is not None else "")).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


def _text(x, y, value, cls="", anchor="start", extra=""):
    return (f'<text x="{x}" y="{y}" text-anchor="{anchor}"{f" class={chr(34)}{cls}{chr(34)}" if cls else ""}{extra}>'
            f"{_esc(value)}</text>")


def svg(pic, caption, uid="t"):
    """The picture as an inline SVG (no external reference): servers, firewall, one arrow per path."""
    paths = list(pic.get("paths") or [])
    fw = pic.get("firewall")
    top, lane0, lane_gap = 34, 124, 50
    foot_in = [c for c in pic["inside"]["connectors"] if not c["opens"]]
    foot_out = [c for c in pic["outside"]["connectors"] if not c["opens"]]
    fw_lines = []
    if fw:
        for p in fw["passers"]:
            fw_lines.append(f"GSP tcp/{p.get('port', 102)} {p.get('interface', '?')} \u2192 {p.get('target')}"
                            + (f" ({p['address']})" if p.get("address") else ""))
        for p in fw["routed_paths"]:
            hosts = " \u2194 ".join(p.get("hosts") or [])
            fw_lines.append(f"routed tcp/{p.get('port', 102)} {hosts}")
        if not fw_lines:
            fw_lines.append("no TCP 102 rule")
    foot = max(len(fw_lines), 3 * len(foot_in), 3 * len(foot_out), 0)
    lanes_bottom = lane0 + lane_gap * max(len(paths), 1) - 20
    box_bottom = lanes_bottom + 14 * foot + 12
    height = box_bottom + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="topology" viewBox="0 0 {_W} {height}" '
           f'width="{_W}" height="{height}" role="img" aria-label="{_esc(caption)}">',
           '<defs>'] + [
        f'<marker id="arr-{s}-{uid}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>' for s, c in _COLOURS.items()] + [
        '</defs>', _text(_W / 2, 18, caption, "caption", "middle")]
    for role in ("inside", "outside"):
        side = pic[role]
        x0, x1 = _BOX[role]
        cls = "server" if side.get("readable", True) else "server unread"
        out.append(f'<rect class="{cls}" x="{x0}" y="{top}" width="{x1 - x0}" height="{box_bottom - top}" rx="6"/>')
        out.append(_text((x0 + x1) / 2, top + 18, side["host"], "host", "middle"))
        out.append(_text((x0 + x1) / 2, top + 34, side.get("address") or "address unknown", "addr", "middle"))
        out.append(_text((x0 + x1) / 2, top + 50, f"{role} server", "role", "middle"))
        y = lanes_bottom + 16
        for connector in (foot_in if role == "inside" else foot_out):
            kind = "remote-initiated" if connector["schedule"] == "remote" else (connector["schedule"] or "?")
            out.append(_text(x0 + 6, y, connector["name"], "conn"))
            out.append(_text(x0 + 6, y + 13, f"{kind}: accepts only", "role"))
            out.append(_text(x0 + 6, y + 26, f"Stack {connector.get('stack_address') or '-'}", "stack"))
            y += 42
    if fw:
        x0, x1 = _BOX["firewall"]
        out.append(f'<rect class="firewall" x="{x0}" y="{top}" width="{x1 - x0}" height="{box_bottom - top}" rx="3"/>')
        out.append(_text((x0 + x1) / 2, top + 16, f"firewall {fw['name']}", "host", "middle"))
        out.append(_text(x0 + 4, top + 32, f"\u25c2 internal {fw.get('internal') or '?'}", "addr iface"))
        out.append(_text(x1 - 4, top + 47, f"external {fw.get('external') or '?'} \u25b8", "addr iface", "end"))
        on = fw.get("client_transparency")
        out.append(_text((x0 + x1) / 2, top + 64, f"client transparency {'ON' if on else 'off'}",
                         "transp on" if on else "transp", "middle"))
        y = lanes_bottom + 16
        for line in fw_lines:
            out.append(_text(x0 + 6, y, line, "rule"))
            y += 14
    else:
        out.append(_text(_W / 2, top + 30, "no firewall between the servers", "role", "middle"))
    if not paths:
        out.append(_text(_W / 2, lane0, "no connector opens associations: no mail flows", "refused-text", "middle"))
    for index, path in enumerate(paths):
        out.append(_path_svg(pic, path, lane0 + lane_gap * index, uid))
    out.append(_text(5, height - 8, "\u25cf opens the association   green: accepted   red: refused   grey: unknown", "legend"))
    out.append("</svg>")
    return "\n".join(out)


def _path_svg(pic, path, y, uid):
    colour = _COLOURS.get(path["state"], _COLOURS["unknown"])
    marker = f"url(#arr-{path['state'] if path['state'] in _COLOURS else 'unknown'}-{uid})"
    left_to_right = path["from"] == "inside"
    caller_edge = _BOX["inside"][1] if left_to_right else _BOX["outside"][0]
    called_edge = _BOX["outside"][0] if left_to_right else _BOX["inside"][1]
    fw_near = _BOX["firewall"][0] if left_to_right else _BOX["firewall"][1]
    fw_far = _BOX["firewall"][1] if left_to_right else _BOX["firewall"][0]
    has_fw = bool(pic.get("firewall"))
    parts = [f'<g class="path {_esc(path["state"])}" data-from="{_esc(path["from"])}" data-connector="{_esc(path["connector"])}" '
             f'data-via="{_esc(path["via"])}"><title>{_esc(path.get("why"))}</title>']
    line = f'stroke="{colour}" stroke-width="2.5" fill="none"'
    parts.append(f'<circle cx="{caller_edge}" cy="{y}" r="5" fill="{colour}"/>')
    label_x = (caller_edge + (fw_near if has_fw else called_edge)) / 2
    parts.append(_text(label_x, y - 20, path["connector"], "conn", "middle"))
    parts.append(_text(label_x, y - 7, f"Stack {path.get('stack_address') or '-'}", "stack", "middle"))
    if path["via"] == "passer":
        parts.append(f'<line x1="{caller_edge}" y1="{y}" x2="{fw_near}" y2="{y}" {line} marker-end="{marker}"/>')
        parts.append(f'<line x1="{fw_near}" y1="{y}" x2="{fw_far}" y2="{y}" {line} stroke-dasharray="4 3"/>')
        parts.append(_text((fw_near + fw_far) / 2, y - 5, "relayed by GSP", "via", "middle"))
        parts.append(f'<line x1="{fw_far}" y1="{y}" x2="{called_edge}" y2="{y}" {line} marker-end="{marker}"/>')
        parts.append(_text((fw_far + called_edge) / 2, y - 7, f"seen as {path.get('seen_as')}", "seen", "middle"))
    elif path["via"] in ("routed", "direct"):
        parts.append(f'<line x1="{caller_edge}" y1="{y}" x2="{called_edge}" y2="{y}" {line} marker-end="{marker}"/>')
        if has_fw:
            parts.append(_text((fw_near + fw_far) / 2, y - 5, "routed (not proxied)", "via", "middle"))
            parts.append(_text((fw_far + called_edge) / 2, y - 7, f"seen as {path.get('seen_as')}", "seen", "middle"))
    else:
        end = fw_near if has_fw else called_edge
        parts.append(f'<line x1="{caller_edge}" y1="{y}" x2="{end}" y2="{y}" {line} marker-end="{marker}"/>')
        called_edge = end
    if path["state"] == "refused":
        cx = called_edge + (-14 if left_to_right else 14)
        parts.append(f'<path d="M{cx - 6},{y + 6} l12,-12 M{cx - 6},{y - 6} l12,12" stroke="{colour}" stroke-width="3"/>')
    parts.append("</g>")
    return "\n".join(parts)
