"""Where a server's connectors are read and written (xcon.directory_route): its own LDAP on 5.5 and
5.0 (read only), another replica for 4.0 (the same site first), writes only through a 5.5 server of
the server's own site, else the Exchange Administrator program."""
from xcon import directory_route as route


def servers(**versions_and_sites):
    return {name: {"server": name, "version": version, "site": site, "organization": "CONTOSO", "directory_host": None}
            for name, (version, site) in versions_and_sites.items()}


def test_own_ldap_where_there_is_one():
    inv = servers(EXIN=("5.5", "INSIDE"), EXOUT=("5.0", "OUTSIDE"))
    assert route.read_source("EXIN", inv)["own"] and route.read_source("EXOUT", inv)["own"]
    assert route.read_source("EXOUT", inv)["version"] == "5.0"
    assert route.write_source("EXIN", inv) == "EXIN"
    assert route.write_source("EXOUT", inv) is None          # 5.0 takes no write, no 5.5 in its site


def test_a_40_server_is_read_from_a_replica_of_its_site_first():
    inv = servers(EXIN=("4.0", "INSIDE"), EXIN50=("5.0", "INSIDE"), EXIN55=("5.5", "INSIDE"), EXOUT=("5.5", "OUTSIDE"))
    read = route.read_source("EXIN", inv)
    assert (read["host"], read["same_site"], read["own"]) == ("EXIN55", True, False)
    assert "about 5 minutes" in read["staleness"]
    del inv["EXIN55"], inv["EXIN50"]
    read = route.read_source("EXIN", inv)
    assert read["host"] == "EXOUT" and not read["same_site"] and "schedule" in read["staleness"]
    assert route.write_source("EXIN", inv) is None            # another site's 5.5 never takes the write


def test_the_named_directory_host_wins_and_is_checked():
    inv = servers(EXIN=("4.0", "INSIDE"), EXIN55=("5.5", "INSIDE"), EXIN2=("5.5", "INSIDE"))
    inv["EXIN"]["directory_host"] = "EXIN2"
    assert route.read_source("EXIN", inv)["host"] == "EXIN2" and route.write_source("EXIN", inv) == "EXIN2"
    inv["EXIN"]["directory_host"] = "NOPE"
    assert route.read_source("EXIN", inv)["host"] is None
    alone = servers(EXIN=("4.0", "INSIDE"), EXOLD=("4.0", "OUTSIDE"))
    assert "xcon_directory_host" in route.read_source("EXIN", alone)["reason"]


def test_write_note_says_where_and_the_replication_wait():
    inv = servers(EXIN=("4.0", "INSIDE"), EXIN55=("5.5", "INSIDE"), EXOUT=("5.0", "OUTSIDE"))
    note = route.write_note("EXIN", inv)
    assert note["written_via"] == "EXIN55" and "replicated to EXIN" in note["replication"]
    assert route.write_note("EXIN55", inv) == {"written_via": "EXIN55", "own": True}
    assert route.write_note("EXOUT", inv)["written_via"] is None
    assert route.write_note("localhost", inv) is None
