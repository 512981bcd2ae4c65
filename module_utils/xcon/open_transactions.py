"""Open per-link transactions kept between runs: a fix that a later run completes.

``<state dir>/transactions.json`` (with its SHA-256 sidecar, xcon.state) holds, per link, the fix a
run began and has not yet proven: the workaround, every planned step (the plan entries exactly as
they ran: object, target, values), which steps are done, which were started (sent, outcome maybe
unknown) and which are left, the runs that worked on it and the hosts whose MTA restart is pending.

Life of a record (one writer at a time: the controller, under the run lock):

* xcon_diagnose opens it, before the first change, for every link that a changing run will change;
* every gate (xcon_link_gate) adds the steps done so far and marks the steps about to run as started;
* the final report closes it only when every step is done, no MTA restart is pending on its servers
  and the verification passed; otherwise it stays open.

A later run - whatever ``xcon_workaround`` says - first finishes an open transaction (its recorded
steps run again: a step already done is found done and left alone) or, with
``xcon_open_transactions=rollback``, undoes it; until then the link carries the finding
XCON-TRANSACTION-OPEN (error) and is never ``ok``.
"""

from __future__ import annotations

import copy
import glob
import json
import os

from xcon import state as xstate

FILE = "transactions.json"
FINISH, ROLLBACK = "finish", "rollback"
MODES = (FINISH, ROLLBACK)
CODE = "XCON-TRANSACTION-OPEN"


def path(state_dir):
    return os.path.join(state_dir, FILE)


def load(state_dir):
    """``{link id: record}``; {} when no transaction was ever recorded.  Raises StateError when the
    file or its checksum is missing, damaged or changed: then nothing is known about what earlier
    runs left half-done, and no run may change anything until it is resolved."""
    if not state_dir:
        return {}
    file = path(state_dir)
    if not os.path.exists(file) and not os.path.exists(xstate.checksum_path(file)):
        return {}
    data = xstate.read_verified_json(file)
    links = data.get("links") if isinstance(data, dict) else None
    if not isinstance(links, dict) or not all(isinstance(r, dict) and isinstance(r.get("steps"), list) for r in links.values()):
        raise xstate.StateError(f"{file} does not hold per-link transactions ({{\"links\": {{LINK: {{\"steps\": [...]}}}}}})")
    return links


def save(state_dir, links):
    # compact (json's C encoder): every gate of a run writes it, and indented it took 0.1-0.2 s per
    # write at 100 links (pyinstrument in the gate's worker); `python3 -m json.tool` shows it indented
    xstate.write_json_atomic(path(state_dir), {"version": 1, "links": links}, mode=0o600, checksum=True, compact=True)


def step_ids(record):
    return [s["id"] for s in record["steps"]]


def open_record(link, entries, run_id, workaround, acknowledged=False):
    """A new record for `link` (its diagnosis) and its plan `entries`, nothing done yet."""
    entries = copy.deepcopy(entries)
    return {
        "link": link["id"], "workaround": workaround, "opened_by": run_id, "runs": [run_id], "opened_at": xstate.now_utc(),
        "changes": copy.deepcopy(link.get("changes") or []), "steps": entries,
        "objects": {e["id"]: f"{e['target']}: {e.get('object')}" for e in entries},
        "done": [], "started": [], "left": [e["id"] for e in entries], "restart_pending": [],
        "transparency_off_acknowledged": bool(acknowledged), "state": "open", "updated_at": xstate.now_utc(),
    }


def note_progress(record, run_id, done=(), started=()):
    """Add the steps done and started by run `run_id` (the gate's view); returns the record."""
    ids = step_ids(record)
    if run_id not in record["runs"]:
        record["runs"].append(run_id)
    record["done"] = [i for i in ids if i in set(record["done"]) | set(done)]
    record["started"] = [i for i in ids if i in set(record["started"]) | set(started) | set(record["done"])]
    record["left"] = [i for i in ids if i not in record["done"]]
    record["state"] = "applied" if not record["left"] else "open"
    record["updated_at"] = xstate.now_utc()
    return record


def drop_rolled_back(records, report_root):
    """Remove (and return the ids of) the records whose every run was undone by a completed
    ``playbooks/rollback.yml`` (its summary beside the run: not check mode, no conflict, no firewall
    record waiting) after the record's last step: nothing of them is left to finish."""
    dropped = []
    for link_id, record in list(records.items()):
        since = str(record.get("updated_at") or record.get("opened_at") or "").replace("-", "").replace(":", "")
        if record.get("runs") and all(_undone(report_root, run, since) for run in record["runs"]):
            del records[link_id]
            dropped.append(link_id)
    return dropped


def _undone(report_root, run, since):
    for path in sorted(glob.glob(os.path.join(report_root, glob.escape(run), "rollback", "rollback-*.json"))):
        stamp = os.path.basename(path)[len("rollback-"):-len(".json")]
        try:
            with open(path, encoding="utf-8") as handle:
                summary = json.load(handle)
        except (OSError, ValueError):
            continue
        if isinstance(summary, dict) and stamp >= since and not summary.get("check_mode") and not summary.get("conflicts") \
                and not summary.get("awaiting_firewall_confirmation"):
            return True
    return False


def summary(record):
    """One sentence: which run began what, and how far it got."""
    total, done = len(record["steps"]), len(record["done"])
    runs = ", ".join(record["runs"])
    left = "; ".join(f"step {s.get('step')} {s.get('description') or s['id']}" for s in record["steps"] if s["id"] in record["left"])
    text = (f"run {record['opened_by']} began workaround {record['workaround']} on this link and it is not proven complete "
            f"(runs {runs}): {done}/{total} step(s) done")
    if left:
        text += f"; left: {left}"
    if record.get("restart_pending"):
        text += f"; MTA restart pending on {', '.join(record['restart_pending'])}"
    if not record["left"] and not record.get("restart_pending"):
        text += "; every step is done, the verification has not passed yet"
    return text


def finding(link, record, mode, workaround):
    """The finding that keeps a link with an open transaction from being ``ok``."""
    if workaround == "none":
        then = "xcon_workaround=none changes nothing: run without it to finish the transaction (or roll it back)"
    elif mode == ROLLBACK:
        then = "this run rolls it back (xcon_open_transactions=rollback): every step that may have been applied is undone"
    else:
        then = "this run finishes it first, with the recorded steps, before anything else is planned for the link"
    return {"code": CODE, "severity": "error", "host": link["inside"].get("host"), "connector": link["inside"].get("connector"),
            "message": f"{summary(record)}. {then}.",
            "evidence": {"runs": record["runs"], "workaround": record["workaround"], "done": record["done"],
                         "started": record["started"], "left": record["left"], "objects": record["objects"],
                         "restart_pending": record.get("restart_pending", [])}}


def resume(link, record, mode, workaround):
    """The changes and plan entries a run carries out for `link`, which has the open transaction
    `record`: finishing runs the recorded steps again (each finds what is done and does the rest);
    with xcon_workaround=none nothing.  Marks the link: finding, status error, the transaction's
    workaround.  (Rollback: :func:`undo_entries`.)"""
    link.setdefault("findings", []).insert(0, finding(link, record, mode, workaround))
    link["status"] = "error"
    link["open_transaction"] = {"mode": mode, "opened_by": record["opened_by"], "runs": list(record["runs"]),
                                "workaround": record["workaround"], "done": list(record["done"]), "left": list(record["left"])}
    if workaround == "none":
        return [], []
    if mode == ROLLBACK:
        link["workaround_chosen"] = "none"
        link["reason"] = f"rolling back the open transaction of run {record['opened_by']} (workaround {record['workaround']})"
        entries = undo_entries(record)
        return [_as_change(e) for e in entries], entries
    link["workaround_chosen"] = record["workaround"]
    link["reason"] = f"finishing the open transaction of run {record['opened_by']} (workaround {record['workaround']})"
    return copy.deepcopy(record["changes"]), copy.deepcopy(record["steps"])


# Where each undo runs (remediate.yml's phase order), so that the undos run in the reverse order of
# the steps: the old path is opened again first, the Stack addresses go back (outside, then inside),
# the new path is closed last.
UNDO_PHASE = {"transparency_off": "firewall_tunnel_open", "firewall_tunnel_close": "firewall_tunnel_open",
              "stack_repoint_outside": "stack_repoint", "stack_repoint": "stack_repoint_outside",
              "firewall_tunnel_open": "firewall_tunnel_close", "reverse_connector": "reverse_connector",
              "precondition": "precondition"}
CONNECTOR_KEYS = ("schedule", "two_way_alternate", "stack_address", "address_type", "cost", "display_name")


def undo_entries(record):
    """Plan entries that undo every step the transaction may have applied (done or started; an
    undo of a step that never landed finds the object as it was and changes nothing), newest first."""
    touched = set(record["done"]) | set(record["started"])
    entries = []
    for step in reversed(record["steps"]):
        if step["id"] not in touched:
            continue
        undo = {k: copy.deepcopy(step[k]) for k in ("link", "server", "target", "kind", "object", "connector", "dn") if k in step}
        # numbered like a plan's entries (<link>#1, ...): the report pairs a link's changes with them by position
        undo.update(id=f"{step['link']}#{len(entries) + 1}", step=len(entries) + 1, phase=UNDO_PHASE.get(step.get("phase"), step.get("phase")),
                    before=copy.deepcopy(step.get("after") or {}), after=copy.deepcopy(step.get("before") or {}),
                    restart_required=bool(step.get("restart_required")), applied=False, undoes=step["id"])
        if step.get("kind") == "firewall" or step.get("action") == "operator":
            undo.update(action="operator", args=copy.deepcopy(step.get("inverse") or []),
                        firewall_steps=copy.deepcopy(step.get("inverse") or []), inverse=copy.deepcopy(step.get("args") or []),
                        description=f"Undo step {step.get('step')}: {step.get('description', '')}")
        elif step.get("action") == "create":
            name = (step.get("args") or {}).get("name") or step.get("object")
            undo.update(action="delete", args={"server": step["args"]["server"], "name": name, "state": "absent"},
                        description=f"{step['server']}: remove connector {name} (undo step {step.get('step')})", restart_required=True)
        else:
            args = {"server": step["args"]["server"], "name": step["args"]["name"]}
            args.update({k: v for k, v in (step.get("before") or {}).items() if k in CONNECTOR_KEYS})
            undo.update(action="modify", args=args,
                        description=f"{step['server']}: connector {args['name']}: back to {step.get('before')} (undo step {step.get('step')})")
        entries.append(undo)
    return entries


def _as_change(entry):
    return {k: copy.deepcopy(v) for k, v in entry.items() if k not in ("id", "link", "args", "phase")}


def mark_untrusted(link, reason):
    """A link whose transaction state is unknown (the record cannot be trusted): never ok, no change."""
    link.setdefault("findings", []).insert(0, {"code": CODE, "severity": "unknown", "host": link["inside"].get("host"),
                                               "connector": link["inside"].get("connector"), "message": reason, "evidence": {}})
    if link.get("status") in ("ok", "warning", None):
        link["status"] = "unknown"
    link["changes"] = []
