"""Staff tools: organisations (create, suspend, quotas), users, memberships, tokens, invitations.

Every change here goes through the same services as the portal and the API, with a staff
actor, so it is permission-checked and audited the same way.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from orgs.actors import Actor
from orgs.choices import ActorSource
from orgs.exceptions import FlotillaError
from orgs.middleware import client_ip
from orgs.models import ApiToken, Invitation, Membership, Organization, User, normalise_email
from orgs.navigation import admin_links
from orgs.services import members as member_services
from orgs.services import tokens as token_services
from orgs.services import users as user_services
from orgs.services.organizations import (
    create_organization,
    delete_organization,
    set_org_quotas,
    set_org_suspended,
    update_organization,
)

admin.site.site_header = "Flotilla operations"
admin.site.site_title = "Flotilla admin"


class StaffSignInForm(AdminAuthenticationForm):
    """The admin's sign-in: the email as accounts store it (its rate limit is in orgs.views)."""

    def clean_username(self) -> str:
        return normalise_email(self.cleaned_data["username"])


admin.site.login_form = StaffSignInForm


def staff_actor(request: HttpRequest, org: Organization | None) -> Actor:
    """The acting staff user, for services called from the admin."""
    return Actor.staff(request.user, org, ip=client_ip(request))  # type: ignore[arg-type]


class OrganizationAddForm(forms.ModelForm):  # type: ignore[type-arg]
    """Staff create an org for an existing user, who becomes its owner."""

    owner_email = forms.EmailField(help_text="An existing user; they become the owner.")

    class Meta:
        model = Organization
        fields = ["name", "slug"]

    def clean_owner_email(self) -> User:
        email = self.cleaned_data["owner_email"]
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise forms.ValidationError("No user with this email.")
        return user


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("user", "role", "created_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "slug",
        "name",
        "schema_name",
        "created_at",
        "suspended_at",
        "max_clusters",
        "max_nodes",
        "member_count",
        "org_links",
    ]
    list_filter = ["suspended_at"]
    search_fields = ["slug", "name"]
    readonly_fields = ["slug", "schema_name", "created_at", "suspended_at"]
    edit_fields = ["name", "slug", "schema_name", "created_at", "suspended_at", "max_clusters", "max_nodes"]
    fields = tuple(edit_fields)
    inlines = [MembershipInline]
    actions = ["suspend", "reactivate"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        from django.db.models import Count

        qs: QuerySet[Organization] = super().get_queryset(request)
        return qs.annotate(_members=Count("memberships"))  # type: ignore[no-any-return]

    @admin.display(description="Members", ordering="_members")
    def member_count(self, obj: Any) -> int:
        return int(obj._members)

    @admin.display(description="Org data")
    def org_links(self, obj: Any) -> str:
        # Tenant models are not on the admin index (django-tenants): link into the org's schema,
        # to the pages the apps registered (orgs.navigation.register_admin_link).
        links = [
            format_html(
                '<a href="{}?{}">{}</a>',
                reverse(link.url_name),
                urlencode({"schema": obj.schema_name}),
                link.label,
            )
            for link in admin_links()
        ]
        return format_html_join(" · ", "{}", ((link,) for link in links))

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = OrganizationAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["name", "slug", "owner_email"] if obj is None else list(self.edit_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else list(self.readonly_fields)

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return [] if obj is None else list(self.inlines)

    def save_model(self, request: HttpRequest, obj: Organization, form: Any, change: bool) -> None:
        if not change:
            created = create_organization(
                user=form.cleaned_data["owner_email"],
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
                ip=client_ip(request),
                source=ActorSource.ADMIN,
            )
            obj.pk, obj.schema_name = created.pk, created.schema_name
            return
        # The form has already written its values onto `obj`; the services compare them with the
        # stored row, so each change is audited once with its true before, and no change not at all.
        actor = staff_actor(request, obj)
        update_organization(actor, obj, name=form.cleaned_data["name"])
        set_org_quotas(
            actor,
            obj,
            max_clusters=form.cleaned_data["max_clusters"],
            max_nodes=form.cleaned_data["max_nodes"],
        )

    def delete_model(self, request: HttpRequest, obj: Organization) -> None:
        delete_organization(staff_actor(request, None), obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Organization]) -> None:
        for org in queryset:
            delete_organization(staff_actor(request, None), org)

    @admin.action(description="Suspend selected organisations")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Organization]) -> None:
        for org in queryset:
            set_org_suspended(staff_actor(request, org), org, suspended=True)
        messages.success(request, f"Suspended {queryset.count()} organisation(s).")

    @admin.action(description="Reactivate selected organisations")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Organization]) -> None:
        for org in queryset:
            set_org_suspended(staff_actor(request, org), org, suspended=False)
        messages.success(request, f"Reactivated {queryset.count()} organisation(s).")


@admin.register(User)
class UserAdmin(BaseUserAdmin):  # type: ignore[type-arg]
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined", "last_login"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    filter_horizontal = ()
    list_filter = ["is_staff", "is_active"]

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        if change and "is_active" in form.changed_data:
            # Deactivation goes through the service: audited, and the person's sockets close.
            wanted = obj.is_active
            obj.is_active = not wanted
            super().save_model(request, obj, form, change)
            user_services.set_user_active(staff_actor(request, None), obj, active=wanted)
            return
        super().save_model(request, obj, form, change)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["user", "org", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "org__slug"]
    list_select_related = ["user", "org"]
    readonly_fields = ["user", "org", "created_at"]
    fields = ["user", "org", "role", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # people join through invitations

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        current = Membership.objects.get(pk=obj.pk)
        try:
            member_services.change_member_role(staff_actor(request, current.org), current, role=obj.role)
        except FlotillaError as error:
            messages.error(request, error.message)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        try:
            member_services.remove_member(staff_actor(request, obj.org), obj)
        except FlotillaError as error:
            messages.error(request, error.message)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("org", "user"):
            self.delete_model(request, membership)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "name",
        "prefix",
        "org",
        "user",
        "role",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["role", "revoked_at"]
    search_fields = ["name", "prefix", "user__email", "org__slug"]
    list_select_related = ["org", "user"]
    exclude = ["secret_hash"]
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in ApiToken._meta.fields if f.name != "secret_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset.select_related("org"):
            token_services.revoke_api_token(staff_actor(request, token.org), token)
        messages.success(request, "Revoked.")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["email", "org", "role", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_select_related = ["org"]
    search_fields = ["email", "org__slug"]
    exclude = ["token_hash"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Invitation._meta.fields if f.name != "token_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
