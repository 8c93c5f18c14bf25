"""API shapes of the orgs app. Writable fields are listed explicitly; unknown ones are refused."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from orgs.audit.models import AuditEntry
from orgs.choices import Role
from orgs.models import ApiToken, Invitation, Membership, Organization

# JSON type each kind of field takes; DRF's fields also take other types (a number for a
# string, "5" or 5.0 for an integer), which the schema does not promise and a client should not
# rely on. Subclasses first: ChoiceField and DateTimeField are no CharFields, EmailField is one.
_JSON_TYPES: tuple[tuple[type[serializers.Field], tuple[type, ...], str], ...] = (  # type: ignore[type-arg]
    (serializers.BooleanField, (bool,), "Give true or false."),
    (serializers.IntegerField, (int,), "Give a whole number."),
    (serializers.FloatField, (int, float), "Give a number."),
    (serializers.ChoiceField, (str,), "Give a string."),
    (serializers.DateTimeField, (str,), "Give a date-time string (ISO 8601)."),
    (serializers.CharField, (str,), "Give a string."),
)


def _type_problems(field: serializers.Field, value: Any, name: str) -> dict[str, list[str]]:  # type: ignore[type-arg]
    """The values that are not of the JSON type the field is described with, by dotted name."""
    if value is None:
        return {}  # null is allow_null's business
    if isinstance(field, serializers.DictField) and isinstance(value, dict):
        problems: dict[str, list[str]] = {}
        for key, item in value.items():
            problems.update(_type_problems(field.child, item, f"{name}.{key}"))
        return problems
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        problems = {}
        for index, item in enumerate(value):
            problems.update(_type_problems(field.child, item, f"{name}[{index}]"))
        return problems
    for kind, types, reason in _JSON_TYPES:
        if isinstance(field, kind):
            wrong = not isinstance(value, types) or (bool not in types and isinstance(value, bool))
            return {name: [reason]} if wrong else {}
    return {}


class StrictSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Rejects fields it does not know, naming them, instead of silently ignoring them, and
    values of another JSON type than the field's (a number where a string is described)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            writable = {name: field for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - set(writable))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
            problems: dict[str, list[str]] = {}
            for name, value in data.items():
                problems.update(_type_problems(writable[name], value, name))
            if problems:
                raise serializers.ValidationError(problems)
        return super().to_internal_value(data)


class QueryBooleanField(serializers.BooleanField):
    """A query-string boolean spelled as the schema's boolean is: `true` or `false`."""

    TRUE_VALUES = {"true"}
    FALSE_VALUES = {"false"}
    NULL_VALUES: set[Any] = set()


class QueryIdField(serializers.IntegerField):
    """A query-string id: digits only (IntegerField alone also takes `5.0`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if not (isinstance(data, str) and data.isascii() and data.isdigit()):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class ListFilters(serializers.Serializer):  # type: ignore[type-arg]
    """The query parameters a list takes (besides paging); unknown ones are ignored, as usual."""


class OrganizationSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """The current org, as the caller sees it."""

    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["slug", "name", "created_at", "max_clusters", "max_nodes", "role"]
        read_only_fields = fields

    def get_role(self, obj: Organization) -> str:
        actor = self.context["request"]._request.actor
        return str(actor.role)


class OrganizationUpdateSerializer(StrictSerializer):
    """Writable: name."""

    name = serializers.CharField(max_length=100)


class MemberSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A membership with the person's email and name."""

    email = serializers.EmailField(source="user.email", read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)
    joined_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "full_name", "role", "joined_at"]
        read_only_fields = fields


class MemberUpdateSerializer(StrictSerializer):
    """Writable: role."""

    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A pending invitation (the link is only in the create response)."""

    invited_by = serializers.EmailField(
        source="invited_by.email", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "created_at", "expires_at", "invited_by"]
        read_only_fields = fields


class InvitationCreatedSerializer(InvitationSerializer):
    """The answer to an invitation: the invitation and its link, shown this once."""

    url = serializers.URLField(read_only=True)

    class Meta(InvitationSerializer.Meta):
        fields = [*InvitationSerializer.Meta.fields, "url"]
        read_only_fields = fields


class InvitationCreateSerializer(StrictSerializer):
    """Writable: email, role."""

    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices)


class TokenSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A token's metadata; the secret is never returned after creation."""

    owner = serializers.EmailField(source="user.email", read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "role",
            "prefix",
            "owner",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "active",
            "parent",
        ]
        read_only_fields = fields

    def get_active(self, obj: ApiToken) -> bool:
        return obj.is_usable()


class TokenCreatedSerializer(TokenSerializer):
    """The answer to a token creation: the token and its secret, shown this once."""

    token = serializers.CharField(read_only=True)

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class TokenCreateSerializer(StrictSerializer):
    """Writable: name, role, expires_at (optional)."""

    name = serializers.CharField(max_length=100)
    role = serializers.ChoiceField(choices=Role.choices)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class AuditEntrySerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """One audit log row."""

    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "created_at",
            "actor",
            "token_prefix",
            "source",
            "ip",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
        ]
        read_only_fields = fields


class TokenFilters(ListFilters):
    """?active=true: only tokens not revoked (false, or none: every token)."""

    active = QueryBooleanField(required=False, help_text="true: only tokens not revoked")


class AuditFilters(ListFilters):
    """?action= (prefix) and ?actor= (email)."""

    action = serializers.CharField(required=False, allow_blank=True, help_text="Action prefix, e.g. member.")
    actor = serializers.CharField(required=False, allow_blank=True, help_text="Actor email")
