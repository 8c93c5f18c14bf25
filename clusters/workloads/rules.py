"""Kubernetes' own rules for single values, restated so a bad value is refused before it is sent.

From apimachinery's validation package: DNS-1123 labels and subdomains, DNS-1035 labels (Service
names), qualified names (label and annotation keys), IANA service names (port names), environment
variable names; the resource.Quantity grammar; and the image reference grammar that container
runtimes parse. `Reasons` gathers what is wrong field by field, so one error names every bad field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from orgs.exceptions import ValidationFailed

# --- The rules, as reasons say them -------------------------------------------------------------

DNS1123_LABEL_RULE = (
    "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter "
    "or digit, at most 63 characters"
)
DNS1035_LABEL_RULE = (
    "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter and ending "
    "with a letter or digit, at most 63 characters (it names the app's Service too)"
)
DNS1123_SUBDOMAIN_RULE = (
    "must be a DNS-1123 subdomain: '.'-separated parts of lowercase letters, digits and '-', each "
    "starting and ending with a letter or digit, at most 253 characters"
)
ENV_NAME_RULE = (
    "must be an environment variable name: letters, digits, '_', '-' or '.', not starting with a digit"
)
IANA_SVC_NAME_RULE = (
    "must be an IANA service name: at most 15 lowercase letters, digits and '-', with at least one "
    "letter, starting and ending with a letter or digit, without '--'"
)
QUALIFIED_NAME_RULE = (
    "must be a qualified name: an optional DNS-1123 subdomain prefix and '/', then at most 63 "
    "letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
)
LABEL_VALUE_RULE = (
    "must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, "
    "or empty"
)
QUANTITY_RULE = (
    "must be a Kubernetes quantity: a number with an optional suffix (m for thousandths; Ki, Mi, Gi, "
    "Ti, Pi, Ei; k, M, G, T, P, E; or an exponent such as 1e3)"
)
IMAGE_PATH_RULE = (
    "the repository path must be lowercase letters and digits in '/'-separated parts, joined inside "
    "a part by '.', '_', '__' or dashes"
)
IMAGE_TAG_RULE = "the tag must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
IMAGE_DIGEST_RULE = "the digest must be sha256: and 64 lowercase hexadecimal digits (or sha512: and 128)"

# --- Limits (Kubernetes' where it has one) ---------------------------------------------------------

MAX_IMAGE_LENGTH = 2048
MAX_STRING_BYTES = 32 * 1024  # one env value, command or argument
MAX_IMAGE_NAME_LENGTH = 255  # the reference grammar's limit on registry + repository

# Keys Flotilla writes itself: a user label or annotation under them would hijack its bookkeeping.
RESERVED_KEY_PREFIXES = ("flotilla.dev/",)
RESERVED_KEYS = ("app.kubernetes.io/managed-by",)


# \Z, not $: "$" also matches before a trailing newline.
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(rf"{_DNS1123_LABEL}\Z")
_DNS1035_LABEL_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?\Z")
_DNS1123_SUBDOMAIN_RE = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*\Z")
_QUALIFIED_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
_ENV_NAME_RE = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*\Z")
_IANA_SVC_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])*\Z")
_WHOLE_RE = re.compile(r"[+-]?[0-9]+\Z")
_QUANTITY_RE = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE])?\Z"
)
_DECIMAL_SUFFIXES = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_MAX_QUANTITY = Decimal(2**63 - 1)  # Kubernetes keeps quantities in 64-bit integers
_MAX_EXPONENT = 30
_DOMAIN_COMPONENT = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
_REGISTRY_RE = re.compile(
    rf"(?P<host>{_DOMAIN_COMPONENT}(\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:.]+\])(:(?P<port>[0-9]+))?\Z"
)
_PATH_COMPONENT = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
_IMAGE_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(/{_PATH_COMPONENT})*\Z")
_IMAGE_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_IMAGE_DIGEST_RE = re.compile(r"(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})\Z")


# --- Collecting reasons ----------------------------------------------------------------------------


class Reasons:
    """Reasons gathered field by field, raised together so a form shows every mistake at once."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, field_name: str, reason: str) -> None:
        """One more reason for a field (a repeated one is kept once)."""
        reasons = self.fields.setdefault(field_name, [])
        if reason not in reasons:
            reasons.append(reason)

    def raise_if_any(self) -> None:
        """Raise one ValidationFailed naming every field, if any was refused."""
        if not self.fields:
            return
        parts = [f"{name}: {reasons[0]}" for name, reasons in self.fields.items()]
        if len(parts) == 1:
            message = parts[0]
        else:
            shown = "; ".join(parts[:5]) + ("; …" if len(parts) > 5 else "")
            message = f"{len(parts)} fields are not valid: {shown}"
        raise ValidationFailed(message, fields=self.fields)


def is_reserved_key(key: str) -> bool:
    """Whether a label or annotation key is Flotilla's own (refused as input, dropped on adoption)."""
    return key in RESERVED_KEYS or key.startswith(RESERVED_KEY_PREFIXES)


def byte_length(text: str) -> int:
    """The size Kubernetes counts: UTF-8 bytes, not characters."""
    return len(text.encode("utf-8", "surrogatepass"))


def whole_number(value: Any, field_name: str, low: int, high: int, errors: Reasons) -> int | None:
    """A whole number within bounds; a digit string is taken too (forms and the CLI send text)."""
    if isinstance(value, str) and _WHOLE_RE.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(field_name, "must be a whole number")
        return None
    if not low <= value <= high:
        errors.add(field_name, f"must be from {low} to {high}")
        return None
    return int(value)


def env_name_problems(name: Any) -> list[str]:
    """What is wrong with an environment variable (or secret variable) name; empty when valid."""
    if not isinstance(name, str) or not name:
        return ["is required" if name in (None, "") else "must be a string"]
    problems = [] if _ENV_NAME_RE.match(name) else [ENV_NAME_RULE]
    # apimachinery also refuses names that would read as a path to a parent directory.
    if name in (".", ".."):
        problems.append(f"must not be '{name}'")
    elif name.startswith(".."):
        problems.append("must not start with '..'")
    return problems


def qualified_key_problems(key: Any) -> list[str]:
    """What is wrong with a label or annotation key, reserved keys included; empty when valid."""
    if not isinstance(key, str) or not key:
        return ["keys must be non-empty strings"]
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN_RE.match(prefix)):
        return [f"{key!r} {QUALIFIED_NAME_RULE}"]
    if len(name) > 63 or not _QUALIFIED_NAME_RE.match(name):
        return [f"{key!r} {QUALIFIED_NAME_RULE}"]
    if is_reserved_key(key):
        return [f"{key!r} is reserved for Flotilla"]
    return []


def string_list(value: Any, field_name: str, errors: Reasons) -> tuple[str, ...]:
    """A list of strings (command, args), each at most 32 KiB."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        errors.add(field_name, "must be a list of strings")
        return ()
    words = []
    for index, word in enumerate(value):
        if not isinstance(word, str):
            errors.add(f"{field_name}[{index}]", "must be a string")
        elif byte_length(word) > MAX_STRING_BYTES:
            errors.add(f"{field_name}[{index}]", "must be at most 32 KiB")
        else:
            words.append(word)
    return tuple(words)


def unknown_keys(data: Mapping[str, Any], known: Iterable[str], prefix: str, errors: Reasons) -> None:
    """Refuse keys a mapping should not have: a typo must not be silently ignored."""
    known_keys = set(known)
    for key in data:
        if key not in known_keys:
            errors.add(f"{prefix}.{key}" if prefix else str(key), "unknown field")


# --- Single values ----------------------------------------------------------------------------------


def is_dns1123_subdomain(text: str) -> bool:
    """Whether a name is a DNS-1123 subdomain (most object names, a PVC's among them)."""
    return len(text) <= 253 and bool(_DNS1123_SUBDOMAIN_RE.match(text))


def is_label_value(text: str) -> bool:
    """Whether a string is a valid label value (empty included)."""
    return len(text) <= 63 and (not text or bool(_QUALIFIED_NAME_RE.match(text)))


def port_name_problems(name: str) -> list[str]:
    """What is wrong with a port name by the IANA service name rule; empty when valid."""
    if (
        len(name) > 15
        or not _IANA_SVC_NAME_RE.match(name)
        or "--" in name
        or not any("a" <= char <= "z" for char in name)
    ):
        return [IANA_SVC_NAME_RULE]
    return []


def validate_app_name(name: Any, field: str = "name") -> str:
    """An app's name: it names the Deployment, its container and its Service, so a DNS-1035 label."""
    if not isinstance(name, str) or not name:
        raise ValidationFailed.for_field(field, "is required" if name in (None, "") else "must be a string")
    if len(name) > 63 or not _DNS1035_LABEL_RE.match(name):
        raise ValidationFailed.for_field(field, DNS1035_LABEL_RULE)
    return name


def validate_namespace(name: Any, field: str = "namespace") -> str:
    """A namespace's name: a DNS-1123 label."""
    if not isinstance(name, str) or not name:
        raise ValidationFailed.for_field(field, "is required" if name in (None, "") else "must be a string")
    if len(name) > 63 or not _DNS1123_LABEL_RE.match(name):
        raise ValidationFailed.for_field(field, DNS1123_LABEL_RULE)
    return name


def image_problems(image: Any) -> list[str]:
    """What is wrong with an image reference by the runtimes' grammar (empty when it is valid)."""
    if not isinstance(image, str):
        return ["must be a string"]
    if not image:
        return ["is required"]
    if any(char.isspace() for char in image):
        return ["must not contain spaces or other whitespace"]
    if len(image) > MAX_IMAGE_LENGTH:
        return [f"must be at most {MAX_IMAGE_LENGTH} characters"]
    problems = []
    rest, at, digest = image.partition("@")
    if at and not _IMAGE_DIGEST_RE.match(digest):
        problems.append(IMAGE_DIGEST_RULE)
    name = rest
    colon = rest.rfind(":")
    # A ':' followed by a '/' belongs to the registry's port, not to a tag.
    if colon != -1 and "/" not in rest[colon + 1 :]:
        name, tag = rest[:colon], rest[colon + 1 :]
        if not _IMAGE_TAG_RE.match(tag):
            problems.append(IMAGE_TAG_RULE)
    registry, slash, path = name.partition("/")
    # The runtimes' rule: the first part names a registry only if it looks like a host.
    if not slash or not (
        any(char in registry for char in ".:") or registry == "localhost" or registry.lower() != registry
    ):
        registry, path = "", name
    if registry:
        found = _REGISTRY_RE.match(registry)
        if not found or (found.group("port") is not None and not 1 <= int(found.group("port")) <= 65535):
            problems.append(
                "the registry must be a host name or IP address, with an optional :port from 1 to 65535"
            )
    if not path:
        problems.append("the repository path is required")
    elif not _IMAGE_PATH_RE.match(path):
        lowered = _IMAGE_PATH_RE.match(path.lower())
        problems.append("the repository path must be lowercase" if lowered else IMAGE_PATH_RULE)
    if len(name) > MAX_IMAGE_NAME_LENGTH:
        problems.append(f"the registry and repository must be at most {MAX_IMAGE_NAME_LENGTH} characters")
    return problems


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes resource.Quantity ("250m", "1.5", "1e3", "128Mi") as a number of base units.

    Raises ValueError with the rule when the text is not a quantity or is out of Kubernetes' range.
    """
    if not isinstance(text, str):
        raise ValueError(QUANTITY_RULE)
    found = _QUANTITY_RE.match(text)
    if not found:
        raise ValueError(QUANTITY_RULE)
    suffix = found.group("suffix") or ""
    with localcontext() as context:
        context.prec = 60
        try:
            number = Decimal(found.group("number"))
        except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
            raise ValueError(QUANTITY_RULE) from exc
        if suffix in _BINARY_SUFFIXES:
            value = number * Decimal(1024) ** _BINARY_SUFFIXES[suffix]
        elif suffix in _DECIMAL_SUFFIXES:
            value = number * _DECIMAL_SUFFIXES[suffix]
        else:
            exponent = int(suffix[1:])
            if abs(exponent) > _MAX_EXPONENT:
                raise ValueError(f"the exponent must be from -{_MAX_EXPONENT} to {_MAX_EXPONENT}")
            value = number.scaleb(exponent)
    if abs(value) > _MAX_QUANTITY:
        raise ValueError("is too large for Kubernetes")
    return value
