"""The connector search (issue 18, defect 4): paged, scoped to the server's site's Connections
container, and an answer that may have been cut at the directory's size limit is never complete."""
from __future__ import annotations

from xcon import gather
from xcon.ops import OpResult

PROFILE = gather.get_profile("5.5")


def test_the_search_is_paged_and_scoped_to_the_site():
    op = gather.connector_search_op("EXIN", PROFILE, organization="Contoso, Ltd", site="INSIDE")
    params = op["params"]
    assert params["page_size"] == PROFILE["assumptions"]["ldap_size_limit"] == 100
    assert params["base"] == "cn=Connections,cn=Configuration,ou=INSIDE,o=Contoso\\, Ltd"
    assert params["scope"] == "onelevel"
    # without a site: the organisation, paged all the same
    params = gather.connector_search_op("EXIN", PROFILE, organization="CONTOSO")["params"]
    assert (params["base"], params["scope"], params["page_size"]) == ("o=CONTOSO", "subtree", 100)


def _answer(count):
    return OpResult(id="connectors", ok=True, data={"entries": [{"dn": f"cn=C{i}"} for i in range(count)]})


def test_an_answer_of_exactly_the_limit_may_be_short_and_is_refused():
    assert gather.search_capped(_answer(100), PROFILE) and "100" in gather.search_capped(_answer(100), PROFILE)
    assert gather.search_capped(_answer(99), PROFILE) is None
    assert gather.search_capped(_answer(150), PROFILE) is None          # paging honoured: more than the cap
    wider = gather.get_profile("5.5", {"assumptions": {"ldap_size_limit": 500}})
    assert gather.search_capped(_answer(100), wider) is None


# -- octet strings travel typed (issue 18, defect 3) --------------------------------------------------
def test_octet_values_are_typed_and_checked_before_anything_is_sent():
    import pytest

    modify = {"id": "write", "op": "dir_modify", "params": {"server": "EXIN", "dn": "cn=X", "changes": [
        {"attribute": "N-Address", "action": "replace", "values": ["3139322e302e322e31"]},
        {"attribute": "Activation-Style", "action": "replace", "values": [2]}]}}
    typed = gather.typed_op(modify, PROFILE)
    assert [c.get("octets") for c in typed["params"]["changes"]] == [True, None]
    create = {"id": "write", "op": "dir_create", "params": {"server": "EXIN", "parent": "cn=Connections", "cn": "R",
                                                            "attributes": {"N-Address": "31", "Deliv-Ext-Cont-Types": ["2a"],
                                                                           "cn": "R"}}}
    # Deliv-Ext-Cont-Types is not in the profile: octet because the directory answered it as bytes
    assert gather.typed_op(create, PROFILE, ["Deliv-Ext-Cont-Types"])["params"]["octets"] == ["N-Address", "Deliv-Ext-Cont-Types"]
    with pytest.raises(ValueError, match="N-Address is an octet string"):
        gather.typed_op(dict(modify, params=dict(modify["params"], changes=[
            {"attribute": "N-Address", "action": "replace", "values": ["192.0.2.1"]}])), PROFILE)
