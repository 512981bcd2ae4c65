"""First contact with a real Windows host (issue 18): the on-host scripts against a lab that plays
Windows' limits and failures, not only the happy path. Each test starts from a stock topology,
changes only the Windows behaviour it is about, and runs the playbook as an operator would."""

from __future__ import annotations

from test_real_world import topology


def _fix(lab, path, workaround="reverse_connector", minutes=30, **extra):
    lab.up(path)
    lab.advance(minutes)
    run = lab.playbook(extra=dict(extra, xcon_workaround=workaround))
    (link,) = lab.report()["links"]
    return link, run


# -- defect 1: a compensating MTA restart ----------------------------------------------------------
def test_mta_restart_with_a_slow_dependent_ends_with_every_service_running(lab, tmp_path):
    # EXIN's MTA takes 45 s to stop and an Internet Mail Service that depends on it (Q244035) takes
    # 45 s too. ServiceController.Stop() would stop the IMS itself and give it 30 s (then throw,
    # leaving it stopped and the MTA running, the change not activated); the restart stops the IMS
    # and the MTA within the op's own timeout and starts both again.
    def change(data):
        data["servers"]["EXIN"].update(mta_stop_seconds=45, services=[
            {"name": "MSExchangeIMC", "depends_on": ["MSExchangeMTA"], "stop_seconds": 45, "running": True},
            {"name": "MSExchangeFAX", "depends_on": ["MSExchangeMTA"], "stop_seconds": 2, "running": False}])

    link, run = _fix(lab, topology(tmp_path, "kb.yml", change))
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert link["verification"]["state"] == "passed", link["verification"]
    services = lab.snapshot()["servers"]["EXIN"]["service"]
    assert services == {"MSExchangeMTA": "Running", "MSExchangeIMC": "Running", "MSExchangeFAX": "Stopped",
                        "restarts": 1}, services
    restart = link["mta_restarts"]["EXIN"]
    assert restart["restarted"] and restart["dependents"] == ["MSExchangeIMC"], restart
    assert restart["started"] == ["MSExchangeMTA", "MSExchangeIMC"] and restart["not_running"] == []
    assert "MTA restart on EXIN: MSExchangeMTA restarted, dependent service(s) started again: MSExchangeIMC" \
        in " ".join(run.stdout.split())
