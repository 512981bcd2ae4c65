"""The audit report: report.json (for tools), report.html (for people) and a one-screen summary.

Keys follow shared/spec/report.md exactly; extensions: ``summary`` at the top level, and per link
``reason``, ``inside.reverse_connector`` and the change fields of xcon.plan.  Every value is masked
before it is returned or written: keys named like a secret (xcon.mask) are replaced by
``********`` and every string value found under such a key is also replaced wherever else it
appears (e.g. quoted in a message).  Files are written atomically (temporary file + rename).
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import textwrap

from xcon import mask as xmask
from xcon import report_html
from xcon import report_json
from xcon import state as xstate
from xcon import topology as xtopology

# docs/contracts/report.schema.json: minor grows with each compatible extension.
SCHEMA_VERSION = "1.3"
# Tests set this to the schema's path: every report written is then validated before it is written
# (tests/conftest.py), so no report the suite produces can drift from the shipped schema.
SCHEMA_ENV = "XCON_REPORT_SCHEMA"
# The finding pages the HTML report links to (docs/findings/<CODE>.md of this checkout).
DOCS_FINDINGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs", "findings")
STATUSES = report_html.STATUSES  # worst first: the overview's order
SEVERITIES = ("error", "unknown", "warning", "info")
LINK_DEFAULTS = {
    "id": "", "inside": {}, "outside": {}, "firewall": None, "status": "unknown", "findings": [],
    "recommended_workaround": "none", "reason": "", "changes": [],
    "verification": {"state": "not_run", "details": {}},
}
# Masking (secret-named keys, their values wherever they recur): xcon.mask.mask_data.
mask_report = xmask.mask_data


# -- building -------------------------------------------------------------------------------------
def _now():
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _normalize_link(link, check_mode):
    # Copies of the link and of its changes (a change loses its back-reference below); the rest is
    # only read (for_report copies the topology it completes), and build_report returns a masked
    # copy of the whole report: no deep copy of every link first (0.1 s at 100 links).
    full = copy.deepcopy(LINK_DEFAULTS)
    full.update(link)
    full["changes"] = [dict(change) for change in full["changes"]]
    full["verification"] = dict(LINK_DEFAULTS["verification"], **(full.get("verification") or {}))
    for change in full["changes"]:
        # the plan's back-reference to its link: inside the link it would say the same thing twice
        if change.get("link") == full["id"]:
            del change["link"]
    full["status_after"] = status_after(full, check_mode)
    topo = xtopology.for_report(full, check_mode)
    if topo:
        full["topology"] = topo
    else:
        full.pop("topology", None)
    return full


def status_after(link, check_mode):
    """The link's status after this run's changes: ``None`` under --check (nothing ran); ``pending``
    when an MTA restart its changes need is pending; ``ok`` when verification passed and the link's
    transaction closed, ``error`` when it failed; ``unknown`` when a change was made but not
    verified; else the status as found (nothing was changed on the link)."""
    if check_mode:
        return None
    if link.get("mta_restart") == "pending" and link.get("changes"):
        return "pending"  # the changes are not active yet: nothing is proven
    state = (link.get("verification") or {}).get("state")
    if state == "passed":
        return "unknown" if (link.get("transaction") or {}).get("open") else "ok"
    if state == "failed":
        return "error"
    if any(c.get("applied") for c in link.get("changes") or []):
        return "unknown"
    return link.get("status", "unknown")


def _at_least_unknown(worst, links, hosts_failed):
    """A host not read, or no link found at all: nothing shows the site is healthy."""
    return "unknown" if (hosts_failed or not links) and worst in ("warning", "ok") else worst


def _summary(links, hosts_scanned, hosts_failed):
    by_status = {s: 0 for s in STATUSES}
    by_severity = {s: 0 for s in SEVERITIES}
    by_code = {}
    verification = {"not_run": 0, "passed": 0, "failed": 0}
    for link in links:
        by_status[link["status"]] = by_status.get(link["status"], 0) + 1
        for finding in link["findings"]:
            by_severity[finding["severity"]] = by_severity.get(finding["severity"], 0) + 1
            by_code[finding["code"]] = by_code.get(finding["code"], 0) + 1
        state = link["verification"].get("state", "not_run")
        verification[state] = verification.get(state, 0) + 1
    changes = [c for link in links for c in link["changes"]]
    worst = next((s for s in STATUSES if by_status.get(s)), "ok")
    worst = _at_least_unknown(worst, links, hosts_failed)
    after = {s: 0 for s in STATUSES}
    for link in links:
        final = link.get("status_after") or link["status"]
        after[final] = after.get(final, 0) + 1
    return {
        # a pending link is not proven: it counts as unknown for the worst status
        "links_by_status_after": after, "worst_status_after": _at_least_unknown(
            next((s for s in STATUSES if after.get(s) or (s == "unknown" and after.get("pending"))), "ok"), links, hosts_failed),
        "links_total": len(links), "links_by_status": by_status, "worst_status": worst,
        "findings_by_severity": by_severity, "findings_by_code": dict(sorted(by_code.items())),
        "changes_planned": len(changes), "changes_applied": sum(1 for c in changes if c.get("applied")),
        "restart_required": sorted({c["target"] for c in changes if c.get("restart_required") and not c.get("applied")}),
        "hosts_scanned": len(hosts_scanned), "hosts_failed": len(hosts_failed),
        "verification": verification,
    }


def build_report(run_id, check_mode, workaround_requested, hosts_scanned, hosts_failed, links, tool_version, secrets=(),
                 directories=None, masked=True):
    """The report dict of report.md (plus ``summary``), masked; `secrets` are extra values to hide;
    `directories`: per server, which directory its connectors were read from (xcon.directory_route).
    ``masked=False``: not masked yet, for a caller that adds to it and masks it once after its last
    change (mask_report; at 100 links each masking is a JSON dump and read of 1.7 MB)."""
    links = sorted((_normalize_link(l, check_mode) for l in links or []),
                   key=lambda l: (STATUSES.index(l["status"]) if l["status"] in STATUSES else 0, l["id"]))
    failed = [dict({"host": f.get("host"), "reason": f.get("reason", "")}, **f) if isinstance(f, dict) else {"host": str(f), "reason": ""}
              for f in hosts_failed or []]
    scanned = list(hosts_scanned or [])
    report = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "generated_at": _now(),
        "tool_version": tool_version,
        "check_mode": bool(check_mode),
        "workaround_requested": workaround_requested,
        "coverage": {"hosts_scanned": scanned, "hosts_failed": failed,
                     "directories": {host: dict(d) for host, d in sorted((directories or {}).items()) if d}},
        "links": links,
        "summary": _summary(links, scanned, failed),
    }
    return mask_report(report, secrets) if masked else report


def validate_if_asked(report):
    """Validate `report` against the JSON Schema named by $XCON_REPORT_SCHEMA (set by the tests);
    raises ValueError naming the first violation.  Without the variable: nothing (no dependency)."""
    schema_path = os.environ.get(SCHEMA_ENV)
    if not schema_path:
        return
    import jsonschema  # pylint: disable=import-outside-toplevel  (tests only)

    with open(schema_path, encoding="utf-8") as handle:
        schema = json.load(handle)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(report), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top)"
        raise ValueError(f"report {report.get('run_id')} does not match {schema_path} at {where}: {first.message}"
                         f" ({len(errors)} violation(s))")


# -- writing --------------------------------------------------------------------------------------
def write_report(report, report_dir, secrets=(), latest=True, html=True, masked=False):
    """Write <dir>/<run_id>/report.{json,html} and (with `latest`) copies under <dir>/latest/;
    return the paths.  Without `html`, report.json only (a final report writes the page).
    `masked`: the caller passes mask_report's copy, made after its last change (it gets the
    artifacts), and it is not masked again."""
    report = report if masked else mask_report(report, secrets)
    report["artifacts"] = artifacts(report, report_dir)
    validate_if_asked(report)
    text_json = dumps(report)
    paths = {}
    folders = [(str(report["run_id"]), "", ""), ("latest", "latest_", f"../{report['run_id']}/")][:2 if latest else 1]
    # the finding pages' folder relative to the report's: the same text from latest/, the run
    # folder's sibling (relpath is lexical), so one render serves both (report_html.render_each)
    docs = os.path.relpath(DOCS_FINDINGS, os.path.abspath(os.path.join(report_dir, folders[0][0]))).replace(os.sep, "/")
    # masked above: rendered as it is (render_html masks again for callers with their own dict)
    pages = report_html.render_each(report, [base for _, _, base in folders], docs) if html else [None] * len(folders)
    for (folder, prefix, _), page in zip(folders, pages):
        directory = os.path.join(report_dir, folder)
        for kind, text in (("json", text_json), ("html", page)):
            if text is None:
                continue
            path = os.path.join(directory, f"report.{kind}")
            xstate.write_text_atomic(path, text)
            paths[prefix + kind] = path
    return paths


# report.json's text (indented, keys sorted, each object of scalars on one line): xcon.report_json.
dumps = report_json.dumps


DEFAULT_REPORT_DIR = os.path.join(os.path.dirname(os.path.dirname(DOCS_FINDINGS)), "reports")


def artifacts(report, report_dir):
    """What the run kept for the operator, relative to its directory: the backup, the firewall
    change records, and the exact rollback command (when the run changed something)."""
    run_dir = os.path.join(report_dir, str(report["run_id"]))
    backup = "backup" if os.path.isdir(os.path.join(run_dir, "backup")) else None
    records_dir = os.path.join(run_dir, "firewall")
    records = sorted(f"firewall/{n}" for n in os.listdir(records_dir) if n.endswith(".txt")) if os.path.isdir(records_dir) else []
    applied = any(c.get("applied") for link in report.get("links") or [] for c in link.get("changes") or [])
    command = None
    if applied and not report.get("check_mode"):
        command = f"ansible-playbook playbooks/rollback.yml -e xcon_rollback_run_id={report['run_id']}"
        if os.path.abspath(report_dir) != DEFAULT_REPORT_DIR:
            command += f" -e xcon_report_dir={os.path.abspath(report_dir)}"
    return {"backup_dir": backup, "firewall_records": records, "rollback_command": command}


# -- rendering ------------------------------------------------------------------------------------
def render_html(report, base="", docs=None):
    """The HTML page: banner, overview table, artefacts, coverage, then per-link details with the
    topology pictures (values autoescaped).  `base` prefixes the run's own files (backup, change
    records); `docs` is the (relative) folder of the finding pages."""
    return report_html.render(mask_report(report), base, docs if docs is not None else DOCS_FINDINGS)


def _wrap(line, width, indent="      "):
    """`line` wrapped at `width` (continuation lines indented); nothing is cut."""
    return textwrap.wrap(line, width=width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False) or [""]


def _workaround_text(link, requested):
    """The workaround applied to the link (as planned for the requested one), and the recommendation
    when they differ: a reverse-connector run does not read "workaround firewall_tunnel"."""
    applied = link.get("workaround_chosen") or link.get("recommended_workaround") or "none"
    recommended = link.get("recommended_workaround") or "none"
    if requested == "none":
        return f"workaround none (audit only; recommended {recommended})"
    if applied == recommended:
        return f"workaround {applied}"
    why = "requested" if applied == requested else "applied"
    return f"workaround {applied} ({why}; recommended {recommended})"


def render_summary(report, width=100, masked=False):
    """A plain-text summary for the end of the run: every line wrapped at `width`, nothing cut;
    codes keep their XCON- prefix; under --check it says what would change and restart.
    `masked`: `report` is already mask_report's copy."""
    report = report if masked else mask_report(report)
    summary = report.get("summary") or _summary(report["links"], report["coverage"]["hosts_scanned"], report["coverage"]["hosts_failed"])
    check = report.get("check_mode")
    counts = ", ".join(f"{summary['links_by_status'].get(s, 0)} {s}" for s in STATUSES)
    lines = [f"fix-xcon {report.get('tool_version')} run {report['run_id']} "
             f"({'check mode: nothing changed' if check else 'changes enabled'}, workaround {report.get('workaround_requested')})",
             f"Links as found: {summary['links_total']} ({counts}); hosts scanned {summary['hosts_scanned']}, failed {summary['hosts_failed']}"]
    for link in report["links"]:
        codes = ", ".join(f"{f['code']} ({f['severity']})" for f in link["findings"]) or "no findings"
        applied = sum(1 for c in link["changes"] if c.get("applied"))
        total = len(link["changes"])
        if check:
            outcome = f"would make {total} change(s)" if total else "nothing to change"
        else:
            after = link.get("status_after") or link["status"]
            outcome = f"changes {applied}/{total} applied, verification {link['verification'].get('state')}"
            if after != link["status"]:
                outcome += f" -> {after.upper()}"
        head = f"  [{link['status'].upper():7}] {link['id']}: {_workaround_text(link, report.get('workaround_requested'))}"
        if len(head) + len(outcome) + 2 <= width:
            lines.append(f"{head}, {outcome}")
        else:  # a long workaround text: the outcome on its own line
            lines += _wrap(head, width)
            lines += _wrap(f"            {outcome}", width, indent="              ")
        lines += _wrap(f"            {codes}", width, indent="            ")
        for change in link["changes"]:
            if change.get("error"):
                lines += _wrap(f"            FAILED step {change.get('step')}: {change['error']}", width, indent="              ")
        stopped = (link.get("transaction") or {}).get("stopped_at")
        if stopped:
            step = "backup" if stopped.get("step") == 0 else ("MTA restart" if stopped.get("step") == "restart" else f"step {stopped.get('step')} ({stopped.get('phase')})")
            lines += _wrap(f"            STOPPED at {step} on {stopped.get('host')}: {stopped.get('reason')}", width, indent="              ")
        if link.get("plan_error"):
            lines += _wrap(f"            not planned: {link['plan_error']}", width, indent="              ")
    for failed in report["coverage"]["hosts_failed"]:
        code = f"{failed['code']}: " if failed.get("code") else ""
        lines += _wrap(f"  not scanned: {failed['host']}: {code}{failed['reason']}", width)
    if not report["links"]:
        lines += _wrap("  No X.400 link was found between the hosts read: worst status unknown (is each server's peer "
                       "in the inventory group xcon_exchange?)" if summary["hosts_scanned"] else
                       "  No Exchange host could be read: worst status unknown.", width)
    verified = [link["id"] for link in report["links"] if link["verification"].get("state") == "passed"]
    unverified = [link["id"] for link in report["links"] if link["verification"].get("state") == "failed"]
    if verified or unverified:
        # The status column is the audit's (before any change); this line is the outcome of the run.
        line = f"After the changes: {len(verified)} link(s) verified, mail flows again"
        if unverified:
            line += f"; {len(unverified)} FAILED verification: {', '.join(unverified)}"
        lines += _wrap(line, width)
    if report.get("rerun_command"):
        lines.append(f"Re-run once the cause is removed: {report['rerun_command']}")
    if check and summary.get("restart_required"):
        lines += _wrap(f"Would restart the MTA on: {', '.join(summary['restart_required'])}", width)
    pending = sorted({link[side]["host"] for link in report["links"] if link.get("mta_restart") == "pending"
                      for side in ("inside", "outside")
                      if any(c.get("applied") and c.get("restart_required") and c.get("target") == link[side]["host"]
                             for c in link["changes"])})
    if pending and not check:
        lines += _wrap(f"MTA restart pending on: {', '.join(pending)} (the changes take effect when MSExchangeMTA "
                       "restarts there; rerun with xcon_allow_mta_restart=true or restart it yourself)", width)
    restarts = sorted({h: r for link in report["links"] for h, r in (link.get("mta_restarts") or {}).items()}.items())
    plain = {host for host, restart in restarts if _plain_restart(restart)}
    if len(plain) > 1:  # nothing more to say of each than "restarted": one line for them all
        lines += _wrap("MTA restarted on: " + ", ".join(f"{host} ({restart.get('service')})"
                                                        for host, restart in restarts if host in plain), width, indent="  ")
    for host, restart in restarts:
        if len(plain) <= 1 or host not in plain:
            lines += _wrap(restart_line(host, restart), width, indent="  ")
    return "\n".join(lines)


def _dependents_started(restart):
    return [n for n in restart.get("started") or [] if n != restart.get("service")]


def _plain_restart(restart):
    """Restarted, and nothing else to say: no dependent started again, no timeout, nothing left stopped."""
    return (bool(restart.get("restarted")) and not _dependents_started(restart)
            and not restart.get("timed_out") and not restart.get("not_running"))


def restart_line(host, restart):
    """One sentence on a server's MTA restart: what was restarted, timed out, is still not running."""
    others = _dependents_started(restart)
    text = (f"MTA restart on {host}: {restart.get('service')} "
            f"{'restarted' if restart.get('restarted') else 'NOT restarted'}")
    if others:
        text += f", dependent service(s) started again: {', '.join(others)}"
    if restart.get("timed_out"):
        text += f"; timed out waiting for: {', '.join(restart['timed_out'])}"
    if restart.get("not_running"):
        text += f"; STILL NOT RUNNING: {', '.join(restart['not_running'])}"
    return text


def run_stats(report, paths):
    """The run summary an AWX/AAP workflow branches on (published with set_stats as
    ``xcon_run_summary``): worst status as found and after, counts per status, the run id, the
    report paths, and the firewall change records still waiting for the operator's confirmation."""
    summary = report.get("summary") or {}
    waiting = []
    for link in report.get("links") or []:
        stopped = (link.get("transaction") or {}).get("stopped_at") or {}
        if str(stopped.get("phase", "")).startswith(("firewall", "transparency")):
            waiting.append(link["id"])
    return {
        "run_id": report["run_id"], "check_mode": bool(report.get("check_mode")),
        "worst_status": summary.get("worst_status"), "worst_status_after": summary.get("worst_status_after"),
        "links_by_status": summary.get("links_by_status"), "links_by_status_after": summary.get("links_by_status_after"),
        "links_total": summary.get("links_total"), "changes_applied": summary.get("changes_applied"),
        "hosts_failed": summary.get("hosts_failed"),
        "awaiting_firewall_confirmation": waiting,
        "firewall_records": [os.path.join(os.path.dirname(paths["json"]), r)
                             for r in artifacts(report, os.path.dirname(os.path.dirname(paths["json"])))["firewall_records"]],
        "report_html": paths.get("html"), "report_json": paths.get("json"),
    }
