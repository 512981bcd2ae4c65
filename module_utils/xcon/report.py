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

import jinja2
import markupsafe

from xcon import mask as xmask
from xcon import state as xstate
from xcon import topology as xtopology

# docs/contracts/report.schema.json: minor grows with each compatible extension.
SCHEMA_VERSION = "1.2"
# Tests set this to the schema's path: every report written is then validated before it is written
# (tests/conftest.py), so no report the suite produces can drift from the shipped schema.
SCHEMA_ENV = "XCON_REPORT_SCHEMA"
# The finding pages the HTML report links to (docs/findings/<CODE>.md of this checkout).
DOCS_FINDINGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs", "findings")
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
    topo = xtopology.for_report(full, check_mode)
    if topo:
        full["topology"] = topo
    else:
        full.pop("topology", None)
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
        "links_by_status_after": after, "worst_status_after": _at_least_unknown(next((s for s in STATUSES if after.get(s)), "ok"), links, hosts_failed),
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
def write_report(report, report_dir, secrets=(), latest=True):
    """Write <dir>/<run_id>/report.{json,html} and (with `latest`) copies under <dir>/latest/;
    return the paths."""
    report = mask_report(report, secrets)
    report["artifacts"] = artifacts(report, report_dir)
    validate_if_asked(report)
    text_json = json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    paths = {}
    for folder, prefix in ((str(report["run_id"]), ""), ("latest", "latest_"))[:2 if latest else 1]:
        directory = os.path.join(report_dir, folder)
        base = "" if folder == str(report["run_id"]) else f"../{report['run_id']}/"
        docs = os.path.relpath(DOCS_FINDINGS, os.path.abspath(directory)).replace(os.sep, "/")
        for kind, text in (("json", text_json), ("html", render_html(report, base=base, docs=docs))):
            path = os.path.join(directory, f"report.{kind}")
            xstate.write_text_atomic(path, text)
            paths[prefix + kind] = path
    return paths


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
HTML_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>fix-xcon report {{ r.run_id }}</title>
<style>
body { font-family: "Segoe UI", Arial, sans-serif; margin: 1.2em 1.5em; color: #222; font-size: 14px; }
h1 { margin: 0 0 .2em 0; font-size: 24px; } h2 { border-bottom: 2px solid #2b579a; color: #2b579a; margin-top: 1.4em; }
h3 { background: #f0f0f0; padding: .3em .5em; border-left: 6px solid #999; }
h3.lnk-error { border-left-color: #c62828; } h3.lnk-warning { border-left-color: #f9a825; } h3.lnk-ok { border-left-color: #2e7d32; } h3.lnk-unknown { border-left-color: #757575; }
.pill { border: 1px solid #888; }
table { border-collapse: collapse; margin: .4em 0 1em 0; }
th, td { border: 1px solid #bbb; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #2b579a; color: #fff; font-weight: 600; }
td.name { background: #f4f4f4; font-weight: 600; white-space: nowrap; }
.ok { background: #c8e6c9; } .warning { background: #fff59d; } .error { background: #ef9a9a; }
.unknown { background: #d6d6d6; } .info { background: #bbdefb; } .none { background: #fff; }
.pill { padding: .05em .45em; border-radius: .6em; font-weight: 600; font-size: 90%; white-space: nowrap; }
.arrow { color: #555; padding: 0 .2em; }
.banner { padding: .7em 1em; margin: .6em 0 1em 0; font-size: 17px; font-weight: 600; border-radius: 4px; }
.banner.check { background: #fff3cd; border: 3px solid #e0a800; color: #6b4e00; }
.banner.live { background: #e3f2fd; border: 2px solid #2b579a; color: #1a3a6b; }
.banner.offline { background: #ede7f6; border: 2px solid #5e35b1; color: #311b92; }
.small { color: #555; font-size: 90%; } code, pre { font-family: Consolas, "DejaVu Sans Mono", monospace; font-size: 90%; }
pre { margin: 0; white-space: pre-wrap; } code.cmd { background: #263238; color: #eceff1; padding: .3em .6em; display: inline-block; border-radius: 3px; }
.tiles { display: flex; gap: .6em; flex-wrap: wrap; margin: .4em 0; } .tile { padding: .4em .8em; border: 1px solid #bbb; border-radius: 4px; min-width: 6em; }
.tile b { font-size: 20px; display: block; }
.pictures { display: flex; gap: 1em; flex-wrap: wrap; align-items: flex-start; } .picture { flex: 1 1 600px; max-width: 780px; }
svg.topology { width: 100%; height: auto; background: #fcfcfc; border: 1px solid #ddd; }
svg.topology text { font-size: 12px; fill: #222; } svg.topology .caption { font-size: 14px; font-weight: 600; }
svg.topology .host { font-weight: 700; font-size: 13px; } svg.topology .addr { font-family: Consolas, monospace; font-size: 11.5px; }
svg.topology .role, svg.topology .legend, svg.topology .via { fill: #666; font-size: 10.5px; }
svg.topology .stack, svg.topology .seen { font-family: Consolas, monospace; font-size: 11px; }
svg.topology .rule, svg.topology .conn { font-size: 11px; } svg.topology .transp.on { fill: #c62828; font-weight: 700; }
svg.topology rect.server { fill: #e8eef7; stroke: #2b579a; stroke-width: 1.5; } svg.topology rect.server.unread { fill: #eee; stroke: #999; stroke-dasharray: 5 3; }
svg.topology rect.firewall { fill: #fff3e0; stroke: #e65100; stroke-width: 1.5; }
svg.topology .refused-text { fill: #c62828; font-weight: 600; }
details { margin: .2em 0; } summary { cursor: pointer; color: #2b579a; }
ul.paths { margin: .2em 0 .8em 0; } ul.paths li.working { background: none; color: #1b5e20; } ul.paths li.refused { background: none; color: #b71c1c; } ul.paths li.unknown { background: none; color: #555; }
</style></head><body>
{% macro status(s) %}<span class="pill {{ s }}">{{ s }}</span>{% endmacro %}
{% macro scalar(v) %}{% if v is sameas true %}yes{% elif v is sameas false %}no{% elif v is none %}-{% else %}{{ v }}{% endif %}{% endmacro %}
{% macro value(v) %}
{% if v is mapping %}{% for k, x in v | dictsort %}{{ k }}: {% if x is mapping or (x is iterable and x is not string) %}<code>{{ x | tojson_compact }}</code>{% else %}{{ scalar(x) }}{% endif %}{% if not loop.last %}<br>{% endif %}{% else %}-{% endfor %}
{% elif v is iterable and v is not string %}
{% if v and v[0] is mapping and v[0].message is defined %}
<table class="samples"><tr><th>time</th><th>event</th><th>message</th></tr>
{% for e in v %}<tr><td>{{ e.time }}</td><td>{{ e.id }}</td><td>{{ e.message }}</td></tr>{% endfor %}</table>
{% elif v and v[0] is mapping and v[0].text is defined %}{% for e in v %}{{ e.text }}{% if not loop.last %}<br>{% endif %}{% endfor %}
{% elif v and v[0] is mapping %}{% for e in v %}<code>{{ e | tojson_compact }}</code>{% if not loop.last %}<br>{% endif %}{% endfor %}
{% else %}{{ v | join(", ") if v else "none" }}{% endif %}
{% else %}{{ scalar(v) }}{% endif %}
{% endmacro %}
{% macro rows(d) %}
<table class="kv">{% for k, v in d | dictsort %}<tr><td class="name">{{ k | replace("_", " ") }}</td><td>{{ value(v) }}</td></tr>{% endfor %}</table>
{% endmacro %}
{% macro finding_link(code) %}<a href="{{ docs }}/{{ code }}.md" class="code">{{ code }}</a>{% endmacro %}
<h1>fix-xcon report</h1>
<p class="small">Run <b>{{ r.run_id }}</b> &middot; generated {{ r.generated_at }} &middot; fix-xcon {{ r.tool_version }} &middot; report schema {{ r.schema_version }} &middot; workaround requested: <b>{{ r.workaround_requested }}</b></p>
{% if r.analysed_run_id %}
<div class="banner offline" id="offline-banner">OFFLINE ANALYSIS of saved run {{ r.analysed_run_id }}: no server or firewall was contacted; its saved answers and firewall facts were re-analysed.</div>
{% endif %}
{% if r.check_mode %}
<div class="banner check" id="check-banner">CHECK MODE: nothing was changed. The "after" pictures and the changes below show what a run without --check would do.</div>
{% else %}
<div class="banner live" id="live-banner">Changes enabled: {{ r.summary.changes_applied }} of {{ r.summary.changes_planned }} planned change(s) applied{% if r.summary.restart_required %}; MTA restart pending on {{ r.summary.restart_required | join(", ") }}{% endif %}.</div>
{% endif %}
<div class="tiles">
<div class="tile">links<b>{{ r.summary.links_total }}</b></div>
{% for s in ["error", "unknown", "warning", "ok"] %}<div class="tile {{ s if r.summary.links_by_status[s] else '' }}">{{ s }} as found<b>{{ r.summary.links_by_status[s] }}</b></div>{% endfor %}
{% if not r.check_mode %}{% for s in ["error", "unknown", "warning", "ok"] %}<div class="tile {{ s if r.summary.links_by_status_after[s] else '' }}">{{ s }} after<b>{{ r.summary.links_by_status_after[s] }}</b></div>{% endfor %}{% endif %}
<div class="tile">hosts scanned<b>{{ r.summary.hosts_scanned }}</b></div><div class="tile {{ 'unknown' if r.summary.hosts_failed else '' }}">hosts not read<b>{{ r.summary.hosts_failed }}</b></div>
</div>

<h2 id="overview">Overview</h2>
<table id="overview-table">
<tr><th>Link</th><th>Inside</th><th>Outside</th><th>Firewall</th><th>Status</th><th>After</th><th>Findings</th>
<th>Workaround</th><th>Changes</th><th>Verification</th></tr>
{% for l in r.links %}
<tr><td><a href="#link-{{ loop.index }}">{{ l.id }}</a></td>
<td>{{ l.inside.host }}{% if l.inside.connector %} / {{ l.inside.connector }}{% endif %}</td>
<td>{{ l.outside.host }}{% if l.outside.connector %} / {{ l.outside.connector }}{% endif %}</td>
<td>{{ l.firewall or "-" }}</td>
<td class="{{ l.status }}">{{ l.status }}</td>
{% if l.status_after %}<td class="{{ l.status_after }}">{{ l.status_after }}</td>{% else %}<td class="none">{{ "would change" if l.changes else "-" }}</td>{% endif %}
<td>{% for f in l.findings %}<span class="{{ f.severity }}">{{ finding_link(f.code) }}</span>{% if not loop.last %}, {% endif %}{% else %}-{% endfor %}</td>
<td>{{ l.workaround_chosen or l.recommended_workaround }}</td>
<td>{{ l.changes | length }} ({{ l.changes | selectattr("applied") | list | length }} applied)</td>
<td>{{ l.verification.state }}</td></tr>
{% else %}
<tr><td colspan="10">No links were found.</td></tr>
{% endfor %}
</table>

<h2 id="artifacts">Backup, firewall change records, rollback</h2>
{% set a = r.artifacts or {} %}
<table>
<tr><td class="name">Backup</td><td>{% if a.backup_dir %}<a href="{{ base }}{{ a.backup_dir }}/">{{ a.backup_dir }}/</a> (every object's before-state){% else %}none: {{ "check mode backs nothing up" if r.check_mode else "nothing was changed" }}{% endif %}</td></tr>
<tr><td class="name">Firewall change records</td><td>{% for f in a.firewall_records or [] %}<a href="{{ base }}{{ f }}">{{ f }}</a>{% if not loop.last %}<br>{% endif %}{% else %}none{% endfor %}</td></tr>
<tr><td class="name">Rollback</td><td>{% if a.rollback_command %}<code class="cmd" id="rollback-command">{{ a.rollback_command }}</code>{% else %}nothing to roll back{% endif %}</td></tr>
</table>

<h2 id="coverage">Coverage</h2>
<table>
<tr><th>Host</th><th>Scan</th><th>Reason</th></tr>
{% for h in r.coverage.hosts_scanned %}<tr><td>{{ h }}</td><td class="ok">scanned</td><td></td></tr>{% endfor %}
{% for h in r.coverage.hosts_failed %}<tr><td>{{ h.host }}</td><td class="unknown">not scanned</td><td>{% if h.code %}{{ finding_link(h.code) }}: {% endif %}{{ h.reason }}</td></tr>{% endfor %}
</table>

<h2 id="details">Details</h2>
{% for l in r.links %}
{% set li = loop.index %}
<h3 id="link-{{ li }}" class="lnk-{{ l.status_after or l.status }}">{{ l.id }} &nbsp; {{ status(l.status) }}{% if l.status_after %}<span class="arrow">&rarr;</span>{{ status(l.status_after) }}{% elif l.changes and r.check_mode %}<span class="arrow">&rarr;</span><span class="pill none">would change</span>{% endif %}</h3>
<p>Inside: <b>{{ l.inside.host }}</b> (connector {{ l.inside.connector or "none" }}{% if l.inside.reverse_connector %}, reverse connector {{ l.inside.reverse_connector }}{% endif %});
outside: <b>{{ l.outside.host }}</b> (connector {{ l.outside.connector or "none" }}); firewall: {{ l.firewall or "none" }}.</p>
{% if l.topology %}
<div class="pictures" id="link-{{ li }}-pictures">
<div class="picture">{{ svg(l.topology.before, "as found" if not l.topology.after else "before", "l" ~ li ~ "b") }}
<ul class="paths">{% for p in l.topology.before.paths %}<li class="{{ p.state }}">{{ p.connector }} ({{ p.from }}): {{ p.state }} &ndash; {{ p.why }}</li>{% endfor %}</ul></div>
{% if l.topology.after %}
<div class="picture">{{ svg(l.topology.after, {"applied": "after the changes", "planned": "after (planned, not done)", "partly_applied": "after (partly applied)"}[l.topology.after_basis], "l" ~ li ~ "a") }}
<ul class="paths">{% for p in l.topology.after.paths %}<li class="{{ p.state }}">{{ p.connector }} ({{ p.from }}): {{ p.state }} &ndash; {{ p.why }}</li>{% endfor %}</ul></div>
{% endif %}
</div>
{% endif %}
<h4>Findings</h4>
{% if l.findings %}
<table><tr><th>Severity</th><th>Code</th><th>Host</th><th>Connector</th><th>Message and evidence</th></tr>
{% for f in l.findings %}
<tr><td class="{{ f.severity }}">{{ f.severity }}</td><td>{{ finding_link(f.code) }}</td><td>{{ f.host }}</td><td>{{ f.connector or "" }}</td>
<td>{{ f.message }}{% if f.evidence %}{{ rows(f.evidence) }}<details><summary>raw evidence (JSON)</summary><pre>{{ f.evidence | tojson_pretty }}</pre></details>{% endif %}</td></tr>
{% endfor %}</table>
{% else %}<p>No findings.</p>{% endif %}
<h4>Workaround: {{ l.workaround_chosen or l.recommended_workaround }}</h4>
<p>{{ l.workaround_reason or l.reason }}{% if l.workaround_chosen and l.workaround_chosen != l.recommended_workaround %} (recommended with auto: {{ l.recommended_workaround }} &ndash; {{ l.reason }}){% endif %}</p>
{% if l.plan_error %}<p class="error">Not planned: {{ l.plan_error }}</p>{% endif %}
<h4>Changes</h4>
{% if l.changes %}
<table><tr><th>Step</th><th>Target</th><th>Object</th><th>Action</th><th>Before</th><th>After</th><th>Applied</th><th>Restart</th><th>Description</th></tr>
{% for c in l.changes %}
<tr><td>{{ c.step }}</td><td>{{ c.target }}</td><td>{{ c.object }}</td><td>{{ c.action }}</td>
<td>{{ value(c.before) }}</td><td>{{ value(c.after) }}</td>
<td class="{{ 'ok' if c.applied else ('error' if c.error else 'none') }}">{{ "yes" if c.applied else ("FAILED" if c.error else "no") }}</td><td>{{ "yes" if c.restart_required else "no" }}</td>
<td>{{ c.description }}{% if c.error %}<br><strong class="error">{{ c.error }}</strong>{% endif %}{% if c.warning %}<br><strong class="warning">{{ c.warning }}</strong>{% endif %}</td></tr>
{% endfor %}</table>
{% else %}<p>No changes planned.</p>{% endif %}
{% if l.transaction and l.transaction.stopped_at %}<p class="error">Stopped at step {{ l.transaction.stopped_at.step }} ({{ l.transaction.stopped_at.phase }}) on {{ l.transaction.stopped_at.host }}: {{ l.transaction.stopped_at.reason }}. In place: {{ l.transaction.stopped_at.safe }}. Re-run: <code>{{ r.rerun_command }}</code></p>{% endif %}
<h4>Verification: {{ l.verification.state }}</h4>
{% if l.verification.details %}{{ rows(l.verification.details) }}{% endif %}
{% endfor %}
</body></html>
"""


def _tojson_pretty(value):
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False, default=str)


def _tojson_compact(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _svg(pic, caption, uid):
    return markupsafe.Markup(xtopology.svg(pic, caption, uid))


_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
_ENV.filters["tojson_pretty"] = _tojson_pretty
_ENV.filters["tojson_compact"] = _tojson_compact
_ENV.globals["svg"] = _svg
_TEMPLATE = _ENV.from_string(HTML_TEMPLATE)


def render_html(report, base="", docs=None):
    """The HTML page: banner, overview table, artefacts, coverage, then per-link details with the
    topology pictures (values autoescaped).  `base` prefixes the run's own files (backup, change
    records); `docs` is the (relative) folder of the finding pages."""
    return _TEMPLATE.render(r=mask_report(report), base=base, docs=docs if docs is not None else DOCS_FINDINGS)


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


def render_summary(report, width=100):
    """A plain-text summary for the end of the run: every line wrapped at `width`, nothing cut;
    codes keep their XCON- prefix; under --check it says what would change and restart."""
    report = mask_report(report)
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
    return "\n".join(lines)
