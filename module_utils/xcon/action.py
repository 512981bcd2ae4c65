"""Shared base for fix-xcon's action plugins (controller-side modules).

Every module of this project runs on the Ansible controller as an action plugin: it talks WinRM
(pywinrm) to the Windows host itself, so a task costs one WinRM command per host, not a Python
module shipped and executed remotely.  `library/xcon_*.py` holds the documented face of each
module (DOCUMENTATION / EXAMPLES / RETURN, argument spec for ansible-doc); this class holds what
every action plugin needs:

* argument validation against the spec in `xcon.specs` (the same dict the library stub uses);
* the WinRM connection settings of the endpoint host (the target itself, or its
  `xcon_management_host`), resolved by Ansible's own winrm connection plugin from that host's
  variables and the task's keywords (`-u`, `-k`), so an existing inventory works unchanged;
* uniform error mapping: unreachable / bad credentials / access denied become result keys that
  the audit can report (`xcon_error`) instead of aborting the play, when the task asks for that;
* masking of secrets in everything returned.
"""

from __future__ import annotations

import json
import traceback

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from xcon.errors import ACCESS_DENIED, CLIENT_LIBRARY_MISSING, TLS_FAILED, UNREACHABLE, error_code, error_reason
from xcon.mask import mask

# What XconAction._stored answers where a host's stored variables cannot be reached.
_NOT_STORED = object()
_NOT_REGISTERED = object()  # the run's registered results are readable, and this name is not one of them


def plain(value):
    """The same data as plain dict/list/str/number/bool/None.

    ansible-core 2.19 hands actions templated values as tagged subclasses of str/dict/list;
    copying those costs about 40x more than plain data (copy.deepcopy through __reduce_ex__ and
    dataclass state), which made a 100-link diagnosis take minutes.  One JSON round trip at the
    boundary (C code) drops the tags."""
    return json.loads(json.dumps(value, default=str))


def _run_fact(hostvars, host, name):
    """`host`'s registered result (or set_fact fact) `name` where ansible-core keeps them, the
    variable manager's non-persistent facts (2.19: set by the strategy when a task registers, for
    every host of a run_once task), as stored; _NOT_REGISTERED when they are there and `name` is not
    among them (no task registered it for the host); _NOT_STORED when an extra var of that name
    would win, or where this ansible-core keeps them otherwise."""
    manager = getattr(hostvars, "_variable_manager", None)
    facts = getattr(manager, "_nonpersistent_fact_cache", None)
    try:
        if not isinstance(facts, dict) or name in (getattr(manager, "extra_vars", None) or {}):
            return _NOT_STORED
        own = facts.get(host)   # .get: never add a key to the defaultdict
        if own is None or (isinstance(own, dict) and name not in own):
            return _NOT_REGISTERED
        return own[name] if isinstance(own, dict) else _NOT_STORED
    except Exception:  # noqa: BLE001 - anything unexpected: read it through hostvars
        return _NOT_STORED


def _module_fact(hostvars, host, name):
    """`host`'s fact `name` as a module of this run returned it (its ansible_facts: the variable
    manager's fact cache, injected as a variable of that name), as stored: None when no module set
    it; _NOT_STORED where it is not that simple (facts not injected as variables, an extra var or a
    registered result or set_fact of that name, another ansible-core): read it through hostvars."""
    from ansible import constants as C

    manager = getattr(hostvars, "_variable_manager", None)
    cache = getattr(manager, "_fact_cache", None)
    try:
        shadowed = _run_fact(hostvars, host, name) is not _NOT_REGISTERED   # extra var, set_fact, register
        if cache is None or not C.INJECT_FACTS_AS_VARS or shadowed:
            return _NOT_STORED
        try:
            facts = cache.get(host)
        except KeyError:   # the cache plugins' word for "no facts for this host"
            return None
        return facts.get(name) if hasattr(facts, "get") else _NOT_STORED
    except Exception:  # noqa: BLE001 - anything unexpected: read it through hostvars
        return _NOT_STORED


def what_to_do(exc, code):
    """One sentence for the operator: what to do about a module failure of this class (by its report
    code; each code also has a page in docs/findings/)."""
    if code == TLS_FAILED:
        return ("What to do: check the host's certificate and give its CA with ansible_winrm_ca_trust_path "
                "(a file that exists), then run again.")
    if code == CLIENT_LIBRARY_MISSING:
        return "What to do: install what the message names on the controller, then run again."
    if code == UNREACHABLE:
        return ("What to do: check that the host is up and that its WinRM listener answers at the address, port and "
                "scheme of its connection variables (ansible_host, ansible_port, ansible_winrm_scheme), then run again.")
    if code == ACCESS_DENIED:
        return ("What to do: check the account (ansible_user, ansible_password) and its rights on the server, "
                "then run again.")
    if isinstance(exc, OSError) and getattr(exc, "filename", None):
        return ("What to do: the controller could not use that path; give xcon_report_dir / xcon_state_dir a directory "
                "the run can write to, then run again.")
    return ("What to do: correct the cause named above and run the playbook again; what was already done is not "
            "done twice.")


class XconAction(ActionBase):
    """Base class: subclasses set ARGUMENT_SPEC and implement `xcon_run(args, task_vars)`."""

    ARGUMENT_SPEC: dict = {}
    MUTUALLY_EXCLUSIVE: list = []
    REQUIRED_IF: list = []
    REQUIRED_ONE_OF: list = []
    TRANSFERS_FILES = False
    _requires_connection = False  # we never use the task's connection plugin

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        result.update(changed=False)
        validator = ArgumentSpecValidator(
            self.ARGUMENT_SPEC,
            mutually_exclusive=self.MUTUALLY_EXCLUSIVE or None,
            required_if=self.REQUIRED_IF or None,
            required_one_of=self.REQUIRED_ONE_OF or None,
        )
        validation = validator.validate(self._task.args)
        if validation.error_messages:
            result.update(failed=True, msg="Invalid arguments: " + "; ".join(validation.error_messages))
            return result
        args = plain(validation.validated_parameters)
        try:
            result.update(self.xcon_run(args, task_vars))
        except AnsibleActionFail:
            raise
        except Exception as exc:  # every failure leaves with a specific message, no traceback noise
            result.update(self.failure(task_vars.get("inventory_hostname", "?"), exc))
            # ansible-core 2.19's PlayContext has no verbosity; Display is the one place that knows -v.
            if Display().verbosity >= 3:
                result["exception"] = traceback.format_exc()
        return mask(result)

    # -- helpers for subclasses -------------------------------------------------------------
    def failure(self, host, exc):
        """A failed result for `host` (its own task's, or its outcome in a fleet task's): the module,
        the host, the reason and what to do, and its report code (xcon_error)."""
        code = error_code(exc)
        return {"failed": True, "msg": f"{self._task.action} ({host}): {error_reason(exc)} {what_to_do(exc, code)}",
                "xcon_error": {"code": code, "reason": error_reason(exc)}}

    def role_or_contract(self, view, role_name, contract_name, default):
        """A host's role variable when it has one (inventory, -e), else its contract variable, else
        `default`: a fleet task reads each host's own, where a per-host task had the role's default."""
        value = self.host_var(view, role_name)
        return value if value not in (None, "") else self.host_var(view, contract_name, default)

    def host_var(self, task_vars, name, default=None, host=None):
        """A templated variable of `host` (default: the task's host)."""
        host = host or task_vars.get("inventory_hostname")
        own = self._hostvars_of(task_vars, host)
        try:
            value = own.get(name, default) if own is not None else task_vars.get(name, default)
        except Exception:  # undefined variable inside a template
            value = default
        value = self._templar.template(value) if isinstance(value, str) else value
        return plain(value) if isinstance(value, (dict, list)) else value

    def module_fact(self, task_vars, name, host, default=None):
        """`host`'s fact `name` as the toolkit's modules set it (ansible_facts, e.g.
        xcon_restart_pending), without computing all of the host's variables (`_module_fact`;
        through hostvars where that is not possible)."""
        value = _module_fact(task_vars.get("hostvars"), host, name)
        if value is _NOT_STORED:
            return self.host_var(task_vars, name, default, host=host)
        return default if value is None else value

    def _hostvars_of(self, task_vars, host):
        """hostvars[host] (None when the host has none), once per task and host: it computes all of
        the host's variables each time (about 1 ms), and a fleet task reads each host's several times
        (its contract variables, its connection, its registered results)."""
        cache = self.__dict__.setdefault("_xcon_hostvars", {})
        if host not in cache:
            hostvars = task_vars.get("hostvars", {})
            cache[host] = hostvars[host] if host in hostvars else None
        return cache[host]

    def planned_changes(self, task_vars, host):
        """`host`'s plan entries by phase (``{phase: [entry, ...]}``): its entry of ``planned`` in the
        diagnosis file that xcon_diagnose wrote and names in its result (registered on localhost; a
        result with ``planned`` inline is read as it is).  Read once per task, whatever the number of
        hosts it covers; the plan is not registered (issue 19: Ansible copied it through every task)."""
        from xcon import diagnosis_file

        planned = self.__dict__.get("_xcon_planned")
        if planned is None:
            result = self._registered(task_vars, "xcon_diagnose_result", "localhost")
            diagnosis = diagnosis_file.from_options(None, result) if isinstance(result, dict) else {}
            planned = self._xcon_planned = diagnosis.get("planned") or {}
        return (planned.get(host) or {}).get("changes") or {}

    def fleet_var(self, task_vars, name, host):
        """`host`'s registered result `name`, read once for a whole fleet task: a run_once task
        registers one result (one entry per host under ``hosts``; ``fleet``: every host it covered,
        default the keys of ``hosts``) on every host of its play, and each host's read templates and
        copies the whole fleet's result, so reading it per host would grow with the square of the
        fleet.  A host the cached result does not cover is read as its own."""
        cache = self.__dict__.setdefault("_xcon_fleet", {})
        # A name several plays register (role xcon_change: one fleet task per phase) holds different
        # fleets on different hosts: such a result carries its ``fleet_id``, read from the host's
        # variables as stored (not templated, not copied) to find the one this host holds.
        known = cache.get(name)
        if known is not None and not known.get("fleet_id") and host in (known.get("fleet") or known["hosts"]):
            return known   # one play's fleet (the audit's read, the back-up, the restarts): no host is read
        fleet_id = self._stored_fleet_id(task_vars, name, host)
        by_id = self.__dict__.setdefault("_xcon_fleet_ids", {}).setdefault(name, {})
        if fleet_id and fleet_id in by_id:
            return by_id[fleet_id]
        value = self._registered(task_vars, name, host)
        if isinstance(value, dict) and isinstance(value.get("hosts"), dict):
            cache[name] = value
            if value.get("fleet_id"):
                by_id[str(value["fleet_id"])] = value
        return value

    def _registered(self, task_vars, name, host):
        """`host`'s registered result `name` as Ansible stores it, as a plain copy.  A registered
        result is data the templar leaves as it is (ansible-core 2.19 marks it untrusted), but
        reading it through hostvars walked the whole fleet's result in the templar first: 0.2 s for
        a 100-server Stack phase's, read by each gate after it and by the report (py-spy).  Read
        through hostvars (templated) where the stored form is not reachable."""
        value = self._stored(task_vars, name, host)
        if value is _NOT_STORED:
            return self.host_var(task_vars, name, None, host=host)
        return plain(value) if isinstance(value, (dict, list)) else value

    def _stored_fleet_id(self, task_vars, name, host):
        """The ``fleet_id`` of `host`'s variable `name` as Ansible stores it, or None (not a fleet
        result with an id, or this ansible-core keeps host variables otherwise: then read in full)."""
        value = self._stored(task_vars, name, host)
        try:
            fleet_id = value.get("fleet_id") if value is not _NOT_STORED and hasattr(value, "get") else None
        except Exception:  # noqa: BLE001 - anything unexpected: read the variable in full
            return None
        return str(fleet_id) if fleet_id else None

    def _stored(self, task_vars, name, host):
        """`host`'s registered result `name` as Ansible stores it (not templated, not copied; never
        modify it), None when no task registered it for the host, or _NOT_STORED where this
        ansible-core keeps host variables otherwise.  Taken from the variable manager's facts of
        this run (`_run_fact`), else from HostVarsVars._vars, which computes all of the host's
        variables first (about 1 ms a host, most of it ansible-core listing its connection plugins'
        files to clean facts: 0.2 s of each gate of a 100-link fix, and the report's reads of a
        result no task registered under --check)."""
        fact = _run_fact(task_vars.get("hostvars"), host, name)
        if fact is _NOT_REGISTERED:
            return None   # as hostvars would say of a name nothing defines
        if fact is not _NOT_STORED:
            return fact
        stored = getattr(self._hostvars_of(task_vars, host), "_vars", None)
        if stored is None:
            return _NOT_STORED
        try:
            return stored.get(name)
        except Exception:  # noqa: BLE001 - anything unexpected: the caller reads it templated
            return _NOT_STORED

    def connection_for(self, task_vars, endpoint=None):
        """The WinRM settings of `endpoint` (an inventory host; default the task's host), as
        Ansible's winrm connection plugin resolves them (`xcon.winrm_options`).

        The task's own host is resolved from the task's variables, exactly as TaskExecutor does
        for its connection; another host (a management host) from its own variables, with the
        command line's user and password as for `delegate_to`.  Cached per endpoint."""
        from xcon import winrm_options

        inventory_hostname = task_vars.get("inventory_hostname")
        endpoint = endpoint or inventory_hostname
        cache = self.__dict__.setdefault("_xcon_settings", {})
        if endpoint in cache:
            return cache[endpoint]
        if endpoint == inventory_hostname:
            variables, endpoint_vars = task_vars, None
        else:
            variables = endpoint_vars = self._hostvars_of(task_vars, endpoint)
            if variables is None:
                raise AnsibleActionFail(f"management host {endpoint!r} is not in the inventory")
        keys = winrm_options.task_keys_for(self._task, self._play_context, task_vars, endpoint_vars, self._templar)
        cache[endpoint] = winrm_options.resolve(variables, self._templar, keys, self._play_context)
        return cache[endpoint]

    @staticmethod
    def host_view(task_vars, host):
        """What a fleet task reads as `host`'s own variables (inventory_hostname, hostvars, groups)."""
        return {"inventory_hostname": host, "hostvars": task_vars.get("hostvars", {}), "groups": task_vars.get("groups", {})}

    @staticmethod
    def fleet_threads():
        """Ansible's forks: the threads of a fleet task."""
        from ansible import constants as C
        from ansible import context

        return max(1, int(context.CLIARGS.get("forks") or C.DEFAULT_FORKS))

    def winrm_client(self, task_vars, management_host=None, connection_vars=None):
        """A client for the host of `task_vars` (or its management host). `connection_vars`: the task's
        own variables when `task_vars` is another host's view (xcon_connector_info's fleet read)."""
        from xcon.winrm_client import WinRMClient

        endpoint = management_host or self.host_var(task_vars, "xcon_management_host") or task_vars.get("inventory_hostname")
        client = WinRMClient(self.connection_for(connection_vars or task_vars, endpoint))
        client.target_credentials = self.target_credentials(task_vars, endpoint)
        return client

    def target_credentials(self, task_vars, endpoint, host=None):
        """(xcon_target_user, xcon_target_password) of `host` when it is reached through another
        host (its management host: the second hop), else None. Vault them in the inventory."""
        host = host or task_vars.get("inventory_hostname")
        user = self.host_var(task_vars, "xcon_target_user", host=host)
        if not user or str(endpoint).lower() == str(host).lower():
            return None
        return str(user), str(self.host_var(task_vars, "xcon_target_password", "", host=host) or "")

    def ldap_port(self, args, task_vars):
        """The server's LDAP port: the option, else host variable xcon_ldap_port, else 389."""
        value = args.get("ldap_port") or self.host_var(task_vars, "xcon_ldap_port") or 389
        try:
            port = int(value)
        except (TypeError, ValueError):
            raise AnsibleActionFail(f"xcon_ldap_port must be a TCP port number, not {value!r}") from None
        if not 1 <= port <= 65535:
            raise AnsibleActionFail(f"xcon_ldap_port must be 1..65535, not {port}")
        return port

    def organization(self, args, task_vars):
        """The Exchange organisation the inventory names (option, else xcon_organization), or None."""
        return args.get("organization") or self.host_var(task_vars, "xcon_organization") or None

    def site(self, args, task_vars):
        """The server's Exchange site (host variable xcon_site), or None: connector searches then
        read only that site's Connections container."""
        return self.host_var(task_vars, "xcon_site") or None

    def server_name(self, args, task_vars):
        return args.get("server") or self.host_var(task_vars, "xcon_server_name") or task_vars.get("inventory_hostname")

    def exchange_servers(self, task_vars):
        """The inventory's Exchange servers as xcon.directory_route reads them (group xcon_exchange)."""
        servers = {}
        for host in task_vars.get("groups", {}).get("xcon_exchange", []) or []:
            servers[host] = {"server": self.host_var(task_vars, "xcon_server_name", host=host) or host,
                             "version": str(self.host_var(task_vars, "xcon_exchange_version", "5.5", host=host)),
                             "site": self.host_var(task_vars, "xcon_site", host=host),
                             "organization": self.host_var(task_vars, "xcon_organization", host=host),
                             "directory_host": self.host_var(task_vars, "xcon_directory_host", host=host)}
        here = task_vars.get("inventory_hostname")
        if not servers:   # an inventory without the group (a module test): the host itself only
            servers[here] = {"server": self.host_var(task_vars, "xcon_server_name") or here,
                             "version": str(self.host_var(task_vars, "xcon_exchange_version", "5.5")),
                             "site": self.host_var(task_vars, "xcon_site"), "organization": None,
                             "directory_host": self.host_var(task_vars, "xcon_directory_host")}
        return servers

    def directory_endpoint(self, task_vars, host, connection_vars=None):
        """(WinRM client, server name, LDAP port) for reaching `host`'s own directory over LDAP
        (`connection_vars`: as for winrm_client)."""
        endpoint = self.host_var(task_vars, "xcon_management_host", host=host) or host
        client = self.winrm_client(task_vars, endpoint, connection_vars)
        client.target_credentials = self.target_credentials(task_vars, endpoint, host=host)
        value = self.host_var(task_vars, "xcon_ldap_port", host=host) or 389
        return client, self.host_var(task_vars, "xcon_server_name", host=host) or host, int(value)

    def xcon_run(self, args, task_vars):  # pragma: no cover - abstract
        raise NotImplementedError
