"""The label and taint syntax of `--pool`, the same grammar as the portal's fields.

The server reads it with `clusters.services.specs.parse_labels` / `parse_taints`; the CLI cannot
import the server (it has no Django), so it parses the same grammar here, with the same rules
and the same reasons, to refuse a bad pool before anything is sent. tests/cli/test_label_syntax.py
runs one table of inputs through both and requires the same answer from each.

    labels: key=value items, separated by "," or ";"
    taints: key[=value][:Effect] items (Effect NoSchedule when omitted), separated by "," or ";"
"""

from __future__ import annotations

import re

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_LABEL_NAME = r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?"
# A key's prefix is a DNS subdomain (RFC 1123, at most 253 characters), as Kubernetes checks it.
_DNS_SUBDOMAIN = r"(?=[a-z0-9.-]{1,253}/)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
LABEL_KEY_RE = re.compile(rf"^({_DNS_SUBDOMAIN}/)?{_LABEL_NAME}\Z")
LABEL_VALUE_RE = re.compile(rf"^({_LABEL_NAME})?\Z")
KEY_RULE = (
    "an optional DNS-name prefix and '/', then at most 63 letters, digits, '-', '_' or '.', "
    "beginning and ending with a letter or digit"
)
VALUE_RULE = (
    "at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit, or empty"
)
RESERVED_PREFIX = "flotilla.io/"
_ITEM_SEPARATORS = re.compile(r"[,;]")


class LabelSyntaxError(ValueError):
    """A bad label or taint list; the message is the reason, worded as the server words it."""


def _items(text: str) -> list[str]:
    return [item.strip() for item in _ITEM_SEPARATORS.split(text) if item.strip()]


def parse_labels(text: str) -> dict[str, str]:
    """`tier=web, team=shop` (or `tier=web;team=shop`) as labels Kubernetes accepts."""
    labels: dict[str, str] = {}
    for item in _items(text):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise LabelSyntaxError(f"{item!r}: write each label as key=value.")
        if key in labels:
            raise LabelSyntaxError(f"The label {key} is given twice.")
        labels[key] = value
    for key, value in labels.items():
        if not LABEL_KEY_RE.match(key):
            raise LabelSyntaxError(f"{key!r} is not a label key you can set: {KEY_RULE}.")
        if key.startswith(RESERVED_PREFIX):
            raise LabelSyntaxError(
                f"{key!r} is not a label key you can set: {RESERVED_PREFIX} keys are Flotilla's."
            )
        if not LABEL_VALUE_RE.match(value):
            raise LabelSyntaxError(f"{value!r} is not a valid label value (for {key}): {VALUE_RULE}.")
    return labels


def parse_taints(text: str) -> list[dict[str, str]]:
    """`gpu=true:NoSchedule, dedicated:NoExecute` as taints {key, value, effect}."""
    parsed: list[dict[str, str]] = []
    for item in _items(text):
        head, sep, effect = item.rpartition(":")
        if not sep:
            head, effect = item, "NoSchedule"
        key, _, value = head.partition("=")
        if not key.strip() or not effect.strip():
            raise LabelSyntaxError(f"{item!r}: write each taint as key[=value][:Effect].")
        parsed.append({"key": key.strip(), "value": value.strip(), "effect": effect.strip()})
    taints: list[dict[str, str]] = []
    for taint in parsed:
        key, value, effect = taint["key"], taint["value"], taint["effect"]
        if not LABEL_KEY_RE.match(key):
            raise LabelSyntaxError(f"{key!r} is not a valid taint key: {KEY_RULE}.")
        if not LABEL_VALUE_RE.match(value):
            raise LabelSyntaxError(f"{value!r} is not a valid taint value (for {key}): {VALUE_RULE}.")
        if effect not in TAINT_EFFECTS:
            raise LabelSyntaxError(f"{effect!r}: the effect must be one of {', '.join(TAINT_EFFECTS)}.")
        if any(t["key"] == key and t["effect"] == effect for t in taints):
            raise LabelSyntaxError(f"The taint {key}:{effect} is given twice.")
        taints.append(taint)
    return taints
