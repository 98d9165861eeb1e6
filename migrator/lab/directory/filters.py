"""Search filters as AD evaluates them, over the RFC 4511 ``Filter`` a pyasn1 decoder produced.

What is modelled (AD's behaviour, [MS-ADTS] 3.1.1.3.1.3):

- and / or / not, equality, presence, substrings, greater-or-equal / less-or-equal, approximate (as equality);
- string values compare case-insensitively; DN-valued attributes (``member``, ``memberOf``, ``objectCategory``,
  ...) compare as DNs; integer attributes (``userAccountControl``, ``groupType``, ...) as integers; binary ones
  (``objectSid``, ``objectGUID``) byte for byte, and ``objectSid`` also accepts the ``S-1-5-...`` form;
- ``objectCategory=computer`` (a class name instead of a DN) means the class's default category, as AD does;
- extensible matches with the rules AD implements: ``LDAP_MATCHING_RULE_BIT_AND`` (1.2.840.113556.1.4.803),
  ``LDAP_MATCHING_RULE_BIT_OR`` (.804) and ``LDAP_MATCHING_RULE_IN_CHAIN`` (.1941) on ``memberOf`` (the entry is in
  the group through any nesting) or ``member`` (the group holds the entry through any nesting).

Any other matching rule raises :class:`~migrator.lab.directory.dit.DirectoryError` (unwillingToPerform, "not
modelled by the lab"): never a silent false.
"""

from __future__ import annotations

from typing import Any

from migrator.lab.directory.dit import (
    UNWILLING_TO_PERFORM,
    Directory,
    DirectoryError,
    Entry,
    Value,
    dn_key,
    sid_to_bytes,
)

IN_CHAIN = "1.2.840.113556.1.4.1941"
BIT_AND = "1.2.840.113556.1.4.803"
BIT_OR = "1.2.840.113556.1.4.804"

BINARY_ATTRIBUTES = frozenset({"objectsid", "objectguid", "ntsecuritydescriptor"})
DN_ATTRIBUTES = frozenset(
    {
        "distinguishedname",
        "member",
        "memberof",
        "objectcategory",
        "msds-neverrevealgroup",
        "msds-revealondemandgroup",
        "msds-krbtgtlink",
        "manager",
    }
)
INTEGER_ATTRIBUTES = frozenset(
    {"useraccountcontrol", "grouptype", "primarygroupid", "samaccounttype", "flags", "versionnumber"}
)
# defaultObjectCategory of the classes an objectCategory filter may name by class ([MS-ADSC]).
_CATEGORY_OF_CLASS = {"user": "person", "person": "person", "computer": "computer", "group": "group"}


def _text(value: Any) -> str:
    return bytes(value).decode("utf-8", errors="replace")


def _as_int(value: Value | str) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class FilterEvaluator:
    """Evaluates one decoded filter against entries of one directory."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._chains: dict[str, set[str]] = {}  # group key -> keys of its members in chain, once per search
        self._sam_sets: dict[int, frozenset[str] | None] = {}  # an OR of sAMAccountName equalities -> its names

    def _members_in_chain(self, group_dn: str) -> set[str]:
        key = dn_key(group_dn)
        if key not in self._chains:
            self._chains[key] = self.directory.members_in_chain(group_dn)
        return self._chains[key]

    def _sam_set(self, alternatives: Any) -> frozenset[str] | None:
        """The names of an OR whose every alternative is ``sAMAccountName=<name>`` (None otherwise), once per
        search."""
        if id(alternatives) not in self._sam_sets:
            names: set[str] | None = set()
            for sub in alternatives:
                item = sub.getComponent()
                if sub.getName() != "equalityMatch" or _text(item["attributeDesc"]).casefold() != "samaccountname":
                    names = None
                    break
                assert names is not None
                names.add(bytes(item["assertionValue"]).decode("utf-8", "replace").casefold())
            self._sam_sets[id(alternatives)] = frozenset(names) if names is not None else None
        return self._sam_sets[id(alternatives)]

    def indexed(self, flt: Any) -> list[Entry] | None:
        """The only entries that can match ``flt`` when it pins sAMAccountName (alone, ORed, or ANDed with
        anything), found through the attribute's index as AD's query processor does; None when it does not (the
        caller then evaluates every entry in scope). Each candidate is still checked with :meth:`matches`."""
        kind = flt.getName()
        item = flt.getComponent()
        if kind == "equalityMatch" and _text(item["attributeDesc"]).casefold() == "samaccountname":
            found = self.directory.by_sam_account_name(bytes(item["assertionValue"]).decode("utf-8", "replace"))
            return [found] if found is not None else []
        if kind == "or":
            union: dict[str, Entry] = {}
            for sub in item:
                part = self.indexed(sub)
                if part is None:
                    return None
                union.update((e.key, e) for e in part)
            return list(union.values())
        if kind == "and":
            for sub in item:
                part = self.indexed(sub)
                if part is not None:
                    return part
        return None

    def matches(self, entry: Entry, flt: Any) -> bool:
        kind = flt.getName()
        item = flt.getComponent()
        if kind == "and":
            return all(self.matches(entry, sub) for sub in item)
        if kind == "or":
            names = self._sam_set(item)
            if names is not None:  # one set lookup instead of comparing each alternative in turn
                return entry.text("sAMAccountName").casefold() in names
            return any(self.matches(entry, sub) for sub in item)
        if kind == "notFilter":
            return not self.matches(entry, item.getComponent())
        if kind == "present":
            name = _text(item)
            return name.casefold() == "objectclass" or entry.has(name)
        if kind in ("equalityMatch", "approxMatch"):
            return self._equal(entry, _text(item["attributeDesc"]), bytes(item["assertionValue"]))
        if kind in ("greaterOrEqual", "lessOrEqual"):
            return self._order(entry, _text(item["attributeDesc"]), bytes(item["assertionValue"]), kind)
        if kind == "substringFilter":
            return self._substrings(entry, _text(item["type"]), item["substrings"])
        if kind == "extensibleMatch":
            return self._extensible(entry, item)
        raise DirectoryError(UNWILLING_TO_PERFORM, f"filter {kind!r} is not modelled by the lab")

    # ---- items ------------------------------------------------------------------------------------------

    def _equal(self, entry: Entry, name: str, raw: bytes) -> bool:
        attr = name.casefold()
        values = entry.get(name)
        if not values:
            return False
        if attr in BINARY_ATTRIBUTES:
            wanted = raw
            if attr == "objectsid" and raw[:2].upper() == b"S-":
                try:
                    wanted = sid_to_bytes(raw.decode("ascii"))
                except ValueError:
                    return False
            return any(v == wanted for v in values)
        text = raw.decode("utf-8", errors="replace")
        if attr == "objectcategory" and "=" not in text:
            category = _CATEGORY_OF_CLASS.get(text.casefold(), text.casefold())
            return any(isinstance(v, str) and v.split(",", 1)[0].casefold() == f"cn={category}" for v in values)
        if attr in DN_ATTRIBUTES:
            key = dn_key(text)
            return any(isinstance(v, str) and dn_key(v) == key for v in values)
        if attr in INTEGER_ATTRIBUTES:
            number = _as_int(text)
            return number is not None and any(_as_int(v) == number for v in values)
        folded = text.casefold()
        return any(isinstance(v, str) and v.casefold() == folded for v in values)

    def _order(self, entry: Entry, name: str, raw: bytes, kind: str) -> bool:
        text = raw.decode("utf-8", errors="replace")
        values = [v for v in entry.get(name) if isinstance(v, str)]
        number = _as_int(text)
        ge = kind == "greaterOrEqual"
        if name.casefold() in INTEGER_ATTRIBUTES and number is not None:
            ints = [n for n in (_as_int(v) for v in values) if n is not None]
            return any((n >= number) if ge else (n <= number) for n in ints)
        folded = text.casefold()
        return any((v.casefold() >= folded) if ge else (v.casefold() <= folded) for v in values)

    @staticmethod
    def _substrings(entry: Entry, name: str, parts: Any) -> bool:
        for value in entry.get(name):
            if not isinstance(value, str):
                continue
            text = value.casefold()
            position = 0
            ok = True
            for part in parts:
                which = part.getName()
                piece = _text(part.getComponent()).casefold()
                if which == "initial":
                    if not text.startswith(piece):
                        ok = False
                        break
                    position = len(piece)
                elif which == "any":
                    found = text.find(piece, position)
                    if found < 0:
                        ok = False
                        break
                    position = found + len(piece)
                elif not (text.endswith(piece) and len(text) - len(piece) >= position):
                    ok = False
                    break
            if ok:
                return True
        return False

    def _extensible(self, entry: Entry, item: Any) -> bool:
        rule = _text(item["matchingRule"]) if item["matchingRule"].hasValue() else ""
        name = _text(item["type"]) if item["type"].hasValue() else ""
        value = _text(item["matchValue"])
        if bool(item["dnAttributes"]):
            raise DirectoryError(UNWILLING_TO_PERFORM, "dnAttributes in an extensible match is not modelled by the lab")
        if rule in (BIT_AND, BIT_OR):
            mask = _as_int(value)
            if mask is None:
                return False
            for current in entry.get(name):
                number = _as_int(current)
                if number is None:
                    continue
                number &= 0xFFFFFFFF
                mask32 = mask & 0xFFFFFFFF
                if (rule == BIT_AND and number & mask32 == mask32) or (rule == BIT_OR and number & mask32):
                    return True
            return False
        if rule == IN_CHAIN:
            attr = name.casefold()
            if attr == "memberof":
                return entry.key in self._members_in_chain(value)
            if attr == "member":
                return dn_key(value) in self._members_in_chain(entry.dn)
            # Other linked attributes are not modelled: refuse rather than answer "no match".
            raise DirectoryError(
                UNWILLING_TO_PERFORM, f"LDAP_MATCHING_RULE_IN_CHAIN on {name!r} is not modelled by the lab"
            )
        raise DirectoryError(UNWILLING_TO_PERFORM, f"matching rule {rule or '(none)'!r} is not modelled by the lab")
