"""The lab plays the Windows host's own limits and failures (issue 18), written from the sources
(docs/facts.md): .NET 2.0's ServiceController and the Win32 service API."""
from __future__ import annotations

import datetime as _dt

import pytest

from xconlab_lab.services import ServiceControlError, ServiceManager, ServiceTimeout, restart_compensating

T0 = _dt.datetime(2026, 1, 5, 9, 0)


def manager(imc_stop=45, mta_stop=45, fax_running=False):
    heard = []
    specs = [{"name": "MSExchangeDS"}, {"name": "MSExchangeMTA", "depends_on": ["MSExchangeDS"], "stop_seconds": mta_stop},
             {"name": "MSExchangeIMC", "depends_on": ["MSExchangeMTA"], "stop_seconds": imc_stop},
             {"name": "MSExchangeFAX", "depends_on": ["MSExchangeIMC"], "stop_seconds": 1, "running": fax_running}]
    scm = ServiceManager("EXIN", specs, T0, lambda *change: heard.append(change))
    return scm, heard


def test_dependent_services_are_every_dependent_in_stop_order():
    scm, _ = manager()
    assert scm.dependents("MSExchangeDS") == ["MSExchangeFAX", "MSExchangeIMC", "MSExchangeMTA"]


def test_dotnet_stop_waits_30_seconds_per_dependent_then_throws():
    # ServiceController.Stop(): the dependent's own Stop(), then WaitForStatus(Stopped, 30 s).
    scm, _ = manager(imc_stop=45)
    with pytest.raises(ServiceTimeout):
        scm.dotnet_stop("MSExchangeMTA")
    assert scm.status("MSExchangeMTA") == "Running" and scm.status("MSExchangeIMC") == "StopPending"
    scm.settle(T0 + _dt.timedelta(seconds=46))
    assert scm.status("MSExchangeIMC") == "Stopped"          # nothing starts it again


def test_win32_service_errors():
    scm, _ = manager()
    with pytest.raises(ServiceControlError) as raised:
        scm.control_stop("MSExchangeMTA")                        # the IMS still runs
    assert raised.value.code == 1051
    with pytest.raises(ServiceControlError) as raised:
        scm.start("MSExchangeMTA")
    assert raised.value.code == 1056
    with pytest.raises(ServiceControlError) as raised:
        scm.control_stop("MSExchangeFAX")
    assert raised.value.code == 1062


def test_compensating_restart_brings_back_what_ran_and_says_what_timed_out():
    scm, heard = manager(imc_stop=45, mta_stop=45)
    done = restart_compensating(scm, "MSExchangeMTA", 300)
    assert done["restarted"] and done["not_running"] == [] and done["started"] == ["MSExchangeMTA", "MSExchangeIMC"]
    assert [(n, s) for n, s, _ in heard] == [("MSExchangeIMC", "Stopped"), ("MSExchangeMTA", "Stopped"),
                                            ("MSExchangeMTA", "Running"), ("MSExchangeIMC", "Running")]
    assert scm.status("MSExchangeFAX") == "Stopped"               # was not running: not started
    # the stops share the op's timeout: 60 s is not enough for 45 + 45 s; the MTA is waited for and started
    scm, _ = manager(imc_stop=45, mta_stop=45)
    done = restart_compensating(scm, "MSExchangeMTA", 60)
    assert done["timed_out"] == ["MSExchangeMTA"] and done["restarted"] and done["not_running"] == []


def test_an_unpaged_search_is_cut_at_the_size_limit_without_an_error():
    # .NET's SearchResultCollection enumerator takes ADSI's 0x80072023 (size limit exceeded) for the
    # end of the rows: a short list; with PageSize (the paged-results control) every entry comes back.
    import os

    import yaml

    from xconlab_lab.model import Lab

    with open(os.path.join(os.path.dirname(__file__), "..", "lab", "topologies", "kb.yml"), encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    data["servers"]["EXIN"]["ldap_size_limit"] = 3
    data["servers"]["EXIN"]["connectors"] += [dict(data["servers"]["EXIN"]["connectors"][0], name=f"EXTRA-{i}")
                                              for i in range(4)]
    lab = Lab.from_dict(data)
    search = {"server": "EXIN", "base": "cn=Connections,cn=Configuration,ou=INSIDE,o=CONTOSO", "scope": "onelevel",
              "classes": ["RFC1006-X400-Link"], "attributes": ["rdn"]}
    assert len(lab.execute_op("EXIN", "CONTOSO\\xcon", "dir_search", search)["entries"]) == 3
    assert len(lab.execute_op("EXIN", "CONTOSO\\xcon", "dir_search", dict(search, page_size=2))["entries"]) == 5


def _kb(**server_keys):
    import os

    import yaml

    from xconlab_lab.model import Lab

    with open(os.path.join(os.path.dirname(__file__), "..", "lab", "topologies", "kb.yml"), encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    data["servers"]["EXIN"].update(server_keys)
    return Lab.from_dict(data)


def _n_address(lab):
    (entry,) = [e for e in lab.snapshot()["servers"]["EXIN"]["directory"] if e["dn"].startswith("cn=TO-OUTSIDE,")]
    return entry["attributes"]["N-Address"]


MODIFY = {"server": "EXIN", "dn": "cn=TO-OUTSIDE,cn=Connections,cn=Configuration,ou=INSIDE,o=CONTOSO"}


def test_without_the_schema_an_untyped_octet_value_is_stored_as_its_text():
    # ADSI that cannot read LDAP://SERVER/schema sends the string: the directory stores its bytes
    lab = _kb(adsi_schema="unavailable")
    change = {"attribute": "N-Address", "action": "replace", "values": ["3139382e35312e3130302e3130"]}
    lab.execute_op("EXIN", "CONTOSO\\xcon", "dir_modify", dict(MODIFY, changes=[change]))
    assert _n_address(lab) == "3139382e35312e3130302e3130"                 # hex text, silently
    lab.execute_op("EXIN", "CONTOSO\\xcon", "dir_modify", dict(MODIFY, changes=[dict(change, octets=True)]))
    assert _n_address(lab) == "198.51.100.10"                               # typed: the bytes


def test_a_typed_value_that_is_not_hex_is_refused_and_nothing_is_written():
    from xconlab_lab.model import OpError

    lab = _kb(adsi_schema="unavailable")
    before = _n_address(lab)
    changes = [{"attribute": "Activation-Style", "action": "replace", "values": [0]},
               {"attribute": "N-Address", "action": "replace", "values": ["192.0.2.1"], "octets": True}]
    with pytest.raises(OpError) as raised:
        lab.execute_op("EXIN", "CONTOSO\\xcon", "dir_modify", dict(MODIFY, changes=changes))
    assert raised.value.category == "InvalidSyntax"
    assert _n_address(lab) == before
