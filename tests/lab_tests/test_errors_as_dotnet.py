"""Issue 18, defect 5: failures arrive as .NET 2.0 raises them, and the controller decides what they
mean. Through the management host MGMT1 (NTLM: the second hop is anonymous), over real WS-Management
to the lab: the event log's denial is an InvalidOperationException with a Win32Exception (5) inside,
the registry's a SecurityException, the counters' an UnauthorizedAccessException; each must be
AccessDenied (so the second-hop diagnosis fires), not OperationFailed. With explicit target
credentials, WNetAddConnection2's errors are mapped per code: 1326 AccessDenied, 53 unreachable,
1219 (a session as another account exists) its own error and never success."""
from __future__ import annotations

import pytest

from wire_helpers import PASSWORD, USER, topology, wire
from xcon import errors as xerr
from xcon import ops
from xconlab_lab import schema

KEY = "SYSTEM\\CurrentControlSet\\Services\\MSExchangeMTA\\Parameters"
READS = {
    "event_query": {"server": "EXIN", "log": "Application", "source": "MSExchangeMTA", "since": "-PT60M"},
    "reg_read": {"server": "EXIN", "key": KEY, "names": ["RFC1006 Port Number"]},
    "perf_counters": {"server": "EXIN", "paths": ["\\\\EXIN\\MSExchangeMTA\\Work Queue Length"]},
    "service": {"server": "EXIN", "name": "MSExchangeMTA", "action": "query"},
}


@pytest.fixture
def mgmt(tmp_path, request):
    """MGMT1 of mgmt.yml behind a real WS-Management listener (NTLM), the lab's runner twin behind it."""
    data = topology("mgmt.yml")
    data["management_hosts"]["MGMT1"].update(getattr(request, "param", {}))
    with wire(data, "MGMT1", tmp_path) as (_lab, client):
        yield client


def _run(client, op, params):
    (result,) = ops.run_ops(client, [{"op": op, "params": params}])
    assert not result.ok
    return result


@pytest.mark.parametrize("op", sorted(READS))
def test_anonymous_second_hop_denials_are_access_denied(mgmt, op):
    result = _run(mgmt, op, READS[op])
    assert result.error_category == "AccessDenied", (result.error_type, result.hresult, result.message)
    with pytest.raises(ops.OpAccessDenied) as info:
        result.raise_for_error()
    assert xerr.error_code(info.value) == xerr.ACCESS_DENIED
    expected = {"event_query": ("System.ComponentModel.Win32Exception", 5),
                "reg_read": ("System.Security.SecurityException", None),
                "perf_counters": ("System.UnauthorizedAccessException", None)}
    if op in expected:
        assert (result.error_type, result.native_error) == expected[op]


def test_wnetaddconnection2_errors_mapped_per_code(mgmt):
    mgmt.target_credentials = ("CONTOSO\\xcon", "wrong")
    result = _run(mgmt, "event_query", READS["event_query"])
    assert (result.native_error, result.error_category) == (1326, "AccessDenied")
    mgmt.target_credentials = (USER, PASSWORD)
    result = _run(mgmt, "reg_read", dict(READS["reg_read"], server="EXOUT"))   # not reachable from MGMT1
    assert (result.native_error, result.error_category) == (53, "ServerUnavailable")
    with pytest.raises(ops.OpUnreachable) as info:
        result.raise_for_error()
    assert xerr.error_code(info.value) == xerr.UNREACHABLE


@pytest.mark.parametrize("mgmt", [{"ipc_sessions": {"EXIN": "CONTOSO\\backup"}}], indirect=True)
def test_a_session_as_another_account_is_an_error_never_success(mgmt):
    mgmt.target_credentials = (USER, PASSWORD)
    result = _run(mgmt, "reg_read", READS["reg_read"])
    assert (result.native_error, result.error_category) == (1219, xerr.CREDENTIAL_CONFLICT)
    with pytest.raises(ops.OpFailed, match="another account"):
        result.raise_for_error()


def test_every_lab_category_is_recovered_from_what_the_runner_reports():
    # The lab's directory failures carry only an HRESULT on the wire: the controller's mapping
    # must give back each category the lab meant.
    for category, hresult in schema.HRESULTS.items():
        assert xerr.op_category({"hresult": hresult, "type": "System.Runtime.InteropServices.COMException"}) == category
    assert xerr.op_category({"hresult": "0x80131500", "type": "System.Exception"}) == "OperationFailed"
    assert xerr.op_category({"hresult": "0x80004005", "native_error": 1722}) == "ServerUnavailable"
    assert xerr.op_category({"hresult": "0x80004005", "native_error": 67}) == "ServerUnavailable"
