"""The guided change record for the Exchange Administrator program (pure).

A connector change for an Exchange 4.0 or 5.0 server whose site has no Exchange 5.5 server cannot be
made over LDAP (Platform SDK, "The Exchange Server Directory": only 5.5 takes LDAP writes, and an
object is changed in its own site). The operator makes it in the Exchange Administrator program,
connected to the server itself; this module renders what to do there: the connector's property
pages and the exact values (page names: Q165111, Q159264, Q152934, Q196381), as one record with a
machine-readable part (``pages``) and the operator's text. The run then waits for the operator's
confirmation (the same hand-off as the firewall records: xcon.firewall.operator_handoff) and
verifies by the MTA's behaviour, never by trusting the confirmation.

A change is one planned ``xcon_connector`` call's arguments: ``name``, ``clone_from`` (create),
``state`` absent (delete), ``schedule``, ``stack_address``, ``address_type``, ``cost``,
``two_way_alternate``, ``display_name``.
"""

from __future__ import annotations

# The Schedule page's four choices (Q159264, Q196381); the Stack page's two address kinds.
SCHEDULE_CHOICES = {"never": "Never", "remote": "Remote initiated", "selected": "Selected times", "always": "Always"}
ADDRESS_CHOICES = {"ip": "IP address", "hostname": "Remote host name"}
# Which navigation the program's menus take is not in the articles: stated as such in every record.
MENU_ASSUMPTION = ("Menu names (File > New Other > X.400 Connector, File > Properties) are those of the Exchange "
                   "Administrator program as commonly described; the property pages and their fields are the KB's.")


def _pages(change):
    pages = []
    general = []
    if change.get("clone_from"):
        general.append({"field": "Directory name", "value": change["name"]})
    if change.get("display_name"):
        general.append({"field": "Display name", "value": change["display_name"]})
    if general:
        pages.append({"page": "General", "fields": general})
    if change.get("schedule"):
        pages.append({"page": "Schedule", "fields": [{"field": "Schedule", "value": SCHEDULE_CHOICES[change["schedule"]]}]})
    if change.get("stack_address"):
        kind = ADDRESS_CHOICES.get(change.get("address_type") or "ip", "IP address")
        pages.append({"page": "Stack", "fields": [{"field": "Address", "value": f"{kind}: {change['stack_address']}"}]})
    if change.get("cost") is not None:
        pages.append({"page": "Connected Sites", "fields": [{"field": "Cost (every connected site)", "value": str(change["cost"])}]})
    if change.get("two_way_alternate") is not None:
        pages.append({"page": "Advanced", "fields": [{"field": "Two-way alternate",
                                                      "value": "checked" if change["two_way_alternate"] else "cleared"}]})
    return pages


def render(change, server, site, organization, run_id):
    """The record for one planned connector change of `server` (site `site`)."""
    name = change["name"]
    if change.get("state") == "absent":
        action = "delete"
    elif change.get("clone_from"):
        action = "create"
    else:
        action = "modify"
    record = {"version": 1, "kind": "exchange-administrator", "run_id": run_id, "server": server, "site": site,
              "organization": organization, "connect_to": server, "action": action, "connector": name,
              "clone_of": change.get("clone_from"), "pages": _pages(change) if action != "delete" else [],
              "assumption": MENU_ASSUMPTION}
    record["instructions"] = instructions(record)
    return record


def instructions(record):
    """The operator's text: numbered steps, each page and value exact."""
    where = f"{record['organization'] or 'the organisation'} > {record['site']} > Configuration > Connections"
    lines = [f"Exchange Administrator program: change record for connector {record['connector']} of {record['server']} "
             f"(run {record['run_id']}).",
             f"1. Start the Exchange Administrator program and connect to server {record['connect_to']} (its own directory; "
             "the change replicates to the other servers of the site by itself).",
             f"2. Open {where}."]
    step = 3
    if record["action"] == "create":
        lines.append(f"{step}. Select connector {record['clone_of']}, note every property page, then create a new TCP X.400 "
                     f"connector (File > New Other > X.400 Connector) and fill every page exactly as on {record['clone_of']}, "
                     "except:")
    elif record["action"] == "modify":
        lines.append(f"{step}. Open the properties of connector {record['connector']} (File > Properties) and set:")
    else:
        lines.append(f"{step}. Select connector {record['connector']} and delete it (Edit > Delete); confirm.")
    for page in record["pages"]:
        for field in page["fields"]:
            lines.append(f"   - {page['page']} page, {field['field']}: {field['value']}")
    step += 1
    if record["action"] != "delete":
        lines.append(f"{step}. Click OK. Do not restart the MTA yourself: the run restarts {record['server']}'s MTA "
                     "and then proves the change by mail flow.")
    lines.append(f"Note: {record['assumption']}")
    return "\n".join(lines)
