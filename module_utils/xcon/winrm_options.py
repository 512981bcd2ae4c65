"""Connection settings of a Windows endpoint, resolved by Ansible's own winrm connection plugin.

fix-xcon talks WinRM from the controller (one command per host per phase), but reads its
connection settings exactly as ansible-core's `winrm` connection plugin would for the same host:
the plugin is loaded (`connection_loader`), given the endpoint's variables and the task's
keywords the way TaskExecutor gives them (`_resolve_option_variables`, `set_options`), and asked
(`_build_winrm_kwargs`).  So every option, alias (`ansible_winrm_user`, `ansible_winrm_password`,
`ansible_winrm_pass`, `ansible_winrm_host`, `ansible_winrm_port`...), precedence rule, `-u`/`-k`
from the command line, default (port 5986, scheme from the port, transport from the user name),
`ansible_winrm_connection_timeout`, `ansible_winrm_kinit_mode` and every `ansible_winrm_<kwarg>`
that pywinrm's `Protocol` accepts behaves as it does for `ansible -m win_ping`.

Cost: the plugin class and its option definitions load once per process (about 7 ms, pywinrm
already imported); each resolution after that takes about 0.3 ms.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import XconSettingsError

PLUGIN = "winrm"
# The pywinrm Protocol arguments that are numbers (inventory and -e k=v may give strings).
_INT_KWARGS = ("operation_timeout_sec", "read_timeout_sec", "credssp_minimum_version")
# Variables Ansible's PlayContext maps to the connection password (MAGIC_VARIABLE_MAPPING).
_PASSWORD_VARS = ("ansible_ssh_pass", "ansible_password")


class _Verbatim:
    """A templar for values that are already plain (tests, the bench, saved inventories)."""

    @staticmethod
    def template(value):
        return value


@dataclasses.dataclass
class WinRMSettings:
    """What Ansible's winrm connection plugin resolved for one endpoint (no secret in repr)."""

    host: str
    port: int
    scheme: str
    path: str
    transports: list
    username: Any = None
    password: Any = dataclasses.field(default=None, repr=False)
    # Every other pywinrm Protocol keyword argument (server_cert_validation, ca_trust_path,
    # kerberos_delegation, message_encryption, timeouts...), as the plugin would pass them.
    kwargs: dict = dataclasses.field(default_factory=dict, repr=False)
    kerberos_managed: bool = False
    kinit_cmd: str = "kinit"
    # The plugin instance: it obtains Kerberos tickets (kinit, one credential cache each).
    plugin: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def endpoint(self) -> str:
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def _play_context():
    from ansible.playbook.play_context import PlayContext

    return PlayContext()


def resolve(variables, templar=None, task_keys=None, play_context=None) -> WinRMSettings:
    """Resolve the WinRM settings of the host whose variables are `variables`.

    `variables`: the host's variables (a mapping; values templated by `templar` when given);
    `task_keys`: the task's keywords as TaskExecutor passes them (`remote_user` - from `-u` when
    nothing else sets it -, `port`, `password` - the `-k` / `--connection-password-file` value).
    """
    from ansible.errors import AnsibleError
    from ansible.plugins.loader import connection_loader

    plugin = connection_loader.get(PLUGIN, play_context or _play_context())
    if plugin is None:  # pragma: no cover - ansible-core always ships it
        raise XconSettingsError("Ansible's winrm connection plugin cannot be loaded (is pywinrm installed?)")
    try:
        var_options = plugin._resolve_option_variables(variables, templar or _Verbatim())
        plugin.set_options(task_keys=dict(task_keys or {}), var_options=var_options)
        plugin._build_winrm_kwargs()
    except AnsibleError as exc:
        raise XconSettingsError(f"WinRM settings of {variables.get('inventory_hostname', '?')}: {exc}") from exc
    kwargs = dict(plugin._winrm_kwargs)
    kwargs.pop("username", None)
    kwargs.pop("password", None)
    for name in _INT_KWARGS:
        if isinstance(kwargs.get(name), str) and kwargs[name].strip().isdigit():
            kwargs[name] = int(kwargs[name])
    timeout = plugin._winrm_connection_timeout
    if timeout:  # as the plugin's _winrm_connect: both timeouts from one option
        kwargs["operation_timeout_sec"] = int(timeout)
        kwargs["read_timeout_sec"] = int(timeout) + 10
    elif "operation_timeout_sec" in kwargs and "read_timeout_sec" not in kwargs:
        # pywinrm refuses a read timeout (default 30) that does not exceed the operation timeout;
        # keep the plugin's 10 s margin instead of failing.
        kwargs["read_timeout_sec"] = max(30, int(kwargs["operation_timeout_sec"]) + 10)
    host = plugin._winrm_host
    return WinRMSettings(
        host=str(host), port=int(plugin._winrm_port), scheme=str(plugin._winrm_scheme),
        path=str(plugin._winrm_path or "/wsman"), transports=[str(t) for t in plugin._winrm_transport],
        username=plugin._winrm_user, password=plugin._winrm_pass, kwargs=kwargs,
        kerberos_managed=bool(plugin._kerb_managed), kinit_cmd=str(plugin._kinit_cmd or "kinit"), plugin=plugin)


def from_vars(conn: dict) -> WinRMSettings:
    """Settings from a plain dict of connection variables (no templating, no task keywords)."""
    variables = dict(conn or {})
    if not variables.get("inventory_hostname"):
        variables["inventory_hostname"] = variables.get("ansible_host") or variables.get("ansible_winrm_host")
    if not variables.get("inventory_hostname"):
        raise ValueError("ansible_host is required")
    return resolve(variables)


def task_keys_for(task, play_context, task_vars, endpoint_vars=None, templar=None) -> dict:
    """The keywords TaskExecutor gives a connection plugin (`_set_connection_options`).

    `endpoint_vars` is None when the endpoint is the task's own host: the PlayContext password
    (`-k`, or the host's `ansible_password` / `ansible_ssh_pass`) is passed as it is.  For another
    endpoint (a management host), as for `delegate_to`: that host's own `ansible_ssh_pass` /
    `ansible_password`, else the command line's password - offered only when it is the command
    line's, never the task host's own secret (PlayContext holds the task host's value then).
    """
    keys = task.dump_attrs()
    keys.pop("retries", None)
    keys["timeout"] = play_context.timeout
    password = play_context.password
    if endpoint_vars is not None:
        own = next((name for name in _PASSWORD_VARS if name in endpoint_vars), None)
        if own is not None:
            password = (templar or _Verbatim()).template(endpoint_vars[own])
        elif any(name in task_vars for name in _PASSWORD_VARS):
            password = None
    if password:
        keys["password"] = password
    return keys
