"""Issue 18, defect 6: the audit's event read always stops at the evidence window, and the window is
on the SERVER's clock. The lab plays a busy Application log (`event_log_size` entries of other
sources over the week before start) and counts the entries event_query walks; and a server whose
clock is behind its management host's (`clock_offset_minutes`): the op's `now` is the server's
(NetRemoteTOD), and its events are stamped with it."""
from __future__ import annotations

from wire_helpers import PASSWORD, USER, topology, wire
from xcon import gather

SIZE = 20000
WINDOW = 120


def test_the_audit_never_walks_the_whole_application_log(tmp_path):
    data = topology("kb.yml")
    data["servers"]["EXIN"]["event_log_size"] = SIZE
    with wire(data, "EXIN", tmp_path) as (lab, client):
        lab.advance(30)                                   # refusals of the KB fault in the log
        profile = gather.get_profile("5.5")
        results = gather.run(client, gather.audit_ops("EXIN", profile))   # the default window: 120 minutes
        assert results["events"].ok, results["events"].message
        evidence = gather.decode_evidence(results, "EXIN", WINDOW)
        walked = lab.snapshot()["servers"]["EXIN"]["event_log_reads"]
    assert evidence["counts"]["1293"] > 0                 # the evidence is all there
    # ~2 entries of other sources a minute: a two-hour window walks a few hundred, never 20000
    assert walked < SIZE * WINDOW / (7 * 24 * 60) * 1.5 + 200, walked


def test_the_window_is_on_the_servers_clock_not_the_management_hosts(tmp_path):
    data = topology("mgmt.yml")
    data["servers"]["EXIN"]["clock_offset_minutes"] = -180     # EXIN's clock three hours behind MGMT1's
    with wire(data, "MGMT1", tmp_path) as (lab, client):
        lab.advance(30)
        client.target_credentials = (USER, PASSWORD)
        evidence = gather.read_evidence(client, "EXIN", "5.5", 60)
        lab_now = lab.now()
    assert evidence["now"] < lab_now                      # the server's now, not MGMT1's
    assert evidence["counts"]["1293"] > 0, evidence["counts"]    # its last hour's refusals are evidence
