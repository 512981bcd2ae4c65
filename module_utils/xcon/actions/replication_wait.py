"""After a connector write made for a 4.0/5.0 server through a 5.5 server of its site: wait until the
change has replicated to the server's own replica, which its MTA reads (Platform SDK, "The Exchange
Server Directory": one 5.5 server of a site takes LDAP v3 writes and replicates them to the site's
4.0 and 5.0 servers; Q137203: about five minutes after the change). Only then is its MTA restarted.

* Exchange 5.0: its own LDAP answers searches, so the object is read there every minute until it
  holds what the write left on the 5.5 server (or is gone, for a delete), up to the timeout;
* Exchange 4.0: no LDAP, its replica cannot be read: the documented delay is waited (Pause After
  Modify, 300 s, plus a minute), and the verification after the MTA restart proves the change by
  the MTA's behaviour.

Minutes pass on the lab's clock when the inventory names it (`xcon_lab_control`), else in real time;
each minute is reported."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.utils.display import Display

from xcon import clock
from xcon import directory_route
from xcon import gather
from xcon import profile as xprofile

DEFAULT_TIMEOUT_MINUTES = 30


def pending_path(restart_marker):
    """Where a run that stopped waiting leaves word for the re-run (beside the MTA restart marker)."""
    return f"{restart_marker}.replication" if restart_marker else None


def written_dn(op, answer_dn):
    return answer_dn or op["params"].get("dn") or ""


def changed_attributes(op, profile):
    """The attributes whose replicated values are compared (the naming one for create/delete)."""
    if op["op"] == "dir_modify":
        return sorted({c["attribute"] for c in op["params"]["changes"]})
    return [xprofile.attribute(profile, "name")]


def probe(client, server, dn, names, port):
    """The object's `names` as `server`'s directory holds it (lower-cased keys), or None when absent."""
    params = {"server": server, "base": dn, "scope": "base", "attributes": list(names)}
    if port and port != gather.DEFAULT_LDAP_PORT:
        params["port"] = port
    answer = gather.run(client, [{"id": "probe", "op": "dir_search", "params": params}])["probe"]
    if not answer.ok:
        if answer.error_category == "NoSuchObject":
            return None
        answer.raise_for_error(f"reading {dn} on {server}")
    entries = answer.data.get("entries") or []
    if not entries:
        return None
    wanted = {n.lower() for n in names}
    return {k.lower(): v for k, v in (entries[0].get("attributes") or {}).items() if k.lower() in wanted}


def await_replication(target, via, op, dn, profile, timeout, lab_control):
    """Wait for `op`'s change to reach `target`'s replica. `target` and `via` are
    ``{"client", "server", "port"}`` (the server the change is for, and the 5.5 server it was
    written on). Returns what the report says of the wait; raises when it did not arrive in time."""
    display = Display()
    access = xprofile.directory_access(profile)
    if access == "none":
        minutes = min(timeout, directory_route.INTRA_SITE_MINUTES + 1)
        for waited in range(1, minutes + 1):
            clock.wait_minutes(lab_control, 1)
            display.display(f"xcon_connector: replication {via['server']} -> {target['server']}: {waited}/{minutes} min "
                            "(Exchange 4.0: its replica cannot be read; waiting the documented delay)")
        return {"target": target["server"], "source": via["server"], "waited_minutes": minutes, "confirmed": False,
                "how": f"{target['server']} runs Exchange 4.0, whose replica cannot be read over LDAP: waited the "
                       f"documented intra-site delay (Q137203, about {directory_route.INTRA_SITE_MINUTES} minutes); the "
                       "verification after the MTA restart proves the change by the MTA's behaviour"}
    names = changed_attributes(op, profile)
    want = probe(via["client"], via["server"], dn, names, via["port"])
    waited = 0
    while True:
        got = probe(target["client"], target["server"], dn, names, target["port"])
        if got == want:
            return {"target": target["server"], "source": via["server"], "waited_minutes": waited, "confirmed": True,
                    "how": f"read back in {target['server']}'s own directory (the replica its MTA uses)"}
        if waited >= timeout:
            raise AnsibleActionFail(
                f"{op['op']} {dn} was written on {via['server']} but had not replicated to {target['server']} after "
                f"{waited} minutes (xcon_replication_timeout_minutes={timeout}); its MTA is not restarted yet. Check "
                f"directory replication in the site (Exchange Administrator: the server's Directory Service "
                f"property page, Check Now), then run again: the write is not repeated")
        clock.wait_minutes(lab_control, 1)
        waited += 1
        display.display(f"xcon_connector: replication {via['server']} -> {target['server']}: {waited}/{timeout} min, "
                        "not there yet")
