"""A server's service control manager as Windows and .NET 2.0's ServiceController show it (the
`service` op's twin plays its script's calls on this; docs/facts.md "Services" cites the sources).

Windows (Win32 service API): ``ControlService(STOP)`` on a stopped service fails with 1062
ERROR_SERVICE_NOT_ACTIVE, on a pending one with 1061 ERROR_SERVICE_CANNOT_ACCEPT_CTRL, and while a
dependent is active with 1051 ERROR_DEPENDENT_SERVICES_RUNNING; ``StartService`` on a service that is
not stopped fails with 1056 ERROR_SERVICE_ALREADY_RUNNING and starts the services it depends on
first; ``EnumDependentServices`` lists every service that depends on it, directly or not, in reverse
start order (the order to stop them in).

.NET 2.0 (reference source, System.ServiceProcess/ServiceController.cs): ``DependentServices`` is
that list; ``Stop()`` first walks it and, for each dependent not Stopped, calls its ``Stop()`` and
``WaitForStatus(Stopped, 30 s)``, then sends the stop control (a failure is an
InvalidOperationException around the Win32Exception); ``WaitForStatus(status, timeout)`` polls every
250 ms and throws System.ServiceProcess.TimeoutException once the timeout has passed.

Time: a stop or start takes the service's ``stop_seconds`` / ``start_seconds`` of emulated time; the
waits of one op move the server's service clock (``ServiceManager.clock``), never the lab's minute
clock; a service still pending when the op returns completes at its time (``settle``).
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Callable, Dict, List, Mapping, Optional

RUNNING, STOPPED, STOP_PENDING, START_PENDING = "Running", "Stopped", "StopPending", "StartPending"
START_SECONDS = 2                  # lab choice: how long a service takes to report Running
DOTNET_DEPENDENT_WAIT = 30         # ServiceController.Stop(): WaitForStatus(Stopped, 30 s) per dependent
POLL = 0.25                        # WaitForStatus polls every 250 ms
TIMEOUT_TEXT = "Time out has expired and the operation has not been completed."


class ServiceTimeout(Exception):
    """System.ServiceProcess.TimeoutException."""

    def __init__(self, name: str) -> None:
        super().__init__(TIMEOUT_TEXT)
        self.name = name


class ServiceControlError(Exception):
    """InvalidOperationException around a Win32Exception (``code``)."""

    TEXTS = {1051: "A stop control has been sent to a service that other running services are dependent on.",
             1056: "An instance of the service is already running.",
             1061: "The service cannot accept control messages at this time.",
             1062: "The service has not been started."}

    def __init__(self, action: str, name: str, machine: str, code: int) -> None:
        super().__init__(f"Cannot {action} {name} service on computer '{machine}'. {self.TEXTS.get(code, '')}".strip())
        self.name, self.code = name, code


class Service:
    __slots__ = ("name", "depends_on", "stop_seconds", "start_seconds", "state", "until", "target")

    def __init__(self, name: str, depends_on: List[str], stop_seconds: float, running: bool) -> None:
        self.name, self.depends_on, self.stop_seconds = name, list(depends_on), float(stop_seconds)
        self.start_seconds = float(START_SECONDS)
        self.state = RUNNING if running else STOPPED
        self.until: Optional[_dt.datetime] = None      # when a pending state completes
        self.target: Optional[str] = None


class ServiceManager:
    """The services of one server; ``on_change(name, state, moment)`` hears every completed change."""

    def __init__(self, machine: str, specs: List[Mapping[str, Any]], start: _dt.datetime,
                 on_change: Callable[[str, str, _dt.datetime], None]) -> None:
        self.machine = machine
        self.services: Dict[str, Service] = {}
        for spec in specs:
            self.services[spec["name"].casefold()] = Service(spec["name"], spec.get("depends_on") or [],
                                                             spec.get("stop_seconds", 5), spec.get("running", True))
        self.clock = start
        self.on_change = on_change

    # -- state -----------------------------------------------------------------------------------
    def get(self, name: str) -> Optional[Service]:
        return self.services.get(str(name).casefold())

    def settle(self, moment: _dt.datetime) -> None:
        """Complete every pending change due by ``moment`` (in time order)."""
        due = sorted((s for s in self.services.values() if s.until is not None and s.until <= moment),
                     key=lambda s: s.until)
        for service in due:
            service.state, changed_at = service.target, service.until
            service.until = service.target = None
            self.on_change(service.name, service.state, changed_at)

    def status(self, name: str) -> str:
        self.settle(self.clock)
        return self.services[name.casefold()].state

    def snapshot(self, moment: _dt.datetime) -> Dict[str, str]:
        self.settle(max(moment, self.clock))
        return {s.name: s.state for s in self.services.values()}

    def begin(self, moment: _dt.datetime) -> None:
        """An op starts: the service clock is never behind the lab's."""
        self.clock = max(self.clock, moment)
        self.settle(self.clock)

    def dependents(self, name: str) -> List[str]:
        """EnumDependentServices: every service depending on ``name``, directly or not, deepest first."""
        order: List[str] = []

        def visit(target: str) -> None:
            for service in self.services.values():
                if target.casefold() in (d.casefold() for d in service.depends_on) and service.name not in order:
                    visit(service.name)
                    if service.name not in order:
                        order.append(service.name)

        visit(name)
        return order

    # -- Win32 -----------------------------------------------------------------------------------
    def control_stop(self, name: str) -> None:
        service = self.services[name.casefold()]
        self.settle(self.clock)
        if service.state == STOPPED:
            raise ServiceControlError("stop", service.name, self.machine, 1062)
        if service.state != RUNNING:
            raise ServiceControlError("stop", service.name, self.machine, 1061)
        if any(self.services[d.casefold()].state != STOPPED for d in self.dependents(name)):
            raise ServiceControlError("stop", service.name, self.machine, 1051)
        service.state, service.target = STOP_PENDING, STOPPED
        service.until = self.clock + _dt.timedelta(seconds=service.stop_seconds)

    def start(self, name: str) -> None:
        """ServiceController.Start() / StartService: its dependencies first, if stopped."""
        service = self.services[name.casefold()]
        self.settle(self.clock)
        if service.state != STOPPED:
            raise ServiceControlError("start", service.name, self.machine, 1056)
        ready = self.clock
        for dependency in service.depends_on:
            needed = self.get(dependency)
            if needed is not None and needed.state == STOPPED:
                self.start(needed.name)
            if needed is not None and needed.until is not None:
                ready = max(ready, needed.until)
        service.state, service.target = START_PENDING, RUNNING
        service.until = ready + _dt.timedelta(seconds=service.start_seconds)

    # -- .NET 2.0 ServiceController ----------------------------------------------------------------
    def dotnet_stop(self, name: str) -> None:
        """ServiceController.Stop(): each dependent not Stopped is stopped (recursively) and waited
        for, 30 s at most each, then the stop control is sent."""
        for dependent in self.dependents(name):
            if self.status(dependent) != STOPPED:
                self.dotnet_stop(dependent)
                self.wait(dependent, STOPPED, DOTNET_DEPENDENT_WAIT)
        self.control_stop(name)

    def wait(self, name: str, status: str, timeout: float) -> None:
        """ServiceController.WaitForStatus(status, timeout), moving the service clock."""
        service = self.services[name.casefold()]
        limit = self.clock + _dt.timedelta(seconds=max(0.0, timeout))
        self.settle(self.clock)
        if service.state == status:
            return
        if service.target == status and service.until is not None and service.until <= limit:
            steps = -(-(service.until - self.clock).total_seconds() // POLL)
            self.clock = self.clock + _dt.timedelta(seconds=steps * POLL)
            self.settle(self.clock)
            return
        self.clock = limit + _dt.timedelta(seconds=POLL)
        self.settle(self.clock)
        raise ServiceTimeout(service.name)


def restart_compensating(scm: ServiceManager, name: str, timeout: float) -> Dict[str, Any]:
    """The twin of files/ps/op_service.ps1's restart, call for call: record the running dependents
    (DependentServices, Status Running); stop each, then the service, with ServiceController.Stop()
    and WaitForStatus(Stopped) bounded by what is left of the op's timeout; in the finally, for the
    service and then each recorded dependent (start order): wait out a StopPending, Start() a
    Stopped one, WaitForStatus(Running, timeout); then say what is not Running."""
    recorded = [d for d in scm.dependents(name) if scm.status(d) == RUNNING]
    deadline = scm.clock + _dt.timedelta(seconds=timeout)
    stopped, started, timed_out, errors = [], [], [], []
    current = None
    try:
        for current in recorded + [name]:
            if scm.status(current) not in (STOPPED, STOP_PENDING):
                scm.dotnet_stop(current)
            scm.wait(current, STOPPED, max(0.0, (deadline - scm.clock).total_seconds()))
            stopped.append(current)
    except ServiceTimeout:
        timed_out.append(current)
    except ServiceControlError as exc:
        errors.append(f"stopping {current}: {exc}")
    finally:
        for current in [name] + list(reversed(recorded)):
            try:
                if scm.status(current) == STOP_PENDING:
                    scm.wait(current, STOPPED, timeout)
                if scm.status(current) == STOPPED:
                    scm.start(current)
                    started.append(current)
                scm.wait(current, RUNNING, timeout)
            except ServiceTimeout:
                timed_out.append(current)
            except ServiceControlError as exc:
                errors.append(f"starting {current}: {exc}")
    not_running = [n for n in [name] + list(reversed(recorded)) if scm.status(n) != RUNNING]
    return {"name": name, "state": scm.status(name), "restarted": name in started and name not in not_running,
            "dependents": recorded, "stopped": stopped, "started": started, "timed_out": timed_out,
            "not_running": not_running, "error": "; ".join(errors) or None}
