"""API views of the orgs app: parse, call a selector or service, serialise. Nothing else."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

from orgs import selectors
from orgs.actors import Actor
from orgs.api import serializers as s
from orgs.services import members as member_services
from orgs.services import tokens as token_services
from orgs.services.organizations import update_organization


def actor_of(request: Request) -> Actor:
    """The actor the authentication class attached to the request."""
    return request._request.actor  # type: ignore[attr-defined,no-any-return]


class CurrentOrgView(APIView):
    """The org the token belongs to."""

    @extend_schema(responses=s.OrganizationSerializer)
    def get(self, request: Request) -> Response:
        actor = actor_of(request)
        return Response(s.OrganizationSerializer(actor.org, context={"request": request}).data)

    @extend_schema(request=s.OrganizationUpdateSerializer, responses=s.OrganizationSerializer)
    def patch(self, request: Request) -> Response:
        actor = actor_of(request)
        data = s.OrganizationUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assert actor.org is not None
        org = update_organization(actor, actor.org, name=data.validated_data["name"])
        return Response(s.OrganizationSerializer(org, context={"request": request}).data)


class OrgViewSet(GenericViewSet):  # type: ignore[type-arg]
    """Base of the org-scoped viewsets: ids are integers, `list` pages `get_queryset()`.

    `filterset` names the query parameters `list` takes; `filters()` checks them (400 naming
    the parameter) and the OpenAPI schema declares them (orgs.api.schema).
    """

    lookup_value_converter = "int"
    filterset: type[s.ListFilters] | None = None

    def filters(self) -> dict[str, Any]:
        """The list's query parameters, checked."""
        if self.filterset is None:
            return {}
        data = self.filterset(data=self.request.query_params.dict())
        data.is_valid(raise_exception=True)
        return dict(data.validated_data)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class MemberViewSet(OrgViewSet):
    """Members of the org: list, get, change role, remove."""

    serializer_class = s.MemberSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return selectors.list_members(actor_of(self.request))

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.MemberSerializer(selectors.get_member(actor_of(request), int(pk))).data)

    @extend_schema(request=s.MemberUpdateSerializer, responses=s.MemberSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        actor = actor_of(request)
        target = selectors.get_member(actor, int(pk))
        data = s.MemberUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = member_services.change_member_role(actor, target, role=data.validated_data["role"])
        return Response(s.MemberSerializer(membership).data)

    def destroy(self, request: Request, pk: str) -> Response:
        actor = actor_of(request)
        member_services.remove_member(actor, selectors.get_member(actor, int(pk)))
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationViewSet(OrgViewSet):
    """Pending invitations: list, create (returns the link once), revoke."""

    serializer_class = s.InvitationSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return selectors.list_invitations(actor_of(self.request))

    @extend_schema(request=s.InvitationCreateSerializer, responses={201: s.InvitationCreatedSerializer})
    def create(self, request: Request) -> Response:
        data = s.InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, link = member_services.invite_member(
            actor_of(request),
            email=data.validated_data["email"],
            role=data.validated_data["role"],
            base_url=request.build_absolute_uri("/"),
        )
        body = dict(s.InvitationSerializer(invitation).data)
        body["url"] = link
        return Response(body, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str) -> Response:
        member_services.revoke_invitation(actor_of(request), int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenViewSet(OrgViewSet):
    """API tokens: list, get, create (the secret is in this one response only), revoke."""

    serializer_class = s.TokenSerializer
    filterset = s.TokenFilters
    throttle_scope = "tokens"

    def get_throttles(self) -> list[Any]:
        from rest_framework.throttling import ScopedRateThrottle

        return [ScopedRateThrottle()] if self.action in {"create", "destroy"} else []

    def get_queryset(self) -> QuerySet[Any]:
        qs = selectors.list_tokens(actor_of(self.request))
        if self.action == "list" and self.filters().get("active"):
            qs = qs.filter(revoked_at__isnull=True)
        return qs

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.TokenSerializer(selectors.get_token(actor_of(request), int(pk))).data)

    @extend_schema(request=s.TokenCreateSerializer, responses={201: s.TokenCreatedSerializer})
    def create(self, request: Request) -> Response:
        data = s.TokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, clear = token_services.create_api_token(
            actor_of(request),
            name=data.validated_data["name"],
            role=data.validated_data["role"],
            expires_at=data.validated_data.get("expires_at"),
        )
        body = dict(s.TokenSerializer(token).data)
        body["token"] = clear
        return Response(body, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str) -> Response:
        actor = actor_of(request)
        token_services.revoke_api_token(actor, selectors.get_token(actor, int(pk)))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditViewSet(OrgViewSet):
    """The org's audit log, newest first; filter by ?action= (prefix) and ?actor=."""

    serializer_class = s.AuditEntrySerializer
    filterset = s.AuditFilters

    def get_queryset(self) -> QuerySet[Any]:
        qs = selectors.audit_entries(actor_of(self.request))
        filters = self.filters()
        if filters.get("action"):
            qs = qs.filter(action__startswith=filters["action"])
        if filters.get("actor"):
            qs = qs.filter(actor_label__iexact=filters["actor"])
        return qs
