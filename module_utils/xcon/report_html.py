"""The HTML page of a report (xcon.report renders it): the Jinja template and its filters.

Banner, overview table, artefacts, coverage, then per-link details with the topology pictures
(xcon.topology draws them); every value is autoescaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import jinja2
import markupsafe

from xcon import report_fleet as xfleet
from xcon import report_timeline as xtimeline
from xcon import report_timeline_svg as xtimeline_svg
from xcon import topology as xtopology
from xcon.mask import inert

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
pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; } table table td { overflow-wrap: anywhere; } code.cmd { background: #263238; color: #eceff1; padding: .3em .6em; display: inline-block; border-radius: 3px; }
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
svg.timeline, svg.spark { max-width: 100%; height: auto; background: #fcfcfc; border: 1px solid #ddd; font-family: "Segoe UI", Arial, sans-serif; } svg.timeline { width: 100%; max-width: 920px; }
svg.timeline text { font-size: 11px; fill: #222; } svg.timeline .caption { font-size: 12.5px; font-weight: 600; } svg.timeline .host { font-weight: 700; font-size: 12px; }
svg.timeline .role, svg.timeline .row, svg.timeline .legend, svg.timeline text.tick { fill: #666; font-size: 10px; } svg.timeline .row { text-anchor: end; } svg.timeline text.tick { text-anchor: middle; } svg.timeline .lane-bg { fill: #e8eef7; opacity: .45; }
svg.timeline .ev { stroke-width: 1.6; fill: none; } svg.timeline .queue polyline { stroke: #2b579a; fill: none; stroke-width: 2.5; stroke-linecap: round; stroke-linejoin: round; }
 svg.timeline .qv { fill: #2b579a; font-weight: 700; } svg.timeline .chl { font-weight: 700; fill: #222; }
svg.timeline path.change { stroke-width: 2; } svg.timeline path.brk { stroke: #999; stroke-dasharray: 2 2; } svg.timeline text.brk { fill: #888; font-size: 9.5px; } svg.timeline .axis, svg.timeline path.tick, svg.spark .axis { stroke: #999; fill: none; } svg.timeline .omitted { fill: #eee; }
.fleet { margin: .4em 0 1em 0; } .fleet figure { display: inline-block; vertical-align: top; width: 252px; margin: 0 .6em .6em 0; }
.fleet figcaption { font-size: 11.5px; color: #333; overflow-wrap: anywhere; } svg.spark text { font-size: 9.5px; fill: #666; } svg.spark .change { stroke-width: 1.5; stroke-dasharray: 3 2; }
details { margin: .2em 0; } summary { cursor: pointer; color: #2b579a; }
.filters a { margin-right: .4em; } .fleet details.group { margin: .3em 0; } .fleet .members { margin: .2em 0 .5em 1.5em; }
section.link-details { content-visibility: auto; contain-intrinsic-size: auto 1200px; }
.show:target ~ .fleet .group, .show:target ~ #overview-table tr.link-row, .show:target ~ section.link-details { display: none; }
{% for s in statuses %}#show-{{ s }}:target ~ .fleet .group.st-{{ s }}, #show-{{ s }}:target ~ #overview-table tr.st-{{ s }}, #show-{{ s }}:target ~ section.link-details.st-{{ s }} { display: revert; }
{% endfor %}
ul.paths { margin: .2em 0 .8em 0; } ul.paths li.working { background: none; color: #1b5e20; } ul.paths li.refused { background: none; color: #b71c1c; } ul.paths li.unknown { background: none; color: #555; }
</style></head><body>
{% macro status(s) %}<span class="pill {{ s }}">{{ s }}</span>{% endmacro %}
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

<h2 id="fleet">Fleet</h2>
<p class="filters" id="status-filter">Show the links whose status{{ " after the run" if not r.check_mode else "" }} is: <a href="#fleet">any ({{ r.links | length }})</a>
{% for s in statuses %}<a href="#show-{{ s }}" class="pill {{ s }}">{{ s }} ({{ fleet.counts[s] }})</a>{% endfor %}</p>
{% for s in statuses %}<span class="show" id="show-{{ s }}"></span>{% endfor %}
<div class="fleet" id="fleet-groups">
{% for g in fleet.groups %}<details class="group st-{{ g.status }}"><summary><span class="pill {{ g.status }}">{{ g.status }}</span> {{ g.label }}</summary>
<p class="members">{% for i, id in g.links %}<a href="#link-{{ i }}">{{ id }}</a>{% if not loop.last %}, {% endif %}{% endfor %}</p></details>
{% else %}<p>No links were found.</p>{% endfor %}
</div>
{% set fl = fleet_charts(r.links, fleet.groups, r.check_mode) %}
{% if fl %}
<div class="fleet" id="fleet-charts">
<p class="small">Refusals per hour (1290/289/1294/1293/37, in {{ fl.bucket_minutes }}-minute bars) per group, {{ fl.start | replace("T", " ") }} &ndash; {{ fl.end | replace("T", " ") }} UTC; every chart on the same scale (top: {{ fl.peak }} per hour){% if not r.check_mode %}; dashed line: the group's first change{% endif %}.</p>
{% for c in fl.charts %}<figure class="group st-{{ c.status }}" data-links="{{ c.links | length }}"><figcaption>{{ c.label }}</figcaption>{{ c.svg | safe }}</figure>{% endfor %}
</div>
{% endif %}

<h2 id="overview">Overview</h2>
<table id="overview-table">
<tr><th>Link</th><th>Inside</th><th>Outside</th><th>Firewall</th><th>Status</th><th>After</th><th>Findings</th>
<th>Workaround</th><th>Changes</th><th>Verification</th></tr>
{% for l in r.links %}
<tr class="link-row st-{{ l.status_after or l.status }}"><td><a href="#link-{{ loop.index }}">{{ l.id }}</a></td>
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
{% if r.coverage.directories %}<table id="directories">
<tr><th>Server</th><th>Connectors read from</th><th>How current</th></tr>
{% for host, d in r.coverage.directories.items() %}<tr><td>{{ host }}</td><td>{% if d.host %}{{ d.server }} (Exchange {{ d.version }}{% if d.own %}, its own directory{% endif %}){% else %}none{% endif %}</td><td>{{ d.staleness or d.reason }}</td></tr>{% endfor %}
</table>{% endif %}

<h2 id="details">Details</h2>
{% for l in r.links %}
{% set li = loop.index %}
<section class="link-details st-{{ l.status_after or l.status }}">
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
{% if l.timeline and l.timeline.window and l.timeline.window.start %}
<h4>Timeline</h4>
<div class="timeline" id="link-{{ li }}-timeline">{{ timeline_svg(l.timeline, [(l.inside.host, "inside"), (l.outside.host, "outside")], "l" ~ li ~ "t") }}
<ul class="small">{% for s in timeline_text(l, r.check_mode) %}<li>{{ s }}</li>{% endfor %}</ul></div>
{% endif %}
<h4>Findings</h4>
{% if l.findings %}
<table><tr><th>Severity</th><th>Code</th><th>Host</th><th>Connector</th><th>Message and evidence</th></tr>
{% for f in l.findings %}
<tr><td class="{{ f.severity }}">{{ f.severity }}</td><td>{{ finding_link(f.code) }}</td><td>{{ f.host }}</td><td>{{ f.connector or "" }}</td>
<td>{{ f.message }}{% if f.evidence %}{{ rows(f.evidence) }}{% endif %}</td></tr>
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
{% for host, m in (l.mta_restarts or {}).items() %}<p class="{{ 'error' if m.not_running or not m.restarted else '' }}">MTA restart on {{ host }}: {{ m.service }} {{ 'restarted' if m.restarted else 'NOT restarted' }}{% if m.started | reject('equalto', m.service) | list %}; dependent service(s) started again: {{ m.started | reject('equalto', m.service) | join(', ') }}{% endif %}{% if m.timed_out %}; timed out waiting for: {{ m.timed_out | join(', ') }}{% endif %}{% if m.not_running %}; still not running: {{ m.not_running | join(', ') }}{% endif %}.</p>{% endfor %}
<h4>Verification: {{ l.verification.state }}</h4>
{% if l.verification.details %}{{ rows(l.verification.details) }}{% endif %}
</section>
{% endfor %}
</body></html>
"""


# -- the values of evidence, changes and verification tables (`rows`, `value`) ---------------------
# Python, not template macros: a 100-link page calls them thousands of times, and a macro call cost a
# third of the page's render (py-spy).  They print what the macros did: each text as `{{ x }}`
# prints it (made inert, then escaped), mappings sorted by key as dictsort sorts them (ignoring case).
def _text(value):
    """`{{ value }}`: finalized, then escaped."""
    return markupsafe.escape(_finalize(value))


def _by_key(mapping):
    return sorted(mapping.items(), key=lambda item: item[0].lower() if isinstance(item[0], str) else item[0])


def _field(entry, key):
    """`{{ entry.key }}`: empty when `entry` is not a mapping or has no such key."""
    return _text(entry[key]) if isinstance(entry, Mapping) and key in entry else ""


def _scalar(value):
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return "-" if value is None else _text(value)


def _code(value):
    return f"<code>{_text(_tojson_compact(value))}</code>"


def _listlike(value):
    if isinstance(value, str):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


def _value(value):
    """One value of a table cell: a mapping as "key: value" lines, a list of events as a table, a
    list of texts or of mappings one per line, a list of scalars joined, a scalar as yes/no/-/text."""
    if isinstance(value, Mapping):
        parts = [f"{_text(k)}: {_code(x) if isinstance(x, Mapping) or _listlike(x) else _scalar(x)}" for k, x in _by_key(value)]
        return markupsafe.Markup("<br>".join(parts) if parts else "-")
    if not _listlike(value):
        return markupsafe.Markup(_scalar(value))
    first = value[0] if value and isinstance(value, Sequence) else None
    if isinstance(first, Mapping) and "message" in first:
        body = "".join(f"<tr><td>{_field(e, 'time')}</td><td>{_field(e, 'id')}</td><td>{_field(e, 'message')}</td></tr>" for e in value)
        return markupsafe.Markup(f'<table class="samples"><tr><th>time</th><th>event</th><th>message</th></tr>\n{body}</table>\n')
    if isinstance(first, Mapping) and "text" in first:
        return markupsafe.Markup("<br>".join(_field(e, "text") for e in value))
    if isinstance(first, Mapping):
        return markupsafe.Markup("<br>".join(_code(e) for e in value))
    return markupsafe.Markup(_text(", ".join(str(v) for v in value) if value else "none"))


def _rows(mapping):
    """A mapping as a two-column table, its keys with spaces for underscores."""
    body = "".join(f'<tr><td class="name">{_text(str(k).replace("_", " "))}</td><td>{_value(v)}</td></tr>' for k, v in _by_key(mapping))
    return markupsafe.Markup(f'<table class="kv">{body}</table>\n')


def _tojson_compact(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _svg(pic, caption, uid):
    return markupsafe.Markup(xtopology.svg(pic, caption, uid))


def _finalize(value):
    """Every value printed: text from servers made inert (xcon.mask.inert), then autoescaped."""
    return inert(value) if isinstance(value, str) and not isinstance(value, markupsafe.Markup) else value


_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True,
                          finalize=_finalize)
_ENV.filters["tojson_compact"] = _tojson_compact
_ENV.globals["svg"] = _svg
_ENV.globals["value"] = _value
_ENV.globals["rows"] = _rows
_ENV.globals["timeline_svg"] = lambda timeline, hosts, uid: markupsafe.Markup(xtimeline_svg.svg(timeline, hosts, uid))
_ENV.globals["timeline_text"] = xtimeline.sentences
_ENV.globals["fleet_charts"] = xfleet.overview
_TEMPLATE = _ENV.from_string(HTML_TEMPLATE)


STATUSES = ("error", "unknown", "warning", "ok")  # worst first
SHOWN_SEVERITIES = ("error", "warning", "unknown")


def fleet(links):
    """The fleet view: links grouped by status (after the run, else as found), the codes of their
    findings and their plan (workaround and firewall), largest group first within each status:
    ``{"groups": [{"status", "label", "links": [(index, id), ...]}], "counts": {status: n}}``
    ("96 links: XCON-TRANSPARENCY-REFUSAL, firewall_tunnel through FW1")."""
    groups, counts = {}, {s: 0 for s in STATUSES}
    for index, link in enumerate(links, start=1):
        status = link.get("status_after") or link.get("status") or "unknown"
        counts[status] = counts.get(status, 0) + 1
        codes = tuple(sorted({f["code"] for f in link.get("findings") or [] if f.get("severity") in SHOWN_SEVERITIES}))
        plan = link.get("workaround_chosen") or link.get("recommended_workaround") or "none"
        key = (status, codes, plan, link.get("firewall") or "")
        groups.setdefault(key, []).append((index, link.get("id")))
    out = []
    for (status, codes, plan, firewall), members in groups.items():
        count = f"{len(members)} link{'s' if len(members) != 1 else ''}"
        what = "no change" if plan == "none" else plan + (f" through {firewall}" if firewall else "")
        out.append({"status": status, "links": members, "label": f"{count}: {', '.join(codes) or 'no finding'}, {what}"})
    rank = {s: i for i, s in enumerate(STATUSES)}
    out.sort(key=lambda g: (rank.get(g["status"], 0), -len(g["links"]), g["label"]))
    return {"groups": out, "counts": counts}


def render(report, base, docs):
    """The page for an already masked `report`; `base` prefixes the run's own files, `docs` is the
    folder of the finding pages."""
    return _TEMPLATE.render(r=report, base=base, docs=docs, fleet=fleet(report.get("links") or []), statuses=STATUSES)


# Where `base` goes in a page rendered once for several folders.  No printed value can produce it:
# every text is autoescaped (its "<" becomes "&lt;") and the markup this code builds has no such tag.
_BASE = markupsafe.Markup("<xcon-base/>")


def render_each(report, bases, docs):
    """The page for each of `bases` (the same report in the run's folder and in latest/), rendered
    once: `base` only prefixes the run's own files (the artifacts' links), so the page is the same
    text with each base in its place (a 100-link page takes about 0.25 s to render)."""
    page = render(report, _BASE, docs)
    return [page.replace(_BASE, str(markupsafe.escape(base))) for base in bases]
