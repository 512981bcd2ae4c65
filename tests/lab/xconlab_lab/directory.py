"""One server's replica of the emulated Exchange directory, schema-checked (see ``schema.py``).

Every server holds a replica of the whole organisation (``replication.py`` keeps them in step); a
connector belongs to the server whose MTA its ``Home-MTA`` names. How a replica holds its entries
(shared until its first write, never changed in place, indexed by site and Home-MTA) is
``entries.py``.

Operations mirror what the project's ADSI scripts do (``files/ps/op_dir_*.ps1``):

* :meth:`Directory.search` - base/onelevel/subtree with an objectClass filter and an explicit
  attribute list. Operational attributes (the X.400 link ones) are returned only when named;
  names the schema does not know are ignored, as LDAP does for a search; an empty list or ``*``
  returns every non-operational attribute. Secrets are returned only to an admin account.
* :meth:`Directory.modify` - replace/clear/append/remove, applied all-or-nothing (one SetInfo).
* :meth:`Directory.create` - one object with all its attributes (one SetInfo).
* :meth:`Directory.delete` - one leaf object.

Every refusal is a :class:`schema.DirectoryError` with the category/HRESULT ADSI would give.
Accounts have rights ``admin`` or ``read-only``; a read-only account gets AccessDenied on any write.
"""
from __future__ import annotations

# The constructed attribute that tells a client which attributes it may write (see the toolkit's
# profile ASSUMPTIONS["rights_attribute"]).
ALLOWED_EFFECTIVE = "allowedAttributesEffective"

import copy
from typing import Any, Dict, Iterable, List, Mapping, Optional

from . import schema
from .entries import Entry, EntryStore
from .schema import AttrDef, DirectoryError, Dn

RIGHTS = ("admin", "read-only")


def _attr_json(attr: AttrDef, values: List[Any]) -> Any:
    encoded = [schema.encode_value(attr, v) for v in values]
    return encoded if attr.multi else encoded[0]


class Directory(EntryStore):
    """The directory of one site (not thread-safe by itself: the model's lock guards it)."""

    def __init__(self, organization: str, site: str) -> None:
        super().__init__()
        self.organization = organization
        self.site = site
        self.root: Dn = (("o", organization),)

    # -- bootstrap (the lab's own loader; schema-checked, no rights) ---------------------------
    def add(self, dn: Dn, class_name: str, attributes: Mapping[str, Any]) -> Entry:
        """Add an object from Python values (JSON encodings, as ``create`` takes them)."""
        parent = dn[1:]
        if parent and schema.dn_key(parent) not in self.entries:
            raise DirectoryError("NoSuchObject", f"parent of {schema.format_dn(dn)} missing")
        values = self._decode_attributes(attributes, skip=())
        values[schema.naming_attribute(dn[0][0])] = [dn[0][1]]
        return self._insert(dn, class_name, values)

    # -- lookups -------------------------------------------------------------------------------
    def find(self, dn: Dn) -> Optional[Entry]:
        return self.entries.get(schema.dn_key(dn))

    def require(self, dn_text: str) -> Entry:
        dn = schema.parse_dn(dn_text)
        entry = self.find(dn)
        if entry is None:
            raise DirectoryError("NoSuchObject", f"There is no such object on the server: '{dn_text}'.")
        return entry

    def of_class(self, class_name: str) -> List[Entry]:
        return [e for e in self.entries.values() if e.is_a(class_name)]

    def children(self, dn: Dn) -> List[Entry]:
        key = schema.dn_key(dn)
        return [e for e in self.entries.values() if len(e.dn) == len(dn) + 1 and schema.dn_key(e.dn[1:]) == key]

    # -- search --------------------------------------------------------------------------------
    def search(self, base: str, scope: str, classes: Iterable[str] = (), attributes: Iterable[str] = (),
               rights: str = "admin") -> List[Dict[str, Any]]:
        """Entries as JSON: ``{"dn", "objectClass", "attributes"}`` (see the module docstring)."""
        if scope not in ("base", "onelevel", "subtree"):
            raise DirectoryError("InvalidParameter", f"scope must be base, onelevel or subtree, not '{scope}'")
        base_dn = self.root if (base or "").strip() == "" else schema.parse_dn(base)
        if self.find(base_dn) is None:
            raise DirectoryError("NoSuchObject", f"There is no such object on the server: '{base}'.")
        wanted_classes = {str(c).lower() for c in classes or ()}
        names = [str(n) for n in attributes or ()]
        all_user = not names or "*" in names
        hits = []
        in_site = self.site_entries(base_dn)   # a base inside a site: only that site's entries can be under it
        for entry in self.entries.values() if in_site is None else in_site:
            if scope == "base" and schema.dn_key(entry.dn) != schema.dn_key(base_dn):
                continue
            if scope == "onelevel" and not (len(entry.dn) == len(base_dn) + 1 and schema.is_under(entry.dn, base_dn)):
                continue
            if scope == "subtree" and not schema.is_under(entry.dn, base_dn):
                continue
            if wanted_classes and not wanted_classes & {c.lower() for c in entry.classes}:
                continue
            hits.append(self._entry_json(entry, names, all_user, rights))
        return hits

    def _entry_json(self, entry: Entry, names: List[str], all_user: bool, rights: str) -> Dict[str, Any]:
        if rights == "anonymous":
            # An anonymous bind (the second hop of a management host without delegation) sees an
            # object's class and name only: none of the configuration attributes.
            out = {n: _attr_json(schema.ATTRIBUTES["rdn"], entry.values["rdn"])
                   for n in names if n.lower() == "rdn" and entry.values.get("rdn")}
            return {"dn": schema.format_dn(entry.dn), "objectClass": list(entry.classes), "attributes": out}
        out: Dict[str, Any] = {}
        if all_user:
            for key, values in entry.values.items():
                attr = schema.ATTRIBUTES[key]
                if not attr.operational and not attr.secret and values:
                    out[attr.name] = _attr_json(attr, values)
        for name in names:
            if name == "*":
                continue
            if name.lower() == ALLOWED_EFFECTIVE.lower():
                # Constructed attribute: the attributes this account may write on this entry
                # (every schema attribute of the entry's classes for admin, none for read-only).
                out[name] = sorted(a.name for a in schema.ATTRIBUTES.values() if not a.system) if rights == "admin" else []
                continue
            attr = schema.attribute(name)
            if attr is None:
                continue                                     # LDAP ignores unknown names in a search
            if attr.system:
                out[name] = list(entry.classes)
                continue
            if attr.secret and rights != "admin":
                continue
            values = entry.values.get(attr.name.lower())
            if values:
                out[name] = _attr_json(attr, values)
        return {"dn": schema.format_dn(entry.dn), "objectClass": list(entry.classes), "attributes": out}

    def entry_json(self, entry: Entry, mask_secrets: bool = True) -> Dict[str, Any]:
        """Every attribute of an entry (operational ones included) for the lab's snapshot:
        N-Address as its text, other octet strings as hex, secrets masked."""
        out: Dict[str, Any] = {}
        for key, values in entry.values.items():
            attr = schema.ATTRIBUTES[key]
            if not values:
                continue
            if attr.secret and mask_secrets:
                out[attr.name] = "********"
            elif attr.name == "N-Address":
                out[attr.name] = values[0].decode("ascii", errors="replace")
            else:
                out[attr.name] = _attr_json(attr, values)
        return {"dn": schema.format_dn(entry.dn), "objectClass": list(entry.classes), "attributes": out}

    # -- writes --------------------------------------------------------------------------------
    @staticmethod
    def _check_write(rights: str, what: str) -> None:
        if rights != "admin":
            raise DirectoryError("AccessDenied", f"{what}: General access denied error (the account "
                                 "lacks the Modify Admin Attributes right).")

    def modify(self, dn_text: str, changes: List[Mapping[str, Any]], rights: str = "admin") -> List[str]:
        """Apply every change or none; returns the attribute names as given."""
        self.own()
        entry = self.require(dn_text)
        self._check_write(rights, f"modify {dn_text}")
        if not isinstance(changes, list) or not changes:
            raise DirectoryError("InvalidParameter", "changes must be a non-empty list")
        values = copy.deepcopy(entry.values)
        mandatory, allowed = schema.allowed_attributes(entry.classes)
        rdn_attr = schema.naming_attribute(entry.dn[0][0])
        modified = []
        for change in changes:
            if not isinstance(change, Mapping):
                raise DirectoryError("InvalidParameter", f"a change must be an object, not {change!r}")
            name = change.get("attribute")
            action = change.get("action", "replace")
            if not isinstance(name, str) or not name:
                raise DirectoryError("InvalidParameter", "a change needs an 'attribute' name")
            if action not in ("replace", "clear", "append", "remove"):
                raise DirectoryError("InvalidParameter",
                                     f"action must be replace, clear, append or remove, not '{action}'")
            attr = schema.require_attribute(name)
            key = attr.name.lower()
            if attr.system:
                raise DirectoryError("ObjectClassViolation", f"{name}: the object class of an object cannot be changed")
            if key not in allowed:
                raise DirectoryError("ObjectClassViolation",
                                     f"{name} is not allowed on an object of class {entry.classes[-1]}")
            if key == rdn_attr:
                raise DirectoryError("ConstraintViolation",
                                     f"{name} is the naming attribute; it cannot be modified (rename the object)")
            raw = change.get("values")
            if action != "clear":
                if raw is None or raw == []:
                    raise DirectoryError("InvalidParameter", f"change of '{name}' ({action}) needs values")
                if not isinstance(raw, list):
                    raw = [raw]
                new = [schema.decode_value(attr, v) for v in raw]
                self._check_references(attr, new)
            current = values.get(key, [])
            if action == "clear":
                values.pop(key, None)
            elif action == "replace":
                if not attr.multi and len(new) > 1:
                    raise DirectoryError("ConstraintViolation", f"{name} is single-valued; {len(new)} values given")
                values[key] = new
            elif action == "append":
                merged = list(current)
                for value in new:
                    if any(schema.values_equal(attr, value, old) for old in merged):
                        raise DirectoryError("ConstraintViolation", f"{name}: the value already exists")
                    merged.append(value)
                if not attr.multi and len(merged) > 1:
                    raise DirectoryError("ConstraintViolation", f"{name} is single-valued and already has a value")
                values[key] = merged
            else:  # remove
                kept = [old for old in current if not any(schema.values_equal(attr, old, v) for v in new)]
                if kept:
                    values[key] = kept
                else:
                    values.pop(key, None)
            modified.append(name)
        missing = sorted(m for m in mandatory if not values.get(m) and m != "objectclass")
        if missing:
            raise DirectoryError("ObjectClassViolation", f"mandatory attribute(s) {', '.join(self._canon(missing))} "
                                 f"cannot be removed from {dn_text}")
        self.put(schema.dn_key(entry.dn), Entry(entry.dn, entry.classes, values))
        self.changes += 1
        return modified

    def create(self, parent_text: str, cn: str, class_name: str, attributes: Mapping[str, Any],
               rights: str = "admin") -> str:
        """Create one object; returns its LDAP DN (``cn=ESCAPED,`` + the parent as given)."""
        self.own()
        parent = self.require(parent_text)
        self._check_write(rights, f"create under {parent_text}")
        if not isinstance(cn, str) or cn == "":
            raise DirectoryError("InvalidParameter", "cn must be a non-empty string")
        definition = schema.CLASSES.get(str(class_name).lower())
        if definition is None or not definition.creatable:
            raise DirectoryError("ObjectClassViolation", f"'{class_name}' is not a class that can be created")
        if definition.rdn != "cn":
            raise DirectoryError("ObjectClassViolation", f"'{class_name}' is not named by cn")
        if not any(parent.is_a(s) for s in definition.superiors):
            raise DirectoryError("ObjectClassViolation",
                                 f"an object of class {definition.name} cannot be created under {parent.classes[-1]}")
        if not isinstance(attributes, Mapping):
            raise DirectoryError("InvalidParameter", "attributes must be an object")
        schema.decode_value(schema.ATTRIBUTES["rdn"], cn)     # length check of the directory name
        dn: Dn = (("cn", cn),) + parent.dn
        if self.find(dn) is not None:
            raise DirectoryError("AlreadyExists", f"The object already exists: '{schema.format_dn(dn)}'.")
        chain = schema.class_chain(definition.name)
        # The `cn=` of the new RDN sets `rdn` (Common-Name); `cn` is Display-Name, an ordinary
        # attribute the caller may Put like any other.
        values = self._decode_attributes(attributes, skip=("rdn",), chain=chain)
        values["rdn"] = [cn]
        self._insert(dn, definition.name, values)
        return f"cn={schema.escape_value(cn)},{parent_text}"

    def delete(self, dn_text: str, rights: str = "admin") -> str:
        self.own()
        entry = self.require(dn_text)
        self._check_write(rights, f"delete {dn_text}")
        if self.children(entry.dn):
            raise DirectoryError("ConstraintViolation", f"{dn_text} is not a leaf object and cannot be deleted")
        if not schema.CLASSES[entry.classes[-1].lower()].creatable:
            raise DirectoryError("AccessDenied", f"{dn_text} is a system object and cannot be deleted")
        self.drop(schema.dn_key(entry.dn))
        self.changes += 1
        return dn_text

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _canon(keys: Iterable[str]) -> List[str]:
        return [schema.ATTRIBUTES[k].name if k in schema.ATTRIBUTES else k for k in keys]

    def _check_references(self, attr: AttrDef, values: List[Any]) -> None:
        """Home-MTA must name an MTA and Supporting-Stack a stack object of this directory."""
        required = {"home-mta": "MTA", "supporting-stack": "RFC1006-Stack"}.get(attr.name.lower())
        if required is None:
            return
        for dn in values:
            target = self.find(dn)
            if target is None or not target.is_a(required):
                raise DirectoryError("ConstraintViolation", f"{attr.name}: '{schema.format_dn(dn)}' does not name an "
                                     f"existing {required} object of this site")

    def _decode_attributes(self, attributes: Mapping[str, Any], skip: Iterable[str],
                           chain: Optional[List[str]] = None) -> Dict[str, List[Any]]:
        values: Dict[str, List[Any]] = {}
        allowed = schema.allowed_attributes(chain)[1] if chain else None
        for name, raw in attributes.items():
            attr = schema.require_attribute(name)
            key = attr.name.lower()
            if key in skip:
                continue
            if attr.system:
                given = raw if isinstance(raw, list) else [raw]
                if chain and {str(c).lower() for c in given} - {c.lower() for c in chain}:
                    raise DirectoryError("ObjectClassViolation", f"objectClass {given!r} does not match the class")
                continue
            if allowed is not None and key not in allowed:
                raise DirectoryError("ObjectClassViolation", f"{name} is not allowed on an object of class {chain[-1]}")
            items = raw if isinstance(raw, list) else [raw]
            if not attr.multi and len(items) > 1:
                raise DirectoryError("ConstraintViolation", f"{name} is single-valued; {len(items)} values given")
            if not items:
                continue
            decoded = [schema.decode_value(attr, v) for v in items]
            self._check_references(attr, decoded)
            values[key] = decoded
        return values

    def _insert(self, dn: Dn, class_name: str, values: Dict[str, List[Any]]) -> Entry:
        chain = schema.class_chain(class_name)
        mandatory, _ = schema.allowed_attributes(chain)
        missing = sorted(m for m in mandatory if not values.get(m) and m != "objectclass")
        if missing:
            raise DirectoryError("ObjectClassViolation", f"mandatory attribute(s) {', '.join(self._canon(missing))} "
                                 f"missing for a new {class_name}")
        entry = Entry(dn, chain, values)
        self.own()
        self.put(schema.dn_key(dn), entry)
        self.changes += 1
        return entry
