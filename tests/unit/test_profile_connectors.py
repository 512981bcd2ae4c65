"""Profiles, connector decode/encode/clone, masking and DN escaping."""
import pytest

from xcon import connectors as c, profile as xprofile
from xcon.profile import ASSUMPTIONS, ASSUMPTION_NOTES, get_profile, property_page_attributes

P = get_profile("5.5")
S = "\u00a7"
DN = "cn=TO-OUTSIDE,cn=Connections,cn=Configuration,ou=INSIDE,o=CONTOSO"


def entry(**extra):
    attrs = {
        "rdn": "TO-OUTSIDE", "cn": "X.400 to Outside", "Admin-Display-Name": "X.400 to Outside (admin)", "Activation-Style": 2,
        "Activation-Schedule": "ff" * 84, "Two-Way-Alternate-Facility": True,
        "N-Address": "3139322e302e322e31", "N-Address-Type": 1, "Gateway-Local-Desig": "EXOUT",
        "Gateway-Local-Cred": "mta-pw", "MTA-Local-Desig": "", "MTA-Local-Cred": "local-pw",
        "Connected-Domains": [f"CONTOSO{S}OUTSIDE{S}1{S}X400:c=US;a= ;p=CONTOSO;o=OUTSIDE;"],
        "Routing-List": ["X400:c=US;a= ;p=CONTOSO;o=OUTSIDE;;3"],
        "Home-MTA": "cn=Microsoft MTA,cn=EXIN,cn=Servers,cn=Configuration,ou=INSIDE,o=CONTOSO",
        "Supporting-Stack": ["cn=TCP (EXIN),cn=EXIN,cn=Servers,cn=Configuration,ou=INSIDE,o=CONTOSO"],
        "Delivery-Mechanism": 3, "T-Selector": "", "Association-Lifetime": 300, "RTS-Window-Size": 5,
    }
    attrs.update(extra)
    return {"dn": DN, "objectClass": ["RFC1006-X400-Link"], "attributes": attrs}


def test_decode_normalized_shape():
    conn = c.decode_connector(entry(), "EXIN", P)
    assert conn["name"] == "TO-OUTSIDE" and conn["site"] == "INSIDE" and conn["organization"] == "CONTOSO"
    assert conn["x500_dn"] == "/O=CONTOSO/OU=INSIDE/CN=CONFIGURATION/CN=CONNECTIONS/CN=TO-OUTSIDE"
    assert conn["schedule"] == "always" and conn["two_way_alternate"] is True
    assert conn["stack_address"] == "192.0.2.1" and conn["address_type"] == "ip"
    assert conn["remote_mta"] == "EXOUT" and conn["remote_password"] == "********"
    assert conn["override"] == {"local_mta_name": "", "local_mta_password": "********"}
    assert conn["cost"] == 1  # min over Connected-Domains (1) and Routing-List (3)
    assert conn["schedule_grid"] == "ff" * 84 and conn["display_name"] == "X.400 to Outside"
    assert conn["attributes"]["Gateway-Local-Cred"] == "********"
    assert conn["attributes"]["MTA-Local-Cred"] == "********"
    assert conn["attributes"]["RTS-Window-Size"] == 5
    assert "mta-pw" not in repr(conn) and "local-pw" not in repr(conn)


@pytest.mark.parametrize("style,name", [(0, "never"), (1, "selected"), (2, "always"), (3, "remote")])
def test_schedule_round_trip(style, name):
    current = entry(**{"Activation-Style": (style + 1) % 4})
    changes = c.encode_changes({"schedule": name}, current, P)
    assert changes == [{"attribute": "Activation-Style", "action": "replace", "values": [style]}]
    applied = entry(**{"Activation-Style": style})
    assert c.decode_connector(applied, "EXIN", P)["schedule"] == name
    assert c.encode_changes({"schedule": name}, applied, P) == []


def test_stack_address_and_type_round_trip():
    changes = c.encode_changes({"stack_address": "exout.outside.example", "address_type": "hostname",
                                "two_way_alternate": True}, entry(), P)
    assert changes == [
        {"attribute": "N-Address", "action": "replace", "values": ["exout.outside.example".encode().hex()]},
        {"attribute": "N-Address-Type", "action": "replace", "values": [0]},
    ]
    applied = entry(**{"N-Address": changes[0]["values"][0], "N-Address-Type": 0})
    conn = c.decode_connector(applied, "EXIN", P)
    assert (conn["stack_address"], conn["address_type"]) == ("exout.outside.example", "hostname")
    with pytest.raises(ValueError):
        c.encode_changes({"stack_address": "x" * 51}, entry(), P)


def test_cost_rewrites_both_lists():
    changes = c.encode_changes({"cost": 99}, entry(), P)
    assert changes == [
        {"attribute": "Connected-Domains", "action": "replace",
         "values": [f"CONTOSO{S}OUTSIDE{S}99{S}X400:c=US;a= ;p=CONTOSO;o=OUTSIDE;"]},
        {"attribute": "Routing-List", "action": "replace", "values": ["X400:c=US;a= ;p=CONTOSO;o=OUTSIDE;;99"]},
    ]
    applied = entry(**{"Connected-Domains": changes[0]["values"], "Routing-List": changes[1]["values"]})
    assert c.decode_connector(applied, "EXIN", P)["cost"] == 99
    assert c.encode_changes({"cost": 99}, applied, P) == []
    with pytest.raises(ValueError):
        c.encode_changes({"cost": 101}, entry(), P)


def test_clone_keeps_everything_but_the_four():
    source = entry()
    attrs = c.clone_attributes(source, P, "TO-OUTSIDE-REVERSE", "Reverse", "198.51.100.10", "ip")
    assert "rdn" not in attrs  # the directory name is set by the RDN of dir_create
    assert attrs["cn"] == "Reverse" and attrs["Admin-Display-Name"] == "Reverse"  # cn = Display-Name on 5.5
    assert attrs["Activation-Style"] == 3
    assert attrs["N-Address"] == "198.51.100.10".encode().hex() and attrs["N-Address-Type"] == 1
    assert attrs["Connected-Domains"] == [f"CONTOSO{S}OUTSIDE{S}99{S}X400:c=US;a= ;p=CONTOSO;o=OUTSIDE;"]
    assert attrs["Routing-List"] == ["X400:c=US;a= ;p=CONTOSO;o=OUTSIDE;;99"]
    changed = {"rdn", "cn", "Admin-Display-Name", "Activation-Style", "N-Address", "N-Address-Type",
               "Connected-Domains", "Routing-List"}
    for name, value in source["attributes"].items():
        if name not in changed and value not in ("", []):
            assert attrs[name] == value, name  # copied verbatim, secrets included (raw entry)
    assert attrs["Gateway-Local-Cred"] == "mta-pw" and attrs["Delivery-Mechanism"] == 3
    params = c.create_params("EXIN", DN, "TO-OUTSIDE-REVERSE", attrs, P)
    assert params["parent"] == "cn=Connections,cn=Configuration,ou=INSIDE,o=CONTOSO"
    assert params["class"] == "RFC1006-X400-Link"


def test_clone_needs_home_mta():
    source = entry()
    del source["attributes"]["Home-MTA"]
    with pytest.raises(ValueError):
        c.clone_attributes(source, P, "R", "R", "h", "hostname")
    attrs = c.clone_attributes(source, P, "R", "R", "h", "hostname", home_mta="cn=Microsoft MTA,...")
    assert attrs["Home-MTA"] == "cn=Microsoft MTA,..."


def test_mask_helper():
    masked = c.mask({"Gateway-Local-Cred": "s", "nested": [{"password": "p", "MTA-Local-Cred": "q"}], "x": 1}, P)
    assert masked == {"Gateway-Local-Cred": "********", "nested": [{"password": "********", "MTA-Local-Cred": "********"}], "x": 1}


@pytest.mark.parametrize("name,escaped", [
    ("TO-OUTSIDE", "TO-OUTSIDE"),
    ("Smith, John", "Smith\\, John"),
    ("A+B", "A\\+B"),
    ('Say "hi"', 'Say \\"hi\\"'),
    (" lead and trail ", "\\ lead and trail\\ "),
    ("#hash", "\\#hash"),
    ("a=b;c<d>e\\f", "a\\=b\\;c\\<d\\>e\\\\f"),
    ("Zürich Süd", "Zürich Süd"),
])
def test_dn_escaping_round_trip(name, escaped):
    assert c.escape_rdn_value(name) == escaped
    assert c.unescape_rdn_value(escaped) == name
    dn = P["dn"]["connector"].format(name=c.escape_rdn_value(name), site=c.escape_rdn_value("IN, SIDE"), org="CONTOSO")
    assert dn == f"cn={escaped},cn=Connections,cn=Configuration,ou=IN\\, SIDE,o=CONTOSO"
    parts = c.dn_parts(dn)
    assert (parts["name"], parts["site"], parts["organization"]) == (name, "IN, SIDE", "CONTOSO")
    assert parts["parent"] == "cn=Connections,cn=Configuration,ou=IN\\, SIDE,o=CONTOSO"
    decoded = c.decode_connector({"dn": dn, "attributes": {}}, "EXIN", P)
    assert decoded["name"] == name and decoded["x500_dn"].endswith("/CN=" + name.upper())


def test_hex_escapes_unescape():
    assert c.unescape_rdn_value("Z\\C3\\BCrich") == "Zürich"


def test_profiles_and_assumptions():
    assert set(ASSUMPTIONS) == set(ASSUMPTION_NOTES)
    for version, access in (("4.0", "none"), ("5.0", "read"), ("5.5", "read-write")):
        older = get_profile(version)
        assert older["version"] == version and older["directory"]["ldap"] == access
        # the same directory schema and MTA lineage as 5.5
        assert older["attributes"]["schedule"]["name"] == "Activation-Style"
        assert "Association-Lifetime" in property_page_attributes(older) and older["service"] == "MSExchangeMTA"
    assert [xprofile.can_write_directory(get_profile(v)) for v in ("4.0", "5.0", "5.5")] == [False, False, True]
    custom = get_profile("5.5", {"cost_max": 200, "assumptions": {"counter_instance": "display_name"}})
    assert custom["assumptions"]["cost_max"] == 200 and custom["assumptions"]["counter_instance"] == "display_name"
    assert get_profile("5.5")["assumptions"]["cost_max"] == 100  # overrides never leak
    assert c.encode_changes({"cost": 150}, entry(), custom)
    for gone in ("2000", "2003", "2010"):   # the KB covers 4.0-5.5 only
        with pytest.raises(ValueError):
            get_profile(gone)
    with pytest.raises(ValueError):
        get_profile("5.5", {"assumptions": {"no_such": 1}})


def test_connector_search_names_every_attribute():
    from xcon import gather

    params = gather.connector_search_op("EXIN", P, with_secrets=True)["params"]
    assert params["classes"] == ["RFC1006-X400-Link"]
    for name in ("Activation-Style", "N-Address", "Connected-Domains", "Routing-List", "Gateway-Local-Cred", "Home-MTA"):
        assert name in params["attributes"]


def test_schedule_times_high_bit_first_from_sunday_gmt():
    # 84 bytes, one byte per two hours, high bit first, from Sunday 00:00 GMT
    grid = bytearray(84)
    grid[0] = 0x80                    # Sunday 00:00-00:15
    grid[11], grid[12] = 0x0F, 0xFF   # Sunday 23:00 through Monday 02:00
    grid[83] = 0x01                   # the last quarter hour of Saturday
    assert [t["text"] for t in c.schedule_times(bytes(grid).hex())] == [
        "Sunday 00:00-00:15 GMT", "Sunday 23:00 - Monday 02:00 GMT", "Saturday 23:45-24:00 GMT"]
    assert c.schedule_times("ff" * 84) == [{"day": "Sunday", "start": "00:00", "end": "24:00", "text": "the whole week"}]
    assert c.schedule_times("00" * 84) == [] and c.schedule_times("ff" * 83) is None and c.schedule_times("") is None
    assert c.decode_connector(entry(), "EXIN", P)["schedule_times"][0]["text"] == "the whole week"


@pytest.mark.parametrize("address,kind", [
    ("192.0.2.1", "ip"), ("2001:db8::1", "ip"), ("::ffff:192.0.2.1", "ip"),
    ("10.0.0.300", "hostname"), ("1.2.3", "hostname"), ("exout.outside.example", "hostname"), ("EXOUT", "hostname"),
    ("", "ip"), (None, "ip"),
])
def test_guess_address_type_is_the_live_code(address, kind):
    # the one used by xcon_connector (the dead copy connectors.infer_address_type is gone)
    from xcon.actions.connector import guess_address_type

    assert guess_address_type(address) == kind
    assert not hasattr(c, "infer_address_type")


def test_restart_required_is_the_profiles_answer():
    """xcon_connector and the plan report what profile.restart_required says (they hard-coded True)."""
    live = get_profile("5.5", {"changes_apply_live": True})
    schedule = {"op": "dir_modify", "params": {"changes": c.encode_changes({"schedule": "never"}, entry(), P)}}
    stack = {"op": "dir_modify", "params": {"changes": c.encode_changes({"stack_address": "exout.example"}, entry(), P)}}
    assert c.op_restart_required(schedule, P) is True and c.op_restart_required(schedule, live) is False
    assert c.op_restart_required(stack, live) is True
    assert c.op_restart_required({"op": "dir_create", "params": {}}, live) is True
