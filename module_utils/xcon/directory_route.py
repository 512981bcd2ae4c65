"""Which directory a server's connectors are read from and written through (pure).

Every Exchange server holds a replica of the whole organisation's directory; the servers of a site
replicate theirs multi-master (Platform SDK, "The Exchange Server Directory"). What a server's own
directory can do over LDAP depends on its version (profile ``directory.ldap``: 4.0 none, 5.0 read,
5.5 read-write), so:

* **read**: a server whose own LDAP can search is read there (its MTA uses that very replica);
  a 4.0 server is read from another server's replica: the inventory entry's ``xcon_directory_host``
  when given, else an inventory server of the same organisation that can search, the same site
  first (5.5 before 5.0), then another site's. How stale that replica can be is said with it: within
  a site a change arrives about five minutes after it was made (Q137203, Pause After Modify 300 s),
  from another site by the directory replication connector's schedule.
* **write**: only over LDAP v3, so on a 5.5 server *of the server's own site* (objects are changed
  in their own site); the change then replicates to the 4.0/5.0 server. With no such server the
  change is the operator's, in the Exchange Administrator program.

``servers`` maps inventory names to ``{"server", "version", "site", "organization",
"directory_host"}`` (the host variables xcon_server_name, xcon_exchange_version, xcon_site,
xcon_organization, xcon_directory_host).
"""

from __future__ import annotations

from xcon import admin_record
from xcon import profile as xprofile

INTRA_SITE_MINUTES = 5      # Q137203: "Pause After Modify" defaults to 300 seconds


def _access(entry):
    return xprofile.directory_access(xprofile.shared_profile(str(entry.get("version") or "5.5")))


def _same(a, b):
    return bool(a) and bool(b) and str(a).casefold() == str(b).casefold()


def staleness(target, source):
    """How far behind `source`'s replica may be for `target`'s objects (one sentence)."""
    if source is target:
        return "the server's own replica: what its MTA uses"
    if _same(target.get("site"), source.get("site")):
        return (f"a replica of site {source.get('site')}: a change made on another server of the site arrives about "
                f"{INTRA_SITE_MINUTES} minutes later (Q137203, Pause After Modify)")
    return (f"a replica in site {source.get('site') or 'unknown'}, another site: changes to {target.get('site') or 'its'} "
            "objects arrive by the directory replication connector's schedule, so it may be hours behind")


def _candidates(host, servers, want):
    target = servers[host]
    org = target.get("organization")
    found = []
    for name, entry in sorted(servers.items()):
        if name == host or _access(entry) not in want:
            continue
        if org and entry.get("organization") and not _same(org, entry["organization"]):
            continue
        same_site = _same(entry.get("site"), target.get("site"))
        found.append(((0 if same_site else 1, 0 if _access(entry) == "read-write" else 1, name), name))
    return [name for _key, name in sorted(found)]


def read_source(host, servers):
    """Where `host`'s connectors are read: ``{"host", "server", "version", "own", "same_site",
    "staleness"}``, or ``{"host": None, "reason"}`` when no replica can be read."""
    target = servers[host]
    if _access(target) != "none":
        return _describe(host, host, servers)
    named = target.get("directory_host")
    if named:
        if named not in servers:
            return {"host": None, "reason": f"xcon_directory_host {named!r} is not an Exchange server of the inventory"}
        if _access(servers[named]) == "none":
            return {"host": None, "reason": f"xcon_directory_host {named!r} runs Exchange {servers[named].get('version')}, "
                    "which has no LDAP either"}
        return _describe(host, named, servers)
    found = _candidates(host, servers, ("read", "read-write"))
    if not found:
        return {"host": None, "reason": f"{target.get('server') or host} runs Exchange 4.0 (no LDAP) and no other server "
                "of its organisation in the inventory can be searched: give xcon_directory_host"}
    return _describe(host, found[0], servers)


def write_source(host, servers):
    """The 5.5 server of `host`'s own site its connector changes are written through (`host`
    itself on 5.5), or None: then the change is made in the Exchange Administrator program."""
    target = servers[host]
    if _access(target) == "read-write":
        return host
    named = target.get("directory_host")
    if named in servers and _access(servers[named]) == "read-write" and _same(servers[named].get("site"), target.get("site")):
        return named
    same_site = [name for name in _candidates(host, servers, ("read-write",))
                 if _same(servers[name].get("site"), target.get("site"))]
    return same_site[0] if same_site else None


def _describe(host, source_host, servers):
    target, source = servers[host], servers[source_host]
    return {"host": source_host, "server": source.get("server") or source_host, "version": source.get("version") or "5.5",
            "own": source_host == host, "same_site": _same(target.get("site"), source.get("site")),
            "staleness": staleness(target, source)}


def write_note(host, servers):
    """What a planned change of `host` says about the directory it is written through (report,
    --check), or None for a host that is not an Exchange server of the inventory."""
    if host not in servers:
        return None
    target = servers[host]
    name = target.get("server") or host
    via = write_source(host, servers)
    if via == host:
        return {"written_via": name, "own": True}
    if via is None:
        return {"written_via": None, "own": False,
                "note": f"{name} runs Exchange {target.get('version')}, whose directory takes no LDAP write, and no "
                        "Exchange 5.5 server of its site is in the inventory: the change is made in the Exchange "
                        "Administrator program"}
    return {"written_via": servers[via].get("server") or via, "own": False,
            "replication": f"written on {servers[via].get('server') or via} (Exchange 5.5, site {target.get('site')}); the "
                           f"run then waits until it has replicated to {name} (about {INTRA_SITE_MINUTES} minutes, Q137203) "
                           f"and restarts {name}'s MTA"}


def annotate_changes(links, plan, routes, run_id):
    """Each planned connector change says which directory it is written through (and the replication
    wait); one for a server whose site has no Exchange 5.5 server carries its Exchange Administrator
    record. The report's changes say the same (a link's n-th change is plan entry <link>#n)."""
    by_id = {}
    for entry in plan:
        note = write_note(entry.get("target"), routes) if entry.get("action") != "operator" else None
        if note:
            entry["directory"] = note
            if note["written_via"] is None:
                target = routes[entry["target"]]
                entry["administrator_record"] = admin_record.render(entry["args"], target["server"], target.get("site"),
                                                                    target.get("organization"), run_id)
        by_id[entry["id"]] = entry
    for link in links:
        for index, change in enumerate(link.get("changes", [])):
            entry = by_id.get(f"{link['id']}#{index + 1}") or {}
            change.update({k: entry[k] for k in ("directory", "administrator_record") if k in entry})
