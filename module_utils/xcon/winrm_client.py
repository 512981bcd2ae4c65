"""One WinRS command per call over pywinrm's `winrm.protocol.Protocol`, payload on stdin.

`WinRMClient` connects with the settings Ansible's own winrm connection plugin resolves for the
endpoint (`xcon.winrm_options`), so an existing Windows inventory works unchanged: the same
options, aliases, defaults, `ansible_winrm_<kwarg>` pass-through to pywinrm, transport list
(tried in order, as the plugin does) and Kerberos ticket handling (`ansible_winrm_kinit_mode`:
with a password and no manual mode, kinit runs once per client into a credential cache of its
own, `-f` with `ansible_winrm_kerberos_delegation`, by the plugin's own code). The shell opens in
code page 437: everything on the wire is ASCII.

`run()` performs exactly one Create shell / Command / Send(End) / Receive... / Signal / Delete
sequence in code page 437 and maps every failure to one typed exception (`xcon.errors`):

* `XconUnreachable`          - connection refused, timeout, DNS failure, connection dropped
* `XconTLSError`             - TLS handshake or certificate validation failed, CA trust path missing
* `XconAuthError`            - the credentials were rejected (HTTP 401, pywinrm
                               InvalidCredentialsError, a KDC that refuses kinit)
* `XconClientLibraryMissing` - the transport needs pykerberos / requests-credssp / kinit
* `XconProtocolError`        - a SOAP fault or an unexpected HTTP answer; `.code` = the WSManFault code
                               (or the HTTP status when there is no fault)
* `XconSettingsError`        - settings pywinrm refuses (e.g. read timeout not above operation timeout)

all subclasses of `XconError`.
"""

from __future__ import annotations

import functools
import os
import shutil
import time

import requests

import winrm.transport as winrm_transport
from winrm.exceptions import (
    AuthenticationError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)
from winrm.protocol import Protocol

from .errors import (  # noqa: F401 - re-exported: the transport layer's exception types
    XconAuthError,
    XconClientLibraryMissing,
    XconError,
    XconProtocolError,
    XconSettingsError,
    XconTLSError,
    XconUnreachable,
)
from .mask import mask
from .winrm_options import WinRMSettings, from_vars

# Everything on the wire is ASCII both ways (the request JSON escapes the rest as \uXXXX, the runner
# writes ASCII only), so the shell's code page never matters: 437, the OEM code page pywinrm uses,
# not 65001, which misbehaves on hosts older than Windows Server 2008 R2.
SHELL_CODEPAGE = 437
WSMAN_OPERATION_TIMEOUT = 2150858793
# Largest raw stdin chunk per Send (base64 grows it by 4/3; old hosts cap envelopes at 150 KB).
STDIN_CHUNK = 64 * 1024
# pywinrm's own flags for its optional transports (read at call time).
_LIBRARY_FLAG = {"kerberos": "HAVE_KERBEROS", "credssp": "HAVE_CREDSSP", "ntlm": "HAVE_NTLM"}
# Transports that send a user name and password (pywinrm refuses them without both).
_PASSWORD_TRANSPORTS = ("basic", "plaintext", "ntlm", "credssp")


def _kinit_failure(text: str) -> XconError:
    """kinit's own diagnostics (MIT krb5 error texts) for a KDC that cannot be reached."""
    lowered = text.lower()
    if "cannot contact any kdc" in lowered or "cannot find kdc" in lowered or "cannot resolve" in lowered:
        return XconUnreachable(text)
    return XconAuthError(text)


def _settled(protocol):
    """After the shell opened, the session's proxies are settled: pywinrm's build_session merged the
    environment's (HTTP(S)_PROXY, NO_PROXY) for this endpoint into session.proxies once, yet requests
    would look them up in the environment again for each of the command's nine requests (about 7% of
    a fleet read's controller CPU at 100 links).  Only sessions with an auth handler: without one
    (certificate auth) requests would also consult ~/.netrc, and that stays as it was."""
    _settle(getattr(getattr(protocol, "transport", None), "session", None))


def _settle(session):
    if session is not None and session.auth is not None:
        session.trust_env = False


def _settled_at_handshake(protocol):
    """Settle the session (`_settled`) as soon as build_session has merged the environment, before
    the message-encryption handshake it ends with (setup_encryption: 2 of the command's 9 requests,
    which looked the proxies up again: 1.1 s of a 100-link fix's 41 s of controller CPU, py-spy).
    Over HTTPS there is no such handshake, and `_settled` settles the session after the shell opens."""
    transport = getattr(protocol, "transport", None)
    setup = getattr(transport, "setup_encryption", None)
    if setup is None:
        return

    def setup_encryption(session, *args, **kwargs):
        _settle(session)
        return setup(session, *args, **kwargs)

    transport.setup_encryption = setup_encryption


@functools.lru_cache(maxsize=8)
def _ntlm_one_way(password: str) -> str:
    """The NTLM transport's password as its LM and NT one-way functions, ``LM:NT`` in hex, which
    pyspnego takes in place of the password (its credential parsing turns that form into an NTLM
    hash credential); or the password itself where this pyspnego does not.

    pyspnego computes both functions of a plain password for every new NTLM context, and the LM
    one is DES in pure Python: 1.6 ms of controller CPU for each of a fleet's sessions (6% of a
    300-link fix's controller CPU, py-spy).  Computed here once per process and password, by
    pyspnego's own functions, so every NTLM version and LM compatibility level answers as before.
    The value is as secret as the password: it is kept in memory only, never logged, and masked
    in failures (``WinRMClient._translate``)."""
    try:
        from spnego._credential import NTLMHash, unify_credentials
        from spnego._ntlm_raw.crypto import is_ntlm_hash, lmowfv1, ntowfv1

        if is_ntlm_hash(password):
            return password   # already the one-way form (pyspnego takes it as such, and did before)
        nt_hash = ntowfv1(password).hex()
        hashed = f"{lmowfv1(password).hex()}:{nt_hash}"
        (credential,) = unify_credentials("probe", hashed)
        if isinstance(credential, NTLMHash) and credential.nt_hash == nt_hash:
            return hashed
    except Exception:  # noqa: BLE001 - another pyspnego: the plain password, as pywinrm sends it
        pass
    return password


class WinRMClient:
    """A WinRM endpoint, as Ansible's winrm connection plugin resolves it.

    `conn` is a `WinRMSettings` (`xcon.winrm_options.resolve`, what the action plugins build
    from the endpoint's inventory variables and the task's keywords) or a plain dict of Ansible
    connection variables (resolved by the same plugin, without templating).

    `command_timeout_sec` bounds the whole wait for one command's output (pywinrm alone would
    poll forever on OperationTimeout); `retries` is the number of extra attempts allowed for a
    connection drop before the command was accepted (see `run`).
    """

    def __init__(self, conn, command_timeout_sec: int = 3600, retries: int = 1):
        self.settings = conn if isinstance(conn, WinRMSettings) else from_vars(conn)
        self.host = self.settings.host
        self.port = self.settings.port
        self.scheme = self.settings.scheme
        self.username = self.settings.username
        self._password = self.settings.password
        self.command_timeout_sec = int(command_timeout_sec)
        self.retries = max(0, int(retries))
        self._working = None  # the transport that opened a shell (tried first next time)
        self._ccache = None  # KRB5CCNAME of the ticket kinit obtained for this client

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    def kinits(self) -> bool:
        """Whether a command would obtain a Kerberos ticket by kinit (a temporary ccache file)."""
        return "kerberos" in self.settings.transports and self.settings.kerberos_managed and self._ccache is None

    @property
    def transport(self) -> str:
        return self._working or self.settings.transports[0]

    @property
    def cert_validation(self) -> str:
        value = str(self.settings.kwargs.get("server_cert_validation", "validate")).lower()
        return "ignore" if value == "ignore" else "validate"

    def __repr__(self):  # never shows the password
        return f"WinRMClient({self.endpoint!r}, transport={self.transport!r}, user={self.username!r})"

    # -- before the first byte: libraries, CA file, Kerberos ticket -------------------------------
    def _check_ca_trust_path(self):
        """A CA trust path that does not exist is a TLS failure, found before connecting."""
        if self.scheme != "https" or self.cert_validation == "ignore":
            return
        path = self.settings.kwargs.get("ca_trust_path", "legacy_requests")
        source = "ansible_winrm_ca_trust_path"
        if path in (None, "", "legacy_requests"):  # pywinrm then uses requests' environment variables
            source = next((name for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE") if os.environ.get(name)), None)
            path = os.environ.get(source) if source else None
        if path and not os.path.exists(str(path)):
            raise XconTLSError(
                f"{self.endpoint}: the CA trust path {path!r} ({source}) does not exist on the controller, so "
                "the server certificate cannot be validated")

    def _prepare(self, transport: str):
        flag = _LIBRARY_FLAG.get(transport)
        if flag and not getattr(winrm_transport, flag, False):
            raise XconClientLibraryMissing(
                transport, f"{self.endpoint}: WinRM transport {transport!r} needs a Python library that is not installed")
        if transport in _PASSWORD_TRANSPORTS:
            missing = [what for what, value in (("user name", self.username), ("password", self._password)) if not value]
            if missing:
                raise XconAuthError(
                    f"{self.endpoint}: transport {transport!r} needs a {' and a '.join(missing)}: none is set "
                    "(ansible_user / ansible_winrm_user or -u; ansible_password / ansible_winrm_password / "
                    "ansible_winrm_pass or -k)")
        if transport == "kerberos" and self.settings.kerberos_managed and self._ccache is None:
            self._kinit()
        if transport == "kerberos" and self._ccache:
            os.environ["KRB5CCNAME"] = self._ccache  # this client's ticket, also after another's kinit

    def _kinit(self):
        """A ticket for this client, by the connection plugin's own kinit (private ccache)."""
        from ansible.errors import AnsibleError

        command = self.settings.kinit_cmd
        if shutil.which(command) is None:
            raise XconClientLibraryMissing("kinit", f"{self.endpoint}: Kerberos needs {command!r} to obtain a ticket, "
                                                    "and it is not on PATH")
        try:
            self.settings.plugin._kerb_auth(self.username, self._password)
        except AnsibleError as exc:
            text = str(exc)
            if self._password:
                text = mask(text, (str(self._password),))
            raise _kinit_failure(f"{self.endpoint}: {text}") from None
        self._ccache = os.environ.get("KRB5CCNAME")

    def _protocol(self, transport: str) -> Protocol:
        try:
            password = _ntlm_one_way(self._password) if transport == "ntlm" and self._password else self._password
            protocol = Protocol(self.endpoint, transport=transport, username=self.username, password=password,
                                **self.settings.kwargs)
            _settled_at_handshake(protocol)
            return protocol
        except (WinRMError, ValueError, TypeError) as exc:
            raise XconSettingsError(f"{self.endpoint}: invalid WinRM settings: {exc}") from exc

    def _open(self):
        """Open a shell with the first transport that works, in the plugin's order.

        Returns (protocol, shell_id).  A host that cannot be reached is not tried again with
        another transport (the same address and port would not answer either)."""
        self._check_ca_trust_path()
        order = [self._working] if self._working else list(self.settings.transports)
        failures = []
        for transport in order:
            protocol = None
            try:
                self._prepare(transport)
                protocol = self._protocol(transport)
                shell_id = protocol.open_shell(codepage=SHELL_CODEPAGE)
                _settled(protocol)
            except Exception as exc:  # noqa: BLE001 - every failure leaves typed
                error = self._translate(exc, f"open shell, transport {transport}")
                if protocol is not None:
                    self._close(protocol, None, None)
                if isinstance(error, XconUnreachable) or len(order) == 1:
                    raise error from exc
                failures.append((transport, error))
                continue
            self._working = transport
            return protocol, shell_id
        first = failures[0][1]
        first.args = ("; ".join(f"{transport}: {error}" for transport, error in failures),)
        raise first

    def _translate(self, exc: BaseException, step: str) -> XconError:
        """Map a pywinrm/requests failure to the typed exceptions (the only place that does), with
        the password's NTLM one-way form masked should a library have quoted it (the password itself
        is masked where it can appear, kinit's output)."""
        error = self._typed(exc, step)
        secret = _ntlm_one_way(self._password) if self._password else None
        if secret and secret != self._password and error.args and isinstance(error.args[0], str):
            error.args = (mask(error.args[0], (secret,)),) + tuple(error.args[1:])
        return error

    def _typed(self, exc: BaseException, step: str) -> XconError:
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
        if isinstance(exc, OSError):  # socket errors that requests did not wrap
            return XconUnreachable(f"{where}: cannot reach the host: {exc}")
        if isinstance(exc, WinRMError):
            return XconProtocolError(f"{where}: {exc}")
        return XconProtocolError(f"{where}: unexpected failure: {type(exc).__name__}: {exc}")

    def run(self, command_line: str, stdin_bytes: bytes = b"") -> tuple[int, bytes, bytes]:
        """Run one command line with `stdin_bytes` on its stdin; return (rc, stdout, stderr).

        Exactly one shell (code page 437; the payload is ASCII) and one command per call: Create, Command,
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
            protocol = shell_id = command_id = None
            try:
                step = "open shell"
                protocol, shell_id = self._open()
                step = "command"
                command_id = protocol.run_command(shell_id, command_line, console_mode_stdin=False)
            except Exception as exc:  # noqa: BLE001 - every failure leaves typed
                error = self._translate(exc, step)
                if protocol is not None:
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
