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

import jinja2

from xcon import mask as xmask
from xcon import state as xstate

# docs/contracts/report.schema.json: minor grows with each compatible extension.
SCHEMA_VERSION = "1.1"
# Tests set this to the schema's path: every report written is then validated before it is written
# (tests/conftest.py), so no report the suite produces can drift from the shipped schema.
SCHEMA_ENV = "XCON_REPORT_SCHEMA"
STATUSES = ("error", "unknown", "warning", "ok")  # worst first: the overview's order
SEVERITIES = ("error", "unknown", "warning", "info")
LINK_DEFAULTS = {
    "id": "", "inside": {}, "outside": {}, "firewall": None, "status": "unknown", "findings": [],
    "recommended_workaround": "none", "reason": "", "changes": [],
    "verification": {"state": "not_run", "details": {}},
}
# Values under secret keys shorter than this are masked under their key only, not searched for in
# other text (a two-letter value would garble every message it happens to occur in).
MIN_SECRET_LENGTH = 4


# -- masking --------------------------------------------------------------------------------------
def _secret_values(obj, found):
    """Collect the string values stored under secret-named keys (except the mask itself)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if xmask.is_secret_key(key) and isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH and value != xmask.MASK:
                found.add(value)
            else:
                _secret_values(value, found)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _secret_values(value, found)
    return found


def mask_report(obj, secrets=()):
    """A masked copy: secret-named keys, their values wherever they recur, and `secrets`."""
    known = _secret_values(obj, set(s for s in secrets if s))
    # longest first, so a secret containing another is replaced whole
    return xmask.mask(obj, tuple(sorted(known, key=len, reverse=True)))


# -- building -------------------------------------------------------------------------------------
def _now():
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _normalize_link(link, check_mode):
    full = copy.deepcopy(LINK_DEFAULTS)
    full.update(copy.deepcopy(link))
    full["verification"] = dict(LINK_DEFAULTS["verification"], **(full.get("verification") or {}))
    for change in full["changes"]:
        # the plan's back-reference to its link: inside the link it would say the same thing twice
        if change.get("link") == full["id"]:
            del change["link"]
    full["status_after"] = status_after(full, check_mode)
    return full


def status_after(link, check_mode):
    """The link's status after this run's changes: ``None`` under --check (nothing ran); ``ok`` when
    verification passed, ``error`` when it failed; ``unknown`` when a change was made but not
    verified; else the status as found (nothing was changed on the link)."""
    if check_mode:
        return None
    state = (link.get("verification") or {}).get("state")
    if state == "passed":
        return "ok"
    if state == "failed":
        return "error"
    if any(c.get("applied") for c in link.get("changes") or []):
        return "unknown"
    return link.get("status", "unknown")


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
    after = {s: 0 for s in STATUSES}
    for link in links:
        final = link.get("status_after") or link["status"]
        after[final] = after.get(final, 0) + 1
    return {
        "links_by_status_after": after, "worst_status_after": next((s for s in STATUSES if after.get(s)), "ok"),
        "links_total": len(links), "links_by_status": by_status, "worst_status": worst,
        "findings_by_severity": by_severity, "findings_by_code": dict(sorted(by_code.items())),
        "changes_planned": len(changes), "changes_applied": sum(1 for c in changes if c.get("applied")),
        "restart_required": sorted({c["target"] for c in changes if c.get("restart_required") and not c.get("applied")}),
        "hosts_scanned": len(hosts_scanned), "hosts_failed": len(hosts_failed),
        "verification": verification,
    }


def build_report(run_id, check_mode, workaround_requested, hosts_scanned, hosts_failed, links, tool_version, secrets=()):
    """The report dict of report.md (plus ``summary``), masked; `secrets` are extra values to hide."""
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
        "coverage": {"hosts_scanned": scanned, "hosts_failed": failed},
        "links": links,
        "summary": _summary(links, scanned, failed),
    }
    return mask_report(report, secrets)


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
def write_report(report, report_dir, secrets=()):
    """Write <dir>/<run_id>/report.{json,html} and copies under <dir>/latest/; return the paths."""
    report = mask_report(report, secrets)
    validate_if_asked(report)
    texts = {"json": json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
             "html": render_html(report)}
    paths = {}
    for folder, prefix in ((str(report["run_id"]), ""), ("latest", "latest_")):
        for kind, text in texts.items():
            path = os.path.join(report_dir, folder, f"report.{kind}")
            xstate.write_text_atomic(path, text)
            paths[prefix + kind] = path
    return paths


# -- rendering ------------------------------------------------------------------------------------
HTML_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>fix-xcon report {{ r.run_id }}</title>
<style>
body { font-family: Segoe UI, Arial, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.2em 0; }
th, td { border: 1px solid #bbb; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #eee; }
.ok { background: #c8e6c9; } .warning { background: #fff59d; } .error { background: #ef9a9a; }
.unknown { background: #d6d6d6; } .info { background: #bbdefb; }
pre { margin: 0; white-space: pre-wrap; font-size: 90%; }
.small { color: #555; font-size: 90%; }
</style></head><body>
<h1>fix-xcon report</h1>
<p class="small">Run {{ r.run_id }} &middot; generated {{ r.generated_at }} &middot; fix-xcon {{ r.tool_version }}
&middot; {{ "check mode (audit only)" if r.check_mode else "changes enabled" }} &middot; workaround requested: {{ r.workaround_requested }}</p>

<h2 id="overview">Overview</h2>
<table id="overview-table">
<tr><th>Link</th><th>Inside</th><th>Outside</th><th>Firewall</th><th>Status</th><th>Findings</th>
<th>Recommended workaround</th><th>Changes</th><th>Verification</th></tr>
{% for l in r.links %}
<tr><td><a href="#link-{{ loop.index }}">{{ l.id }}</a></td>
<td>{{ l.inside.host }}{% if l.inside.connector %} / {{ l.inside.connector }}{% endif %}</td>
<td>{{ l.outside.host }}{% if l.outside.connector %} / {{ l.outside.connector }}{% endif %}</td>
<td>{{ l.firewall or "-" }}</td>
<td class="{{ l.status }}">{{ l.status }}</td>
<td>{% for f in l.findings %}<span class="{{ f.severity }}">{{ f.code }}</span>{% if not loop.last %}, {% endif %}{% else %}-{% endfor %}</td>
<td>{{ l.recommended_workaround }}</td>
<td>{{ l.changes | length }} ({{ l.changes | selectattr("applied") | list | length }} applied)</td>
<td>{{ l.verification.state }}</td></tr>
{% else %}
<tr><td colspan="9">No links were found.</td></tr>
{% endfor %}
</table>

<h2 id="coverage">Coverage</h2>
<table>
<tr><th>Host</th><th>Scan</th><th>Reason</th></tr>
{% for h in r.coverage.hosts_scanned %}<tr><td>{{ h }}</td><td class="ok">scanned</td><td></td></tr>{% endfor %}
{% for h in r.coverage.hosts_failed %}<tr><td>{{ h.host }}</td><td class="unknown">not scanned</td><td>{{ h.reason }}</td></tr>{% endfor %}
</table>

<h2 id="details">Details</h2>
{% for l in r.links %}
<h3 id="link-{{ loop.index }}">{{ l.id }} <span class="{{ l.status }}">&nbsp;{{ l.status }}&nbsp;</span></h3>
<p>Inside: {{ l.inside.host }} (connector {{ l.inside.connector or "none" }}{% if l.inside.reverse_connector %}, reverse connector {{ l.inside.reverse_connector }}{% endif %});
outside: {{ l.outside.host }} (connector {{ l.outside.connector or "none" }}); firewall: {{ l.firewall or "none" }}.</p>
<h4>Findings</h4>
{% if l.findings %}
<table><tr><th>Severity</th><th>Code</th><th>Host</th><th>Connector</th><th>Message</th><th>Evidence</th></tr>
{% for f in l.findings %}
<tr><td class="{{ f.severity }}">{{ f.severity }}</td><td>{{ f.code }}</td><td>{{ f.host }}</td><td>{{ f.connector or "" }}</td>
<td>{{ f.message }}</td><td><pre>{{ f.evidence | tojson_pretty }}</pre></td></tr>
{% endfor %}</table>
{% else %}<p>No findings.</p>{% endif %}
<h4>Recommended workaround: {{ l.recommended_workaround }}</h4>
<p>{{ l.reason }}</p>
<h4>Changes</h4>
{% if l.changes %}
<table><tr><th>Step</th><th>Target</th><th>Object</th><th>Action</th><th>Before</th><th>After</th><th>Applied</th><th>Restart</th><th>Description</th></tr>
{% for c in l.changes %}
<tr><td>{{ c.step }}</td><td>{{ c.target }}</td><td>{{ c.object }}</td><td>{{ c.action }}</td>
<td><pre>{{ c.before | tojson_pretty }}</pre></td><td><pre>{{ c.after | tojson_pretty }}</pre></td>
<td>{{ "yes" if c.applied else "no" }}</td><td>{{ "yes" if c.restart_required else "no" }}</td>
<td>{{ c.description }}{% if c.warning %}<br><strong class="warning">{{ c.warning }}</strong>{% endif %}</td></tr>
{% endfor %}</table>
{% else %}<p>No changes planned.</p>{% endif %}
<h4>Verification: {{ l.verification.state }}</h4>
{% if l.verification.details %}<pre>{{ l.verification.details | tojson_pretty }}</pre>{% endif %}
{% endfor %}
</body></html>
"""


def _tojson_pretty(value):
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False, default=str)


_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
_ENV.filters["tojson_pretty"] = _tojson_pretty
_TEMPLATE = _ENV.from_string(HTML_TEMPLATE)


def render_html(report):
    """The HTML page: overview table, coverage, then per-link details (values autoescaped)."""
    return _TEMPLATE.render(r=mask_report(report))


def _clip(line, width):
    return line if len(line) <= width else line[:width - 3] + "..."


def render_summary(report, width=100):
    """A one-screen plain-text summary for the end of the run."""
    report = mask_report(report)
    summary = report.get("summary") or _summary(report["links"], report["coverage"]["hosts_scanned"], report["coverage"]["hosts_failed"])
    counts = ", ".join(f"{summary['links_by_status'].get(s, 0)} {s}" for s in STATUSES)
    lines = [f"fix-xcon {report.get('tool_version')} run {report['run_id']} "
             f"({'check mode' if report.get('check_mode') else 'changes enabled'}, workaround {report.get('workaround_requested')})",
             f"Links as found: {summary['links_total']} ({counts}); hosts scanned {summary['hosts_scanned']}, failed {summary['hosts_failed']}"]
    for link in report["links"]:
        codes = ", ".join(f"{f['code'].replace('XCON-', '')} ({f['severity']})" for f in link["findings"]) or "no findings"
        applied = sum(1 for c in link["changes"] if c.get("applied"))
        lines.append(_clip(f"  [{link['status'].upper():7}] {link['id']}: workaround {link['recommended_workaround']}, "
                           f"changes {applied}/{len(link['changes'])} applied, verification {link['verification'].get('state')}", width))
        lines.append(_clip(f"            {codes}", width))
    for failed in report["coverage"]["hosts_failed"]:
        lines.append(f"  not scanned: {failed['host']}: {failed['reason']}"[:width])
    verified = [link["id"] for link in report["links"] if link["verification"].get("state") == "passed"]
    unverified = [link["id"] for link in report["links"] if link["verification"].get("state") == "failed"]
    if verified or unverified:
        # The status column is the audit's (before any change); this line is the outcome of the run.
        line = f"After the changes: {len(verified)} link(s) verified, mail flows again"
        if unverified:
            line += f"; {len(unverified)} FAILED verification: {', '.join(unverified)}"
        lines.append(_clip(line, width))
    if summary.get("restart_required"):
        lines.append(f"MTA restart pending on: {', '.join(summary['restart_required'])}")
    return "\n".join(lines)
