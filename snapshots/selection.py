"""Which objects a snapshot keeps, or a restore applies: namespaces, kinds, labels, cluster scope.

Pure code: objects are the plain JSON dicts the API server returns; nothing here does I/O.

Kind patterns (``include_kinds`` / ``exclude_kinds``), matched case-insensitively on the kind:

- ``Kind`` matches that kind in any group (``Event`` is both ``v1`` and ``events.k8s.io`` Events);
- ``group/Kind`` matches it in one group, any version (``apps/Deployment``); the core group is
  written ``core/ConfigMap`` or ``/ConfigMap``, and ``v1/ConfigMap`` (a version where a group would
  be) means the core group at version v1;
- ``group/version/Kind`` matches one version of one group (``apps/v1/Deployment``,
  ``core/v1/Secret``).

Namespace patterns are DNS-1123 labels in which the fnmatch characters ``*?[]`` are allowed; an
empty include list means every namespace, and an exclude always wins over an include.

The label selector uses Kubernetes' grammar: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
``k notin (a,b)``, ``k`` (exists) and ``!k`` (does not exist), joined by commas. The snapshot passes
it to the server's list calls (`list_label_selector`) and `wants` evaluates it again in Python, so a
restore filters a snapshot's objects with exactly the same meaning.

Two choices worth knowing:

- Namespace objects are kept when their *name* is wanted, whatever the label selector and
  ``cluster_scoped`` say: selecting ``app=web`` must still restore the namespaces its objects live
  in. `list_label_selector` therefore returns None for the Namespace list.
- Other cluster-scoped objects (CRDs included) are kept only when ``cluster_scoped`` is on and their
  kind is wanted; the label selector applies to them as to everything else.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orgs.exceptions import ValidationFailed

_NAMESPACE_PATTERN = re.compile(r"^[a-z0-9*?\[\]]([-a-z0-9*?\[\]]{0,61}[a-z0-9*?\[\]])?$")
_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_GROUP = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VERSION = re.compile(r"^v[0-9]+((alpha|beta)[0-9]+)?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_LIST_KEYS = ("include_namespaces", "exclude_namespaces", "include_kinds", "exclude_kinds")
_KNOWN_KEYS = frozenset((*_LIST_KEYS, "label_selector", "cluster_scoped"))


class SelectionInvalid(ValidationFailed):
    """A selection (or a restore's selection keys) that cannot be used; `field` names the bad part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", fields={field: [message]})
        self.field = field
        self.reason = message


def split_api_version(api_version: str) -> tuple[str, str]:
    """``apps/v1`` → (``apps``, ``v1``); ``v1`` → (``""``, ``v1``): the core group is empty."""
    group, _, version = api_version.rpartition("/")
    return group, version


@dataclass(frozen=True)
class KindPattern:
    """One parsed kind pattern; ``group``/``version`` None means any."""

    kind: str
    group: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> KindPattern:
        """Parse ``Kind``, ``group/Kind`` or ``group/version/Kind``; ValueError says why not."""
        parts = text.strip().split("/")
        if len(parts) > 3 or not text.strip():
            raise ValueError("expected Kind, group/Kind or group/version/Kind")
        kind = parts[-1]
        if not _KIND.match(kind):
            raise ValueError(f"{kind!r} is not a kind name")
        group: str | None = None
        version: str | None = None
        if len(parts) == 2:
            first = parts[0]
            if _VERSION.match(first):
                group, version = "", first
            else:
                group = _group_of(first)
        elif len(parts) == 3:
            group = _group_of(parts[0])
            if not _VERSION.match(parts[1]):
                raise ValueError(f"{parts[1]!r} is not an API version such as v1 or v1beta1")
            version = parts[1]
        return cls(kind=kind.lower(), group=group, version=version)

    def matches(self, group: str, version: str, kind: str) -> bool:
        """Whether a resource of that group, version and kind is this pattern's."""
        if kind.lower() != self.kind:
            return False
        if self.group is not None and group != self.group:
            return False
        return self.version is None or version == self.version


def _group_of(text: str) -> str:
    if text in ("", "core"):
        return ""
    if not _GROUP.match(text):
        raise ValueError(f"{text!r} is not an API group")
    return text


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: ``key`` ``op`` ``values``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether labels satisfy this term (Kubernetes' semantics: != and notin match absence)."""
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values

    def render(self) -> str:
        """This term in the canonical text form the API server accepts."""
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in ("=", "!="):
            return f"{self.key}{self.op}{self.values[0]}"
        return f"{self.key} {self.op} ({','.join(self.values)})"


def parse_label_selector(text: str) -> tuple[Requirement, ...]:
    """Parse a Kubernetes label selector; ValueError says what is wrong and where."""
    terms: list[Requirement] = []
    for raw in _split_terms(text):
        terms.append(_parse_term(raw.strip()))
    return tuple(terms)


def _split_terms(text: str) -> list[str]:
    # Commas separate terms except inside the parentheses of an in/notin set.
    terms: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
            if depth > 1:
                raise ValueError("nested parentheses")
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced parentheses")
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise ValueError("unbalanced parentheses")
    terms.append("".join(current))
    if len(terms) == 1 and not terms[0].strip():
        return []
    if any(not term.strip() for term in terms):
        raise ValueError("empty term (two commas in a row, or a comma at an end)")
    return terms


_SET_TERM = re.compile(r"^(?P<key>[^\s(),!=]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ_TERM = re.compile(r"^(?P<key>[^\s(),!=]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s(),!=]*)$")


def _parse_term(term: str) -> Requirement:
    match = _SET_TERM.match(term)
    if match:
        values = tuple(value.strip() for value in match["values"].split(","))
        if values == ("",):
            raise ValueError(f"{term!r}: a set needs at least one value")
        for value in values:
            _check_value(value, term)
        return Requirement(_check_key(match["key"], term), match["op"], tuple(sorted(set(values))))
    match = _EQ_TERM.match(term)
    if match:
        _check_value(match["value"], term)
        op = "=" if match["op"] == "==" else match["op"]
        return Requirement(_check_key(match["key"], term), op, (match["value"],))
    if term.startswith("!"):
        return Requirement(_check_key(term[1:].strip(), term), "!")
    if any(char in term for char in "<>"):
        raise ValueError(f"{term!r}: the operators > and < are not supported here")
    return Requirement(_check_key(term, term), "exists")


def _check_key(key: str, term: str) -> str:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _GROUP.match(prefix)):
        raise ValueError(f"{term!r}: {prefix!r} is not a DNS subdomain prefix")
    if not _LABEL_NAME.match(name):
        raise ValueError(f"{term!r}: {name!r} is not a label name")
    return key


def _check_value(value: str, term: str) -> None:
    if not _LABEL_VALUE.match(value):
        raise ValueError(f"{term!r}: {value!r} is not a label value")


@dataclass(frozen=True)
class Selection:
    """A validated selection; the default (all empty) keeps everything a snapshot can keep."""

    include_namespaces: tuple[str, ...] = ()
    exclude_namespaces: tuple[str, ...] = ()
    include_kinds: tuple[str, ...] = ()
    exclude_kinds: tuple[str, ...] = ()
    label_selector: str = ""
    cluster_scoped: bool = True
    _include_kinds: tuple[KindPattern, ...] = field(default=(), init=False, repr=False, compare=False)
    _exclude_kinds: tuple[KindPattern, ...] = field(default=(), init=False, repr=False, compare=False)
    _requirements: tuple[Requirement, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate and pre-parse, so that a Selection that exists is always usable."""
        for name in _LIST_KEYS:
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        for name in ("include_namespaces", "exclude_namespaces"):
            for index, pattern in enumerate(getattr(self, name)):
                if not isinstance(pattern, str) or not _NAMESPACE_PATTERN.match(pattern):
                    raise SelectionInvalid(
                        f"{name}[{index}]",
                        f"{pattern!r} is not a namespace name or pattern (lower-case letters, "
                        "digits, '-', and the globs * ? [ ]; at most 63 characters)",
                    )
        object.__setattr__(self, "_include_kinds", _kind_patterns("include_kinds", self.include_kinds))
        object.__setattr__(self, "_exclude_kinds", _kind_patterns("exclude_kinds", self.exclude_kinds))
        if not isinstance(self.label_selector, str):
            raise SelectionInvalid("label_selector", "must be a string")
        try:
            requirements = parse_label_selector(self.label_selector)
        except ValueError as error:
            raise SelectionInvalid("label_selector", str(error)) from None
        object.__setattr__(self, "_requirements", requirements)
        if not isinstance(self.cluster_scoped, bool):
            raise SelectionInvalid("cluster_scoped", "must be true or false")

    @classmethod
    def parse(cls, data: Mapping[str, Any], *, allow: Iterable[str] = ()) -> Selection:
        """Build from the JSON form; unknown keys are refused unless listed in `allow`."""
        if not isinstance(data, Mapping):
            raise SelectionInvalid("selection", "must be an object")
        allowed = _KNOWN_KEYS | frozenset(allow)
        for key in data:
            if key not in allowed:
                raise SelectionInvalid(str(key), "unknown selection key")
        lists: dict[str, tuple[str, ...]] = {}
        for key in _LIST_KEYS:
            # null means "not given"; any other falsy value of the wrong type is refused.
            value = data.get(key)
            value = [] if value is None else value
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise SelectionInvalid(key, "must be a list of strings")
            for index, item in enumerate(value):
                if not isinstance(item, str):
                    raise SelectionInvalid(f"{key}[{index}]", "must be a string")
            lists[key] = tuple(value)
        given = data.get("label_selector")
        label_selector = "" if given is None else given
        cluster_scoped = data.get("cluster_scoped", True)
        return cls(
            include_namespaces=lists["include_namespaces"],
            exclude_namespaces=lists["exclude_namespaces"],
            include_kinds=lists["include_kinds"],
            exclude_kinds=lists["exclude_kinds"],
            label_selector=label_selector,
            cluster_scoped=cluster_scoped,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what `parse` reads back)."""
        return {
            "include_namespaces": list(self.include_namespaces),
            "exclude_namespaces": list(self.exclude_namespaces),
            "include_kinds": list(self.include_kinds),
            "exclude_kinds": list(self.exclude_kinds),
            "label_selector": self.label_selector,
            "cluster_scoped": self.cluster_scoped,
        }

    def wants_kind(self, group: str, version: str, kind: str) -> bool:
        """The kind filters alone: included (or no include list) and not excluded."""
        if self._include_kinds and not any(p.matches(group, version, kind) for p in self._include_kinds):
            return False
        return not any(p.matches(group, version, kind) for p in self._exclude_kinds)

    def wants_resource(self, group: str, version: str, kind: str, namespaced: bool) -> bool:
        """Whether to list this resource at all: its kind, and cluster scope (Namespaces always)."""
        if not self.wants_kind(group, version, kind):
            return False
        if namespaced or _is_namespace_kind(group, kind):
            return True
        return self.cluster_scoped

    def wants_namespace(self, namespace: str) -> bool:
        """The namespace globs: included (or no include list) and not excluded."""
        if any(fnmatch.fnmatchcase(namespace, p) for p in self.exclude_namespaces):
            return False
        if not self.include_namespaces:
            return True
        return any(fnmatch.fnmatchcase(namespace, p) for p in self.include_namespaces)

    def explicitly_includes(self, namespace: str) -> bool:
        """An include pattern names it deliberately: exactly, or a glob spelt out with its prefix.

        The restore leaves the ``kube-*`` namespaces out unless they were explicitly included;
        ``kube-system`` and ``kube-*`` include kube-system, ``*`` and ``k*`` do not.
        """
        if not self.wants_namespace(namespace):
            return False
        for pattern in self.include_namespaces:
            literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
            if fnmatch.fnmatchcase(namespace, pattern) and (
                literal == namespace or literal.startswith("kube-")
            ):
                return True
        return False

    def wants_labels(self, labels: Mapping[str, str]) -> bool:
        """The label selector alone."""
        return all(requirement.matches(labels) for requirement in self._requirements)

    def wants(self, obj: Mapping[str, Any]) -> bool:
        """The whole decision for one object: kind and scope, namespace, labels."""
        group, version = split_api_version(str(obj.get("apiVersion", "")))
        kind = str(obj.get("kind", ""))
        metadata = obj.get("metadata") or {}
        namespace = metadata.get("namespace") or ""
        if _is_namespace_kind(group, kind):
            return self.wants_kind(group, version, kind) and self.wants_namespace(
                str(metadata.get("name", ""))
            )
        if not self.wants_resource(group, version, kind, namespaced=bool(namespace)):
            return False
        if namespace and not self.wants_namespace(namespace):
            return False
        return self.wants_labels(metadata.get("labels") or {})

    def list_label_selector(self, group: str = "", kind: str = "") -> str | None:
        """The labelSelector for the list call of that resource (None: list without one)."""
        if not self._requirements or _is_namespace_kind(group, kind):
            return None
        return ",".join(requirement.render() for requirement in self._requirements)


def _kind_patterns(name: str, patterns: tuple[str, ...]) -> tuple[KindPattern, ...]:
    parsed: list[KindPattern] = []
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            raise SelectionInvalid(f"{name}[{index}]", "must be a string")
        try:
            parsed.append(KindPattern.parse(pattern))
        except ValueError as error:
            raise SelectionInvalid(f"{name}[{index}]", str(error)) from None
    return tuple(parsed)


def _is_namespace_kind(group: str, kind: str) -> bool:
    return group == "" and kind == "Namespace"
