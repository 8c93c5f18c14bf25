"""One label syntax: the portal's fields (server) and the CLI's --pool give the same answer to every input.

The server parses with clusters.services.specs.parse_labels/parse_taints; the CLI, which cannot
import the server, with cli.labels. Each input below goes through both, and through the portal
form and `--pool`: same labels or taints, or the same reason for refusing.
"""

from __future__ import annotations

import pytest
from django.apps import apps

if not apps.ready:  # collected by the Django-free unit run (`-p no:django --noconftest`)
    pytest.skip("comparing with the server's parser needs Django", allow_module_level=True)

from typing import Any

from cli import labels as cli_labels
from cli.errors import UsageError
from cli.pools import parse_pool
from clusters.forms import PoolForm
from clusters.providers.base import Size
from clusters.services import specs
from orgs.exceptions import ValidationFailed

LONG = "a" * 63
LABELS = [
    # accepted
    "",
    " ",
    "tier=web",
    "tier=web, team=shop",
    "tier=web;team=shop",
    "tier = web ;; team=shop ,",
    "empty=",
    "example.com/tier=web",
    "app.kubernetes.io/name=shop",
    f"{LONG}={LONG}",
    "Tier.Name_x-1=A.b_c-9",
    f"{'a' * 253}/tier=web",
    "a-b.c/tier=web",
    # refused
    "tier",
    "tier:web",
    "=web",
    "tier=web,tier=api",
    "tier=web=api",
    f"{LONG}a=x",
    f"x={LONG}a",
    "-tier=web",
    "tier-=web",
    "tier=-web",
    "Example.com/tier=web",
    "a/b/c=d",
    f"{'a' * 254}/tier=web",
    "a..b/tier=web",
    "-a.com/tier=web",
    "a.com-/tier=web",
    ".a.com/tier=web",
    "/tier=web",
    "flotilla.io/pool=x",
    "tier=we b",
    "tier=web\n",
    "ti er=web",
]
TAINTS = [
    # accepted
    "",
    "gpu=true:NoSchedule",
    "gpu=true",
    "dedicated:NoExecute",
    "dedicated",
    "gpu=true:NoSchedule, dedicated:NoExecute; spot=yes:PreferNoSchedule",
    "example.com/k=v",
    "gpu:NoSchedule,gpu:NoExecute",
    # refused
    "gpu=true:Sometimes",
    "gpu=true:",
    ":NoSchedule",
    "=true:NoSchedule",
    "gpu=tr ue",
    "gpu:noschedule",
    "gpu=a:NoSchedule,gpu=b:NoSchedule",
    "-gpu=true",
    f"gpu={LONG}a",
]


def _server(parse: Any, text: str) -> Any:
    try:
        return parse(text, "labels")
    except ValidationFailed as exc:
        return ("refused", exc.fields["labels"][0])


def _cli(parse: Any, text: str) -> Any:
    try:
        return parse(text)
    except cli_labels.LabelSyntaxError as exc:
        return ("refused", str(exc))


@pytest.mark.parametrize("text", LABELS)
def test_labels_get_one_answer(text: str) -> None:
    assert _server(specs.parse_labels, text) == _cli(cli_labels.parse_labels, text)


@pytest.mark.parametrize("text", TAINTS)
def test_taints_get_one_answer(text: str) -> None:
    assert _server(specs.parse_taints, text) == _cli(cli_labels.parse_taints, text)


def test_the_table_holds_both_kinds() -> None:
    label_answers = [_server(specs.parse_labels, t) for t in LABELS]
    taint_answers = [_server(specs.parse_taints, t) for t in TAINTS]
    for answers in (label_answers, taint_answers):
        refused = [a for a in answers if isinstance(a, tuple)]
        assert 5 < len(refused) < len(answers) - 5


def _form(labels: str, taints: str) -> PoolForm:
    return PoolForm(
        data={"name": "web", "size": "small", "count": "1", "labels": labels, "taints": taints},
        sizes=[Size(id="small", name="Small", cpus=1, memory_mb=1024)],
    )


def _pool(field: str, text: str) -> Any:
    try:
        return parse_pool(f"name=web,size=small,count=1,{field}={text}")[field]
    except UsageError as exc:
        return ("refused", exc.message.split(f": {field}: ", 1)[1])


@pytest.mark.parametrize("text", LABELS)
def test_the_portal_field_and_pool_option_agree_on_labels(text: str) -> None:
    form = _form(text, "")
    expected = _server(specs.parse_labels, text)
    if isinstance(expected, tuple):
        assert not form.is_valid() and form.errors["labels"] == [expected[1]]
    else:
        assert form.is_valid(), form.errors
        assert form.cleaned_data["labels"] == expected
    assert _pool("labels", text) == expected


@pytest.mark.parametrize("text", TAINTS)
def test_the_portal_field_and_pool_option_agree_on_taints(text: str) -> None:
    form = _form("", text)
    expected = _server(specs.parse_taints, text)
    if isinstance(expected, tuple):
        assert not form.is_valid() and form.errors["taints"] == [expected[1]]
    else:
        assert form.is_valid(), form.errors
        assert form.cleaned_data["taints"] == expected
    assert _pool("taints", text) == expected


def test_the_api_names_the_pool_field_of_a_bad_label() -> None:
    with pytest.raises(ValidationFailed) as caught:
        specs.check_pool({"name": "web", "size": "s", "count": 1, "labels": {"-x": "y"}}, 2, size_ids=None)
    assert list(caught.value.fields) == ["pools[2].labels"]
    assert caught.value.fields["pools[2].labels"][0].startswith("'-x' is not a label key you can set: ")


@pytest.mark.parametrize("key", ["a..b/tier", "-a.com/tier", ".a.com/tier", f"{'a' * 254}/tier", "tier\n"])
def test_label_keys_follow_kubernetes_rules(key: str) -> None:
    # "a..b/tier" and "tier\n" were accepted before: the prefix was any run of [a-z0-9.-] between
    # two alphanumerics, and "$" matched before a trailing newline.
    with pytest.raises(ValidationFailed) as caught:
        specs.check_labels({key: "web"}, "pools[0].labels")
    assert caught.value.fields["pools[0].labels"][0].startswith(f"{key!r} is not a label key you can set: ")
