"""A real MIT Kerberos KDC for the lab (Debian's ``krb5-kdc``), on loopback, one per lab.

The domain of an emulated site is an Active Directory domain, and Active Directory's domain
controllers are Kerberos KDCs: a domain account logs on to a WinRM listener with a service ticket
for ``HTTP/<host fqdn>`` and may forward its TGT to it ("delegation"). :class:`LabKdc` builds that
with MIT's own programs, everything under one directory of the lab's state dir:

* ``krb5.conf`` - the client side profile: the realm, its KDC at ``127.0.0.1:<port>``, no DNS
  (neither for the KDC nor to canonicalise host names: the SPN is the name the client was given),
  a default credential cache inside the directory (tests never touch the user's ``/tmp/krb5cc_*``);
  point ``KRB5_CONFIG`` at it;
* ``kdc.conf`` (``KRB5_KDC_PROFILE``) - the database, stash and log in the directory, and the KDC
  listening on ``127.0.0.1`` only (``kdc_listen``/``kdc_tcp_listen``), on a port free at start;
* the database (``kdb5_util create -s``), one principal per domain account (``user@REALM`` with the
  account's password) and one service principal per WinRM host (``HTTP/<fqdn>@REALM``, random key,
  flagged ``ok_as_delegate``: "trusted for delegation" in Active Directory's terms), each
  host's key exported to its own keytab ``HTTP_<fqdn>.keytab`` (the acceptor of that host reads
  only its own key, as a Windows host holds only its own machine secret);
* ``krb5kdc -n`` as a child process, stopped by :meth:`stop` (SIGTERM, then SIGKILL): nothing is
  left listening.

Needs ``krb5kdc``, ``kdb5_util`` and ``kadmin.local`` (Debian: ``krb5-kdc krb5-admin-server``);
:func:`kdc_available` says whether they are there.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from typing import Dict, List, Mapping, Optional

LOG = logging.getLogger("xconlab.kdc")

PROGRAMS = ("krb5kdc", "kdb5_util", "kadmin.local")
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")
START_TIMEOUT = 15.0
PID_FILE = "krb5kdc.pid"
ENCTYPES = "aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal"


class KdcError(RuntimeError):
    """The KDC could not be set up or started."""


def _program(name: str) -> Optional[str]:
    found = shutil.which(name)
    if found:
        return found
    for directory in SBIN:
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    return None


def kdc_available() -> bool:
    """True when MIT's KDC programs are installed."""
    return all(_program(name) for name in PROGRAMS)


def realm_for(netbios_domain: str) -> str:
    """The lab's Kerberos realm for a NetBIOS domain: ``CONTOSO`` -> ``CONTOSO.EXAMPLE``."""
    label = re.sub(r"[^A-Z0-9-]", "", (netbios_domain or "").upper()) or "LAB"
    return f"{label}.EXAMPLE"


def dns_domain(realm: str) -> str:
    return realm.lower()


def free_port() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP (the KDC listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise KdcError("no free loopback port for the KDC")


def _kadmin_quote(text: str) -> str:
    if '"' in text or "\n" in text:
        raise KdcError("a password for a Kerberos principal may not contain a double quote or a line break")
    return f'"{text}"'


class LabKdc:
    """One realm's KDC. ``users``: ``{user name (no realm): password}``; ``hosts``: the fully
    qualified names of the WinRM hosts that get an ``HTTP/`` service principal."""

    def __init__(self, directory: str, realm: str, users: Mapping[str, str], hosts: List[str]) -> None:
        self.directory = os.path.abspath(directory)
        self.realm = realm
        self.users = dict(users)
        self.hosts = sorted({h.lower() for h in hosts})
        self.port = 0
        self.process: Optional[subprocess.Popen] = None
        self.krb5_conf = os.path.join(self.directory, "krb5.conf")
        self.kdc_conf = os.path.join(self.directory, "kdc.conf")
        self.log_path = os.path.join(self.directory, "kdc.log")
        self.pid_file = os.path.join(self.directory, PID_FILE)

    # ---- files --------------------------------------------------------------------------------
    def keytab(self, host: str) -> str:
        return os.path.join(self.directory, f"HTTP_{host.lower()}.keytab")

    def service_principal(self, host: str) -> str:
        return f"HTTP/{host.lower()}@{self.realm}"

    def env(self) -> Dict[str, str]:
        """The environment MIT's programs (and clients) need to use this realm."""
        return {"KRB5_CONFIG": self.krb5_conf, "KRB5_KDC_PROFILE": self.kdc_conf}

    def _write(self, path: str, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, 0o644 if path == self.krb5_conf else 0o600)

    def _write_profiles(self) -> None:
        d, realm, domain = self.directory, self.realm, dns_domain(self.realm)
        self._write(self.krb5_conf, f"""# Generated by the xconlab lab for realm {realm}; removed at `xconlab down`.
[libdefaults]
    default_realm = {realm}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    forwardable = false
    udp_preference_limit = 1
    default_ccache_name = FILE:{d}/ccache
    permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96

[realms]
    {realm} = {{
        kdc = 127.0.0.1:{self.port}
    }}

[domain_realm]
    .{domain} = {realm}
    {domain} = {realm}
""")
        self._write(self.kdc_conf, f"""# Generated by the xconlab lab for realm {realm}.
[kdcdefaults]
    kdc_listen = 127.0.0.1:{self.port}
    kdc_tcp_listen = 127.0.0.1:{self.port}

[realms]
    {realm} = {{
        database_name = {d}/principal
        key_stash_file = {d}/stash
        acl_file = {d}/kadm5.acl
        kdc_listen = 127.0.0.1:{self.port}
        kdc_tcp_listen = 127.0.0.1:{self.port}
        max_life = 10h 0m 0s
        max_renewable_life = 7d 0h 0m 0s
        supported_enctypes = {ENCTYPES}
        default_principal_flags = +preauth
    }}

[logging]
    kdc = FILE:{self.log_path}
    admin_server = FILE:{d}/kadmin.log
    default = FILE:{self.log_path}
""")
        self._write(os.path.join(d, "kadm5.acl"), "")

    def _run(self, argv: List[str], stdin: Optional[str] = None) -> str:
        env = dict(os.environ, **self.env())
        done = subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True, timeout=60,
                              cwd=self.directory)
        if done.returncode != 0:
            raise KdcError(f"{os.path.basename(argv[0])} failed: {(done.stderr or done.stdout).strip()[-400:]}")
        return done.stdout

    def _create_database(self) -> None:
        kdb5_util, kadmin = _program("kdb5_util"), _program("kadmin.local")
        self._run([kdb5_util, "-r", self.realm, "create", "-s", "-P", secrets.token_hex(16)])
        queries = []
        for user, password in sorted(self.users.items()):
            queries.append(f"addprinc -pw {_kadmin_quote(password)} {user}@{self.realm}")
        for host in self.hosts:
            spn = self.service_principal(host)
            queries.append(f"addprinc -randkey +ok_as_delegate {spn}")
            queries.append(f"ktadd -k {self.keytab(host)} {spn}")
        for query in queries:   # one query per run: kadmin.local stops at nothing on stdin errors
            self._run([kadmin, "-r", self.realm, "-q", query])

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "LabKdc":
        missing = [name for name in PROGRAMS if not _program(name)]
        if missing:
            raise KdcError(f"Kerberos in the lab needs MIT's KDC ({', '.join(missing)} not found; "
                           "Debian: apt-get install krb5-kdc krb5-admin-server krb5-user)")
        if os.path.isdir(self.directory):
            shutil.rmtree(self.directory)
        os.makedirs(self.directory, mode=0o700)
        self.port = free_port()
        self._write_profiles()
        begin = time.monotonic()
        self._create_database()
        env = dict(os.environ, **self.env())
        with open(os.path.join(self.directory, "krb5kdc.out"), "ab") as out:
            self.process = subprocess.Popen([_program("krb5kdc"), "-n", "-r", self.realm, "-P", self.pid_file], env=env,
                                            stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                            cwd=self.directory, close_fds=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise KdcError(f"krb5kdc exited with {self.process.returncode}; see {self.log_path}")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.settimeout(0.5)
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            if time.monotonic() > deadline:
                self.stop()
                raise KdcError(f"krb5kdc did not listen on 127.0.0.1:{self.port} within {START_TIMEOUT:.0f}s")
            time.sleep(0.05)
        LOG.info("KDC for %s on 127.0.0.1:%d (pid %d, %d principals, ready in %.2fs)", self.realm, self.port,
                 self.process.pid, len(self.users) + len(self.hosts), time.monotonic() - begin)
        return self

    def stop(self) -> None:
        """Stop the KDC process (idempotent)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                process.send_signal(sig)
            except ProcessLookupError:
                return
            try:
                process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue
        LOG.warning("krb5kdc (pid %d) did not stop", process.pid)

    def kinit(self, user: str, password: str, ccache: str, forwardable: bool = False) -> None:
        """A TGT for ``user`` into ``ccache`` (tests; the toolkit uses Ansible's managed kinit)."""
        argv = [_program("kinit") or "kinit"] + (["-f"] if forwardable else []) + [f"{user}@{self.realm}"]
        env = dict(os.environ, KRB5_CONFIG=self.krb5_conf, KRB5CCNAME=ccache)
        done = subprocess.run(argv, input=password + "\n", env=env, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise KdcError(f"kinit {user}@{self.realm} failed: {done.stderr.strip()}")


def stop_leftover(directory: str) -> bool:
    """Stop a KDC a lab left behind in ``directory`` (a lab process killed before it could stop
    its child): SIGTERM to the pid in its pid file when that process is a krb5kdc. True if one was."""
    try:
        with open(os.path.join(directory, PID_FILE), "r", encoding="ascii") as handle:
            pid = int(handle.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            if b"krb5kdc" not in handle.read():
                return False
    except (OSError, ValueError):
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if not os.path.exists(f"/proc/{pid}"):
                return True
            time.sleep(0.05)
    return not os.path.exists(f"/proc/{pid}")
