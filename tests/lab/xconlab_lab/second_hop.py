"""How the second hop fails, as Windows and .NET 2.0 report it (docs/facts.md "Errors as .NET 2.0
raises them"): the refusals an anonymous logon meets at the NT 4.0 server, and the runner's IPC$
session (WNetAddConnection2) with explicit target credentials.

* Event log: ``EventLog.Entries`` opens the log with OpenEventLog; on failure .NET throws an
  InvalidOperationException ("Cannot open log L on machine M.") with the Win32Exception of the
  last error inside (reference source, EventLog.OpenForRead). The runner reports the inner one:
  Win32Exception, native error 5.
* Registry: ``RegistryKey.OpenSubKey`` maps ERROR_ACCESS_DENIED to a SecurityException ("Requested
  registry access is not allowed.", reference source RegistryKey.InternalOpenSubKey /
  ThrowHelper.ThrowSecurityException).
* Performance counters: read through the remote PerformanceData registry hive; a denial is an
  UnauthorizedAccessException ("Access to the registry key 'Global' is denied.").
* Service control: ServiceController's OpenSCManager failure is an InvalidOperationException with a
  Win32Exception (5) inside; op_service.ps1 reports it as AccessDenied 0x80070005.
* WNetAddConnection2 returns a Win32 error; the runner throws it as a Win32Exception: 53
  ERROR_BAD_NETPATH (no such server from here), 1326 ERROR_LOGON_FAILURE (bad credentials), 1219
  ERROR_SESSION_CREDENTIAL_CONFLICT (this host already has a session to that server as another
  account: ``management_hosts.M.ipc_sessions: {SERVER: 'DOMAIN\\user'}``).
"""
from __future__ import annotations

from typing import Any, List, Mapping

from .base import E_FAIL, OpError, _op_error, win32_error

# Ops that reach the server over an IPC$ session (remote event log, counters, SCM, registry).
IPC_OPS = ("event_query", "perf_counters", "service", "reg_read")
WIN32_TEXT = {
    53: "The network path was not found.",
    1219: "Multiple connections to a server or shared resource by the same user, using more than one user "
          "name, are not allowed. Disconnect all previous connections to the server or shared resource and "
          "try again.",
    1326: "Logon failure: unknown user name or bad password.",
}


def anonymous_refusal(op: str, params: Mapping[str, Any]) -> OpError:
    """The failure an op meets when it reaches the server as NT AUTHORITY\\ANONYMOUS LOGON."""
    server = str(params.get("server") or "")
    if op == "event_query":
        log = str(params.get("log") or "Application")
        return win32_error("AccessDenied", 5, f"Cannot open log {log} on machine {server}. Access is denied")
    if op == "reg_read":
        return OpError("AccessDenied", "0x8013150A", "Requested registry access is not allowed.",
                       "System.Security.SecurityException")
    if op == "perf_counters":
        return OpError("AccessDenied", "0x80070005", "Access to the registry key 'Global' is denied.",
                       "System.UnauthorizedAccessException")
    return _op_error("AccessDenied", f"service {params.get('name')} on {server}: Access is denied.", "0x80070005")


class SecondHopMixin:
    """The management host's IPC$ sessions (state: ``topology``, ``domain_accounts()``)."""

    def _ipc_session(self, endpoint_name: str, serves: List[str], params: Mapping[str, Any]) -> None:
        """WNetAddConnection2(\\\\SERVER\\IPC$, target_password, target_user) as the runner calls it."""
        server = str(params.get("server") or "")
        user = str(params.get("target_user") or "")
        share = f"\\\\{server}\\IPC$"

        def fail(category: str, code: int) -> OpError:
            return OpError(category, E_FAIL, f"IPC$ session to {share} as {user} failed: {WIN32_TEXT[code]}",
                           "System.ComponentModel.Win32Exception", code)

        if not any(s.lower() == server.lower() for s in serves):
            raise fail("ServerUnavailable", 53)
        sessions = self.topology["management_hosts"][endpoint_name].get("ipc_sessions") or {}
        existing = next((u for s, u in sessions.items() if s.lower() == server.lower()), None)
        if existing is not None and existing.lower() != user.lower():
            raise fail("CredentialConflict", 1219)
        domain, _, name = user.rpartition("\\")
        account = self.domain_accounts().get(name.lower()) if domain.upper() in ("", self.netbios_domain) else None
        if account is None or account["password"] != params.get("target_password"):
            raise fail("AccessDenied", 1326)
