"""One WinRS command per call over pywinrm's `winrm.protocol.Protocol`, payload on stdin.

`WinRMClient` is built from Ansible's own Windows connection variables (the same names and
defaults as Ansible's winrm connection plugin), so an existing Windows inventory works unchanged.
`run()` performs exactly one Create shell / Command / Send(End) / Receive... / Signal / Delete
sequence with code page 65001 and maps every failure to a typed exception:

* `XconUnreachable`   - connection refused, timeout, DNS failure, TLS failure (`XconTLSError`)
* `XconAuthError`     - the credentials were rejected (HTTP 401 / pywinrm InvalidCredentialsError)
* `XconProtocolError` - a SOAP fault or an unexpected HTTP answer; `.code` = the WSManFault code
                        (or the HTTP status when there is no fault)

all subclasses of `XconError`.
"""

from __future__ import annotations

import time

import requests

from winrm.exceptions import (
    AuthenticationError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)
from winrm.protocol import Protocol

CODEPAGE_UTF8 = 65001
WSMAN_OPERATION_TIMEOUT = 2150858793
# Largest raw stdin chunk per Send (base64 grows it by 4/3; old hosts cap envelopes at 150 KB).
STDIN_CHUNK = 64 * 1024


class XconError(Exception):
    """Base class of every failure talking to a Windows host."""


class XconUnreachable(XconError):
    """The host could not be reached (refused, timed out, name not resolved, connection dropped)."""


class XconTLSError(XconUnreachable):
    """The TLS handshake or the server certificate validation failed (never retried)."""


class XconAuthError(XconError):
    """The host rejected the credentials."""


class XconProtocolError(XconError):
    """The host answered with a WS-Management fault or an unexpected HTTP status."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


def _as_bool(value, default):
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on", "validate")


class WinRMClient:
    """A WinRM endpoint described by Ansible's Windows connection variables.

    `conn` keys (all optional but ansible_host): ansible_host, ansible_port (default 5986),
    ansible_user, ansible_password, ansible_winrm_scheme (default http when the port is 5985,
    else https), ansible_winrm_transport (default ssl over https, plaintext over http - as
    Ansible without kerberos), ansible_winrm_server_cert_validation (validate|ignore, default
    validate), ansible_winrm_ca_trust_path, ansible_winrm_message_encryption (auto|always|never),
    ansible_winrm_operation_timeout_sec, ansible_winrm_read_timeout_sec (pywinrm defaults 20/30).

    `command_timeout_sec` bounds the whole wait for one command's output (pywinrm alone would
    poll forever on OperationTimeout); `retries` is the number of extra attempts allowed for a
    connection drop before the command was accepted (see `run`).
    """

    def __init__(self, conn: dict, command_timeout_sec: int = 3600, retries: int = 1):
        conn = dict(conn or {})
        if not conn.get("ansible_host"):
            raise ValueError("ansible_host is required")
        self.host = str(conn["ansible_host"])
        self.port = int(conn.get("ansible_port") or 5986)
        scheme = conn.get("ansible_winrm_scheme")
        self.scheme = str(scheme) if scheme else ("http" if self.port == 5985 else "https")
        transport = conn.get("ansible_winrm_transport")
        if isinstance(transport, (list, tuple)):
            transport = transport[0] if transport else None
        if isinstance(transport, str) and "," in transport:
            transport = transport.split(",")[0].strip()
        self.transport = transport or ("ssl" if self.scheme == "https" else "plaintext")
        self.username = conn.get("ansible_user")
        self._password = conn.get("ansible_password")
        validation = conn.get("ansible_winrm_server_cert_validation")
        self.cert_validation = "ignore" if str(validation).lower() == "ignore" else "validate"
        self.ca_trust_path = conn.get("ansible_winrm_ca_trust_path") or "legacy_requests"
        self.message_encryption = conn.get("ansible_winrm_message_encryption") or "auto"
        op_timeout = conn.get("ansible_winrm_operation_timeout_sec")
        read_timeout = conn.get("ansible_winrm_read_timeout_sec")
        self.operation_timeout_sec = int(op_timeout) if op_timeout else 20
        self.read_timeout_sec = int(read_timeout) if read_timeout else max(30, self.operation_timeout_sec + 10)
        self.command_timeout_sec = int(command_timeout_sec)
        self.retries = max(0, int(retries))

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{self.scheme}://{host}:{self.port}/wsman"

    def __repr__(self):  # never shows the password
        return f"WinRMClient({self.endpoint!r}, transport={self.transport!r}, user={self.username!r})"

    def _protocol(self) -> Protocol:
        try:
            return Protocol(
                self.endpoint,
                transport=self.transport,
                username=self.username,
                password=self._password,
                server_cert_validation=self.cert_validation,
                ca_trust_path=self.ca_trust_path,
                message_encryption=self.message_encryption,
                operation_timeout_sec=self.operation_timeout_sec,
                read_timeout_sec=self.read_timeout_sec,
            )
        except (WinRMError, ValueError) as exc:
            raise XconProtocolError(f"{self.endpoint}: invalid WinRM settings: {exc}") from exc

    def _translate(self, exc: BaseException, step: str) -> XconError:
        """Map a pywinrm/requests failure to the typed exceptions."""
        where = f"{self.endpoint} ({step})"
        if isinstance(exc, XconError):
            return exc
        if isinstance(exc, AuthenticationError):
            return XconAuthError(f"{where}: the credentials of {self.username!r} were rejected: {exc}")
        if isinstance(exc, WSManFaultError):
            code = exc.wsman_fault_code if exc.wsman_fault_code is not None else exc.code
            return XconProtocolError(f"{where}: WS-Management fault {code}: {exc.reason}", code=code)
        if isinstance(exc, WinRMOperationTimeoutError):
            return XconProtocolError(f"{where}: operation timed out", code=WSMAN_OPERATION_TIMEOUT)
        if isinstance(exc, WinRMTransportError):
            return XconProtocolError(f"{where}: HTTP {exc.code}: {exc.response_text[:200]}", code=exc.code)
        if isinstance(exc, requests.exceptions.SSLError):
            return XconTLSError(f"{where}: TLS failure (certificate validation?): {exc}")
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return XconUnreachable(f"{where}: cannot reach the host: {exc}")
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return XconUnreachable(f"{where}: cannot reach the host: {exc}")
        if isinstance(exc, WinRMError):
            return XconProtocolError(f"{where}: {exc}")
        return XconProtocolError(f"{where}: unexpected failure: {type(exc).__name__}: {exc}")

    def run(self, command_line: str, stdin_bytes: bytes = b"") -> tuple[int, bytes, bytes]:
        """Run one command line with `stdin_bytes` on its stdin; return (rc, stdout, stderr).

        Exactly one shell (code page 65001) and one command per call: Create, Command,
        Send (the last chunk with End=true), Receive until Done, Signal terminate, Delete.

        Retry policy (bounded, write-safe): a connection failure while opening the shell or
        before the Command was accepted (no CommandId yet) is retried `self.retries` times
        (default once) - nothing has run on the host then, because the payload has not been
        sent. Once the Command was accepted and stdin sent, a failure is NEVER retried: the
        payload may contain writes (dir_modify, dir_create, a service restart), and running it
        twice could apply them twice. Credential, TLS and fault errors are never retried.
        """
        attempts = 1 + self.retries
        for attempt in range(1, attempts + 1):
            protocol = self._protocol()
            shell_id = command_id = None
            try:
                step = "open shell"
                shell_id = protocol.open_shell(codepage=CODEPAGE_UTF8)
                step = "command"
                command_id = protocol.run_command(shell_id, command_line, console_mode_stdin=False)
            except Exception as exc:  # noqa: BLE001 - every failure leaves typed
                error = self._translate(exc, step)
                self._close(protocol, shell_id, None)
                if type(error) is XconUnreachable and attempt < attempts:
                    time.sleep(min(2.0, 0.5 * attempt))
                    continue
                raise error from exc
            # From here on the command exists on the host: no retry whatever happens.
            try:
                step = "send stdin"
                self._send(protocol, shell_id, command_id, stdin_bytes or b"")
                step = "receive"
                rc, stdout, stderr = self._receive(protocol, shell_id, command_id)
            except Exception as exc:  # noqa: BLE001
                self._close(protocol, shell_id, command_id)
                raise self._translate(exc, step) from exc
            self._close(protocol, shell_id, command_id)
            return rc, stdout, stderr
        raise XconUnreachable(f"{self.endpoint}: no attempt left")  # pragma: no cover

    @staticmethod
    def _send(protocol, shell_id, command_id, data: bytes):
        if not data:
            protocol.send_command_input(shell_id, command_id, b"", end=True)
            return
        for start in range(0, len(data), STDIN_CHUNK):
            chunk = data[start:start + STDIN_CHUNK]
            protocol.send_command_input(shell_id, command_id, chunk, end=start + STDIN_CHUNK >= len(data))

    def _receive(self, protocol, shell_id, command_id):
        deadline = time.monotonic() + self.command_timeout_sec
        out, err = [], []
        while True:
            try:
                stdout, stderr, rc, done = protocol.get_command_output_raw(shell_id, command_id)
            except WinRMOperationTimeoutError:
                # "No output yet": normal for a long command; poll again until our own deadline.
                if time.monotonic() > deadline:
                    raise XconProtocolError(
                        f"{self.endpoint}: no result after {self.command_timeout_sec}s", code=WSMAN_OPERATION_TIMEOUT
                    ) from None
                continue
            out.append(stdout)
            err.append(stderr)
            if done:
                return rc, b"".join(out), b"".join(err)
            if time.monotonic() > deadline:
                raise XconProtocolError(f"{self.endpoint}: command still running after {self.command_timeout_sec}s")

    @staticmethod
    def _close(protocol, shell_id, command_id):
        """Best effort: Signal terminate, then Delete the shell; cleanup failures are ignored."""
        if shell_id is None:
            try:
                protocol.transport.close_session()
            except Exception:  # noqa: BLE001
                pass
            return
        if command_id is not None:
            try:
                protocol.cleanup_command(shell_id, command_id)
            except Exception:  # noqa: BLE001 - the result (or the real error) is already known
                pass
        try:
            protocol.close_shell(shell_id)
        except Exception:  # noqa: BLE001
            pass
        finally:
            try:
                protocol.transport.close_session()
            except Exception:  # noqa: BLE001
                pass
