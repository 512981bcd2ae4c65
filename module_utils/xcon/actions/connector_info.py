"""xcon_connector_info: read a server's X.400 connectors (and its MTA evidence) in one command."""

from __future__ import annotations

import datetime as _dt
import os

from ansible.errors import AnsibleActionFail

from xcon import directory_route
from xcon import fleet_fork
from xcon import gather
from xcon.errors import ACCESS_DENIED, FAILED, XconSecondHop as SecondHop, error_code, error_reason, second_hop_reason
from xcon import state as xstate
from xcon.mask import mask
from xcon.ops import raise_first_failure
from xcon.specs import COMMON, CONNECTOR_INFO
from xcon.action import XconAction


EXCHANGE_VERSIONS = COMMON["exchange_version"]["choices"]


def _forkable(prepared):
    """Whether a host's read may run in a forked process (its client's and its directory's)."""
    return fleet_fork.forkable(prepared.get("client"), (prepared.get("directory") or (None,))[0])


class ActionModule(XconAction):
    ARGUMENT_SPEC = CONNECTOR_INFO

    def xcon_run(self, args, task_vars):
        if args.get("fleet") is not None:
            return self._fleet(args, task_vars)
        if args.get("save_firewall_facts"):
            raise AnsibleActionFail("save_firewall_facts is for a fleet back-up (fleet and save_raw_dir)")
        return self._read(args, self._prepare(args, task_vars, task_vars))

    # -- one host: everything Ansible-side first (main thread), then the wire and the decoding --------
    def _prepare(self, args, view, task_vars, servers=None):
        """What one host's read needs, resolved from its variables (`view`: inventory_hostname and
        hostvars of the host read; `task_vars`: the task's own). Templating and Ansible's plugin
        loader are not thread-safe: the fleet read calls this for every host before its threads."""
        server = self.server_name(args, view)
        profile = gather.get_profile(args["exchange_version"])
        ldap_port, organization = self.ldap_port(args, view), self.organization(args, view)
        site = self.site(args, view)
        # Which directory holds this server's connectors (xcon.directory_route): its own LDAP on 5.5
        # and 5.0 (searches only, no RootDSE), another server's replica for 4.0 (no LDAP at all).
        route = directory_route.read_source(view.get("inventory_hostname"), servers or self.exchange_servers(view))
        prepared = {"host": view.get("inventory_hostname"), "server": server, "profile": profile, "ldap_port": ldap_port,
                    "organization": organization, "site": site, "route": route, "through": self._management_host(args, view, server),
                    "client": None, "directory": None, "error": None, "ops": None}
        if route.get("host") is None:
            return prepared
        prepared["ops"] = gather.audit_ops(server, profile, ldap_port, organization, args["check_write_access"],
                                           args.get("evidence_window_minutes"), site=site, directory=route["own"],
                                           with_root=route["version"] == "5.5")
        try:
            prepared["client"] = self.winrm_client(view, args.get("management_host"), task_vars)
            if not route["own"]:  # the replica's server, through its own endpoint
                prepared["directory"] = self.directory_endpoint(view, route["host"], task_vars)
        except Exception as exc:  # noqa: BLE001 - a connection that cannot be set up is a failed read
            prepared["error"] = exc
        return prepared

    # -- the fleet: every host of the play from this one task --------------------------------------
    def _fleet(self, args, task_vars):
        """Read every host of `fleet` (the play's hosts) from this one task: in each share of the fleet
        (xcon.fleet_fork) each host's settings and arguments resolved one after the other, each
        host's command handed to the share's threads as soon as they are; each host's full result
        goes to result_dir/<host>.json.
        Returns {"hosts": {host: summary}} (a failed host's summary carries xcon_error)."""
        hosts = [str(h) for h in args["fleet"]]
        saved_firewalls = self._save_firewalls(args)  # before any read: a failure here reads nothing
        if args.get("raw_from_dir"):
            return self._backup_from_read(args, hosts, saved_firewalls)
        servers = self.exchange_servers(task_vars)  # once: every host's route is found in it
        # One share of the fleet per core (xcon.fleet_fork): the first in forked processes, the last
        # here; each resolves its hosts and reads them from its threads.  A read a child must not run
        # (its client would kinit) is run here afterwards.
        outcomes = fleet_fork.run_fleet(
            hosts, lambda share, threads, child: self._read_share(args, task_vars, share, servers, threads, child), self.fleet_threads())
        out = {}
        for host in hosts:
            ok, result = outcomes[host]
            if not ok and isinstance(result, fleet_fork.ReaderLost) and not args["fail_on_error"]:
                ok, result = True, self._unread(args, task_vars, host, result)
            if not ok:
                raise result
            # only the summary travels (without result_dir the full result is not kept: a read
            # with save_raw_dir alone wants its raw files, written by _read, and each host's outcome)
            out[host] = result if "result_file" in result else self._summary(result)
        result = {"hosts": {host: out[host] for host in hosts if host in out},
                  # the hosts that could not be read, with why: what the roles name on the console
                  # (a loop over every host's summary cost a templated item per host)
                  "unread": {host: out[host]["xcon_error"] for host in hosts if (out.get(host) or {}).get("xcon_error")},
                  "winrm_commands": sum(r.get("winrm_commands", 0) for r in out.values())}
        if saved_firewalls is not None:
            result["firewalls_saved"] = saved_firewalls
        return result

    @staticmethod
    def _backup_from_read(args, hosts, saved_firewalls):
        """The back-up from what this run's read saved (raw_from_dir): each host's raw answers,
        checked against their checksum, copied to save_raw_dir/<host>.json; no WinRM command.  A
        host without them there (not read by this run) or whose copy fails is not backed up: its
        summary carries xcon_error, as a failed read's."""
        if not args.get("save_raw_dir"):
            raise AnsibleActionFail("raw_from_dir needs save_raw_dir (where the back-up goes)")
        out = {}
        for host in hosts:
            source = os.path.join(args["raw_from_dir"], f"{host}.json")
            try:
                xstate.copy_verified(source, os.path.join(args["save_raw_dir"], f"{host}.json"))
                out[host] = {"winrm_commands": 0}
            except (xstate.StateError, OSError, UnicodeDecodeError) as exc:
                why = "this run did not read it" if not os.path.exists(source) else str(exc)
                out[host] = {"winrm_commands": 0, "xcon_error": {
                    "code": FAILED, "reason": f"not backed up from this run's read ({source}): {why}"}}
        return {"hosts": out, "unread": {h: r["xcon_error"] for h, r in out.items() if "xcon_error" in r},
                "winrm_commands": 0, "firewalls_saved": saved_firewalls}

    @staticmethod
    def _save_firewalls(args):
        """With save_raw_dir: the directory (mode 0700 when this creates it) and each firewall's facts
        of save_firewall_facts in <save_raw_dir>/<firewall>.firewall.json with its SHA-256 sidecar
        (mode 0600).  A firewall the back-up cannot save fails the task as a whole, before any server
        is read.  Returns the firewalls saved (None without save_raw_dir)."""
        if not args.get("save_raw_dir"):
            if args.get("save_firewall_facts"):
                raise AnsibleActionFail("save_firewall_facts needs save_raw_dir (where the back-up goes)")
            return None
        os.makedirs(args["save_raw_dir"], mode=0o700, exist_ok=True)
        saved = []
        for name, facts in sorted((args.get("save_firewall_facts") or {}).items()):
            if not isinstance(facts, dict):
                raise AnsibleActionFail(f"save_firewall_facts: the facts of firewall {name} are not a mapping")
            xstate.write_json_atomic(os.path.join(args["save_raw_dir"], f"{name}.firewall.json"), facts, mode=0o600, checksum=True)
            saved.append(str(name))
        return saved

    def _read_share(self, args, task_vars, hosts, servers, threads, child=False):
        """{host: (True, result) | (False, exception) | DEFER} of `hosts`: each host's settings and
        arguments resolved by this thread, its read handed to `threads` threads as soon as they are
        (a host whose values are wrong is not read: its result says why).  In a forked process
        (`child`) a host whose client would kinit is DEFERred to the worker."""
        outcomes = {}

        def reads():
            for host in hosts:
                own, prepared, unread = self._resolve(args, task_vars, host, servers)
                if unread is not None:
                    outcomes[host] = (True, unread)
                elif child and not _forkable(prepared):
                    outcomes[host] = fleet_fork.DEFER
                else:
                    yield host, self._read, (own, prepared)

        read = fleet_fork.thread_outcomes(reads(), threads)  # fills `outcomes` as it goes
        # a failed read's exception is raised by _fleet, in host order
        return {**outcomes, **read}

    def _own_args(self, args, view, host):
        """The task's arguments as `host` is read with them."""
        return dict(args, fleet=None, server=None, management_host=None,
                    exchange_version=str(self.host_var(view, "xcon_exchange_version", "5.5")),
                    evidence_window_minutes=self._window(args, view),
                    result_file=os.path.join(args["result_dir"], f"{host}.json") if args.get("result_dir") else None,
                    save_raw_to=os.path.join(args["save_raw_dir"], f"{host}.json") if args.get("save_raw_dir") else None)

    def _resolve(self, args, task_vars, host, servers):
        """(host's own arguments, what its read needs, None), or for a host whose values are wrong
        (its own arguments, None, the result that says so)."""
        view = self.host_view(task_vars, host)
        own = self._own_args(args, view, host)
        try:
            if own["exchange_version"] not in EXCHANGE_VERSIONS:
                raise AnsibleActionFail(f"{host}: xcon_exchange_version must be one of {', '.join(EXCHANGE_VERSIONS)}, "
                                        f"not {own['exchange_version']!r}")
            return own, self._prepare(own, view, task_vars, servers), None
        except Exception as exc:  # noqa: BLE001 - this host's values are wrong: it is not read
            if args["fail_on_error"]:
                raise
            return own, None, self._unread(args, task_vars, host, exc, own, view)

    def _unread(self, args, task_vars, host, exc, own=None, view=None):
        """The result of a host that was not read, with why (its file written as a read's)."""
        view = view or self.host_view(task_vars, host)
        own = own or self._own_args(args, view, host)
        return self._to_file(own, {"server": self.server_name(own, view), "winrm_commands": 0,
                                   "xcon_error": {"code": error_code(exc), "reason": error_reason(exc)}})

    def _window(self, args, view):
        """The host's own xcon_evidence_window_minutes, else the task's; none when the task reads no
        evidence (the back-up)."""
        if args.get("evidence_window_minutes") in (None, ""):
            return None
        value = self.host_var(view, "xcon_evidence_window_minutes", args.get("evidence_window_minutes"))
        return int(value) if value not in (None, "") else None

    def _read(self, args, prepared):
        """One host's command on the wire, its answers decoded; the result (or its summary)."""
        server, profile, client = prepared["server"], prepared["profile"], prepared["client"]
        ldap_port, organization, through = prepared["ldap_port"], prepared["organization"], prepared["through"]
        route = prepared["route"]
        result = {"server": server, "winrm_commands": 0, "ldap_port": ldap_port, "directory": route}
        if route.get("host") is None:
            if args["fail_on_error"]:
                raise AnsibleActionFail(f"{server}: {route['reason']}")
            result["xcon_error"] = {"code": gather.NO_DIRECTORY, "reason": route["reason"]}
            return self._to_file(args, result)
        try:
            if prepared["error"] is not None:
                raise prepared["error"]
            result["winrm_commands"] = 1
            results = gather.run(client, prepared["ops"])
            if not route["own"]:
                # the replica's server, through its own endpoint: a second command
                dir_client, dir_server, dir_port = prepared["directory"]
                results.update(gather.run(dir_client, gather.audit_directory_ops(
                    dir_server, profile, dir_port, organization, args["check_write_access"], route["version"] == "5.5",
                    prepared["site"])))
                result["winrm_commands"] = 2
                ldap_port = dir_port
            wrong = gather.directory_problem(results.get("directory"), organization, ldap_port, server)
            code = gather.WRONG_DIRECTORY
            if not wrong:
                wrong, code = gather.search_capped(results.get("connectors"), profile), gather.SEARCH_CAPPED
            if wrong:
                # Never "no connectors found", nor a list that may be short: the link is unknown,
                # and the report says why.
                result["xcon_error"] = {"code": code, "reason": wrong}
                if args["fail_on_error"]:
                    raise AnsibleActionFail(f"{server}: {wrong}")
                return self._to_file(args, result)
            raise_first_failure({k: r for k, r in results.items() if k != "mta_port"})
        except Exception as exc:  # report, don't abort, when asked to
            explicit = getattr(client, "target_credentials", None)   # denied as that account: not the hop
            if through and not explicit and error_code(exc) == ACCESS_DENIED:
                exc = SecondHop(second_hop_reason(server, through, error_reason(exc)))
            if args["fail_on_error"]:
                raise exc
            result["xcon_error"] = {"code": error_code(exc), "reason": error_reason(exc)}
            return self._to_file(args, result)
        if through and gather.anonymous_read(results["connectors"], profile):
            exc = SecondHop(second_hop_reason(server, through, "the directory returned the connectors' names "
                                              "but none of their attributes"))
            if args["fail_on_error"]:
                raise exc
            result["xcon_error"] = {"code": error_code(exc), "reason": error_reason(exc)}
            return self._to_file(args, result)
        result["connectors"] = gather.decode_connectors(results["connectors"], server, profile, args.get("names"))
        result["mta_port"] = gather.mta_port(results.get("mta_port"))
        if gather.mta_port_error(results.get("mta_port")):
            result["mta_port_error"] = gather.mta_port_error(results.get("mta_port"))
        if args["check_write_access"]:
            result["write_access"] = gather.write_access(results["connectors"], profile)
        if args.get("evidence_window_minutes"):
            not_before = xstate.evidence_baseline(args.get("evidence_baseline_file"), server)
            result["evidence"] = gather.queues_by_connector(
                gather.decode_evidence(results, server, args["evidence_window_minutes"], not_before),
                result["connectors"], profile)
        if not (args["include_raw"] or args.get("save_raw_to")):
            return self._to_file(args, result)
        raw = [mask(e) for e in results["connectors"].data.get("entries", [])]
        if args["include_raw"]:
            result["raw"] = raw
        if args.get("save_raw_to"):
            saved = {
                "server": server,
                "inventory_host": prepared["host"],
                "exchange_version": args["exchange_version"],
                "ldap_port": ldap_port,
                "organization": organization,
                "directory": route,
                "saved_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "raw": raw,
                "results": {k: gather.saved_result(r, mask) for k, r in results.items()},
            }
            xstate.write_json_atomic(args["save_raw_to"], saved, mode=0o600, checksum=True)
        return self._to_file(args, result)

    def _management_host(self, args, task_vars, server):
        """The other host this server is read through (its management host), or None."""
        through = args.get("management_host") or self.host_var(task_vars, "xcon_management_host")
        here = task_vars.get("inventory_hostname")
        if not through or str(through).lower() in (str(here).lower(), str(server).lower()):
            return None
        return through

    @staticmethod
    def _to_file(args, result):
        """With result_file: the full result goes to the file, a summary is returned."""
        if not args.get("result_file"):
            return result
        xstate.write_json_atomic(args["result_file"], mask(result), mode=0o600, compact=True)
        return ActionModule._summary(result, args["result_file"])

    @staticmethod
    def _summary(result, result_file=None):
        """What a fleet read returns for one host: server, commands, error, where the rest is."""
        short = {k: result[k] for k in ("server", "winrm_commands", "xcon_error") if k in result}
        if result_file:
            short["result_file"] = result_file
        if "connectors" in result:
            evidence = result.get("evidence") or {}
            short["summary"] = {"connectors": len(result["connectors"]), "events": len(evidence.get("events") or []),
                                "queued": sum((evidence.get("queues") or {}).values())}
        return short
