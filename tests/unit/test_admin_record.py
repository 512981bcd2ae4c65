"""The Exchange Administrator change record (xcon.admin_record): exact pages and values per change."""
from xcon import admin_record


def test_reverse_connector_record_names_every_changed_page():
    change = {"name": "TO-OUTSIDE-REVERSE", "clone_from": "TO-OUTSIDE", "schedule": "remote",
              "stack_address": "198.51.100.10", "address_type": "ip", "cost": 99, "display_name": "X.400 reverse"}
    record = admin_record.render(change, "EXIN", "INSIDE", "CONTOSO", "RUN1")
    assert (record["action"], record["connect_to"], record["clone_of"]) == ("create", "EXIN", "TO-OUTSIDE")
    pages = {p["page"]: {f["field"]: f["value"] for f in p["fields"]} for p in record["pages"]}
    assert pages == {"General": {"Directory name": "TO-OUTSIDE-REVERSE", "Display name": "X.400 reverse"},
                     "Schedule": {"Schedule": "Remote initiated"},
                     "Stack": {"Address": "IP address: 198.51.100.10"},
                     "Connected Sites": {"Cost (every connected site)": "99"}}
    text = record["instructions"]
    assert "connect to server EXIN" in text and "exactly as on TO-OUTSIDE" in text and "CONTOSO > INSIDE" in text
    assert "Schedule page, Schedule: Remote initiated" in text and record["assumption"] in text


def test_modify_and_delete_records():
    modify = admin_record.render({"name": "TO-OUTSIDE", "two_way_alternate": True, "stack_address": "exout.example",
                                  "address_type": "hostname"}, "EXIN", "INSIDE", "CONTOSO", "RUN2")
    assert modify["action"] == "modify"
    assert {"page": "Stack", "fields": [{"field": "Address", "value": "Remote host name: exout.example"}]} in modify["pages"]
    assert {"page": "Advanced", "fields": [{"field": "Two-way alternate", "value": "checked"}]} in modify["pages"]
    delete = admin_record.render({"name": "TO-OUTSIDE-REVERSE", "state": "absent"}, "EXIN", "INSIDE", "CONTOSO", "RUN3")
    assert delete["action"] == "delete" and delete["pages"] == [] and "delete it" in delete["instructions"]
