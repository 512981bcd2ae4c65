"""Issue 18, defect 7, the script's side: an empty dn / parent on a write op is refused by the
runner (Get-XconParam -Required refuses empty text) before ADSI binds LDAP://SERVER, the server's
root; the controller refuses it first (tests/unit/test_json_contract.py), so the request here is
built by hand, as an older or broken controller would send it, over real WS-Management."""
from __future__ import annotations

import json

import pytest

from wire_helpers import topology, wire
from xcon import ops

CONNECTOR = "cn=TO-OUTSIDE,cn=Connections,cn=Configuration,ou=INSIDE,o=CONTOSO"


def _send(client, op, params):
    """One op, sent without the controller's checks."""
    parts = [ops._read_script(ops.RUNNER)] + [ops._read_script(n) for n in ops.library_files()]
    parts += [ops._read_script(f"op_{op}.ps1"),
              json.dumps({"version": 1, "stop_on_error": True, "ops": [{"id": "1", "op": op, "params": params}]})]
    rc, out, err = client.run(ops.command_line(), ops.SEPARATOR.join(parts).encode("ascii"))
    (result,) = ops.parse_output(rc, out, err)
    return result


@pytest.mark.parametrize("op,params", [
    ("dir_modify", {"server": "EXIN", "dn": "", "changes": [{"attribute": "Activation-Style", "values": [0]}]}),
    ("dir_delete", {"server": "EXIN", "dn": " "}),
    ("dir_create", {"server": "EXIN", "parent": "", "cn": "X", "class": "RFC1006-X400-Link", "attributes": {}}),
])
def test_an_empty_dn_on_a_write_is_refused_by_the_script(tmp_path, op, params):
    with wire(topology("kb.yml"), "EXIN", tmp_path) as (lab, client):
        before = lab.snapshot()["servers"]["EXIN"]["directory"]
        result = _send(client, op, params)
        after = lab.snapshot()["servers"]["EXIN"]["directory"]
    assert not result.ok and result.error_category == "InvalidParameter", result
    assert "is required" in result.message
    assert after == before
    with pytest.raises(ValueError):                       # and the controller never sends it
        ops.build_request([{"op": op, "params": params}])


def test_a_modify_of_a_named_connector_still_goes_through(tmp_path):
    with wire(topology("kb.yml"), "EXIN", tmp_path) as (_lab, client):
        result = _send(client, "dir_modify", {"server": "EXIN", "dn": CONNECTOR, "changes": [
            {"attribute": "Open-Retry-Interval", "action": "replace", "values": [60]}]})
    assert result.ok, result
