"""API shapes of the orgs app. Writable fields are listed explicitly; unknown ones are refused."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from orgs.audit.models import AuditEntry
from orgs.choices import Role
from orgs.models import ApiToken, Invitation, Membership, Organization


class StrictSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Rejects fields it does not know, naming them, instead of silently ignoring them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


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

    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, default=None)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "created_at", "expires_at", "invited_by"]
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
