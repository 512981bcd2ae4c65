"""How a server's replica holds the directory's entries: shared with its seed until the first write,
never changed in place, indexed by site and by Home-MTA (see ``directory.py`` for what LDAP does
with them, ``replication.py`` for how replicas keep in step).

A 300-link lab has 600 replicas of the whole organisation: a replica copies only its mappings at
its first write (entries are shared: a write puts a new entry), and every write keeps the indexes
in step, so no lookup and no write scans the organisation.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from . import schema
from .schema import Dn


class Entry:
    """One directory object: its DN, class chain and attribute values (lists of stored values).

    Never changed in place once in a directory: a write puts a new entry (replicas share entries)."""

    __slots__ = ("dn", "classes", "values")

    def __init__(self, dn: Dn, classes: List[str], values: Dict[str, List[Any]]) -> None:
        self.dn = dn
        self.classes = classes
        self.values = values          # lower-case canonical name -> list of stored values

    @property
    def name(self) -> str:
        return self.dn[0][1]

    def is_a(self, class_name: str) -> bool:
        return class_name.lower() in (c.lower() for c in self.classes)

    def get(self, name: str, default: Any = None) -> Any:
        """First value of an attribute (or default)."""
        found = self.values.get(name.lower())
        return found[0] if found else default

    def get_all(self, name: str) -> List[Any]:
        return list(self.values.get(name.lower()) or [])


def _site_key(dn: Dn) -> Optional[str]:
    """The site (casefold ``ou=``) an object belongs to, or None above the sites."""
    return next((value.casefold() for kind, value in dn if kind == "ou"), None)


def _home_key(entry: Optional[Entry]) -> Optional[tuple]:
    """The Home-MTA key of an X400-Link entry, or None."""
    if entry is None or not entry.is_a("X400-Link"):
        return None
    home = entry.get("Home-MTA")
    return None if home is None else schema.dn_key(home)


class EntryStore:
    """The entries of one replica and their indexes (the model's lock guards them)."""

    def __init__(self) -> None:
        self.entries: Dict[tuple, Entry] = {}
        self.changes = 0                # bumped by every successful write
        self.shared = False             # entries are another replica's until own() copies them
        # indexes, kept in step by put/drop: {site (casefold) or None: {key: None}} and
        # {Home-MTA key: {key: None}} of X400-Link entries (dicts as ordered sets)
        self._by_site: Dict[Optional[str], Dict[tuple, None]] = {}
        self._by_home: Dict[tuple, Dict[tuple, None]] = {}

    def own(self) -> None:
        """Before a change: a replica that still shares its seed's entries takes its own copy (of the
        mappings only: an entry is never changed in place, a write puts a new one)."""
        if self.shared:
            self.entries = dict(self.entries)
            self._by_site = {site: dict(keys) for site, keys in self._by_site.items()}
            self._by_home = {home: dict(keys) for home, keys in self._by_home.items()}
            self.shared = False

    def share(self, seed: "EntryStore") -> None:
        """Hold ``seed``'s entries (and indexes) until the first change (see :meth:`own`)."""
        self.entries, self._by_site, self._by_home = seed.entries, seed._by_site, seed._by_home
        self.changes, self.shared = seed.changes, True

    def put(self, key: tuple, entry: Entry) -> None:
        """Add or replace one entry, keeping the indexes in step (after :meth:`own`)."""
        old = self.entries.get(key)
        self.entries[key] = entry
        if old is None:
            self._by_site.setdefault(_site_key(entry.dn), {})[key] = None
        old_home, new_home = _home_key(old), _home_key(entry)
        if old_home != new_home:
            if old_home is not None:
                self._unindex(self._by_home, old_home, key)
            if new_home is not None:
                self._by_home.setdefault(new_home, {})[key] = None

    def drop(self, key: tuple) -> None:
        """Remove one entry if present, keeping the indexes in step (after :meth:`own`)."""
        old = self.entries.pop(key, None)
        if old is None:
            return
        self._unindex(self._by_site, _site_key(old.dn), key)
        home = _home_key(old)
        if home is not None:
            self._unindex(self._by_home, home, key)

    @staticmethod
    def _unindex(index: Dict[Any, Dict[tuple, None]], name: Any, key: tuple) -> None:
        keys = index.get(name)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del index[name]

    def in_site(self, site: str) -> List[Entry]:
        """The entries of one site, in the directory's order."""
        return [self.entries[key] for key in self._by_site.get(site.casefold(), ())]

    def homed_on(self, mta_key: tuple) -> List[Entry]:
        """The X400-Link entries whose Home-MTA is ``mta_key``."""
        return [self.entries[key] for key in self._by_home.get(mta_key, ())]

    def site_entries(self, dn: Dn) -> Optional[List[Entry]]:
        """The entries of the site ``dn`` is in, in the directory's order; None above the sites."""
        site = _site_key(dn)
        return None if site is None else self.in_site(site)
