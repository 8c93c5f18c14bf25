"""Portal pages of the orgs app. Thin: parse the form, call a service or selector, render."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_tenants.utils import schema_context

from orgs import selectors
from orgs.actors import Actor
from orgs.choices import ActorSource, Role
from orgs.exceptions import FlotillaError, NotFound, QuotaExceeded, Throttled
from orgs.feedback import report_error
from orgs.forms import (
    AcceptAndRegisterForm,
    CreateOrgForm,
    InviteForm,
    OrgSettingsForm,
    RoleForm,
    SignInForm,
    SignUpForm,
    TokenForm,
)
from orgs.middleware import client_ip
from orgs.models import User
from orgs.permissions import Action, can
from orgs.services import members as member_services
from orgs.services import tokens as token_services
from orgs.services.organizations import create_organization, sign_up, update_organization
from orgs.throttling import (
    require_org_creation_allowance,
    require_signup_allowance,
    signin_allowed,
    signin_refusal,
)


def _actor(request: HttpRequest) -> Actor:
    return request.actor  # type: ignore[attr-defined,no-any-return]


def _org_redirect(request: HttpRequest, name: str) -> HttpResponse:
    return redirect(reverse(name, kwargs={"org_slug": request.org.slug}))  # type: ignore[attr-defined]


# --- Public pages -------------------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    """Signed in: the first org (or the org list). Otherwise: sign in."""
    if not request.user.is_authenticated:
        return redirect("orgs:login")
    first = selectors.memberships_of(request.user).first()
    if first is None:
        return redirect("orgs:org_list")
    return redirect(reverse("org:overview", kwargs={"org_slug": first.org.slug}))


def signup(request: HttpRequest) -> HttpResponse:
    """Create an account and an organisation in one step (rate limited per client address)."""
    form = SignUpForm(request.POST or None)
    status = 400 if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            require_signup_allowance(client_ip(request))
            user, org = sign_up(
                org_name=data["org_name"],
                slug=data["slug"],
                email=data["email"],
                password=data["password"],
                full_name=data["full_name"],
                ip=client_ip(request),
            )
        except FlotillaError as error:
            report_error(request, error, form)
            status = error.status if isinstance(error, Throttled) else 400
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to Flotilla. {org.name} is ready.")
            return redirect(reverse("org:overview", kwargs={"org_slug": org.slug}))
    return render(request, "orgs/signup.html", {"form": form}, status=status)


class SignInView(LoginView):
    """Email + password, rate limited per client address and email."""

    template_name = "orgs/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not signin_allowed(client_ip(request), request.POST.get("username") or ""):
            # An unbound form: a throttled attempt is not checked at all, so it tells nothing.
            form = self.authentication_form(request)
            context = self.get_context_data(form=form, throttled=True)
            return render(request, self.template_name, context, status=429)
        return super().post(request, *args, **kwargs)


@sensitive_post_parameters()
@never_cache
def admin_login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """The Django admin's sign-in, under the same limits (and budgets) as the portal's."""
    if request.method == "POST" and not signin_allowed(
        client_ip(request), request.POST.get("username") or ""
    ):
        messages.error(request, signin_refusal())
        context = {
            **admin.site.each_context(request),
            "title": "Log in",
            "subtitle": None,
            "app_path": request.get_full_path(),
            "username": request.user.get_username(),
            "form": (admin.site.login_form or AdminAuthenticationForm)(request),
            REDIRECT_FIELD_NAME: reverse("admin:index"),
        }
        return TemplateResponse(request, "admin/login.html", context, status=429)
    return admin.site.login(request, extra_context)


@login_required
def org_list(request: HttpRequest) -> HttpResponse:
    """The orgs the user belongs to, and a form to found another."""
    form = CreateOrgForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            require_org_creation_allowance(request.user.pk)  # type: ignore[arg-type]
            org = create_organization(
                user=request.user,  # type: ignore[arg-type]
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
                ip=client_ip(request),
                source=ActorSource.PORTAL,
            )
        except FlotillaError as error:
            report_error(request, error, form)
            # Limits keep their own status (429, 409); any other refusal is a bad form (400).
            status = error.status if isinstance(error, Throttled | QuotaExceeded) else 400
        else:
            messages.success(request, f"{org.name} is ready.")
            return redirect(reverse("org:overview", kwargs={"org_slug": org.slug}))
    if form.errors and status == 200:
        status = 400
    return render(request, "orgs/org_list.html", {"form": form}, status=status)


def accept_invite(request: HttpRequest, token: str) -> HttpResponse:
    """Show an invitation; accept it signed in, or create the invited account and accept."""
    try:
        invitation = member_services.get_invitation_by_token(token)
    except NotFound:
        return render(request, "orgs/invite_invalid.html", status=404)
    register_form = AcceptAndRegisterForm(request.POST or None)
    existing = User.objects.filter(email__iexact=invitation.email).exists()
    if request.method == "POST":
        actor = Actor(
            org=invitation.org, user=None, role=None, source=ActorSource.PORTAL, ip=client_ip(request)
        )
        try:
            user: User | None = None
            if request.user.is_authenticated:
                member_services.accept_invitation(request.user, token, actor_source=actor)
                user = request.user
            elif not existing and register_form.is_valid():
                user, _ = member_services.accept_invitation_as_new_user(
                    token,
                    password=register_form.cleaned_data["password"],
                    full_name=register_form.cleaned_data["full_name"],
                    actor_source=actor,
                )
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            if user is not None:
                messages.success(request, f"You joined {invitation.org.name}.")
                return redirect(reverse("org:overview", kwargs={"org_slug": invitation.org.slug}))
        except FlotillaError as error:
            report_error(request, error, register_form)
    return render(
        request,
        "orgs/invite.html",
        {"invitation": invitation, "form": register_form, "existing": existing},
        status=400 if request.method == "POST" else 200,
    )


# --- Org pages (the middleware has entered the org's schema and set request.actor) -------


def overview(request: HttpRequest) -> HttpResponse:
    """The org at a glance."""
    actor = _actor(request)
    recent = []
    if can(actor, Action.AUDIT_VIEW):
        recent = list(selectors.audit_entries(actor)[:8])
    return render(
        request,
        "orgs/overview.html",
        {"summary": selectors.org_summary(actor), "recent": recent},
    )


_NEW_INVITE_KEY = "flotilla.new_invite"


def members(request: HttpRequest) -> HttpResponse:
    """Members, pending invitations and the invite form; htmx swaps in just the table."""
    actor = _actor(request)
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            _, link = member_services.invite_member(
                actor,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                base_url=request.build_absolute_uri("/"),
            )
        except FlotillaError as error:
            report_error(request, error, form)
        else:
            # Post/redirect/get, like tokens: the link is shown on the next view only.
            request.session[_NEW_INVITE_KEY] = link
            return _org_redirect(request, "org:members")
    new_link = request.session.pop(_NEW_INVITE_KEY, None) if request.method == "GET" else None
    context = {
        "members": selectors.list_members(actor),
        "invitations": selectors.list_invitations(actor) if can(actor, Action.MEMBER_INVITE) else [],
        "form": form,
        "new_link": new_link,
        "roles": Role.choices,
        "can_manage": can(actor, Action.MEMBER_CHANGE_ROLE),
        "can_invite": can(actor, Action.MEMBER_INVITE),
    }
    template = (
        "orgs/partials/members_table.html"
        if request.headers.get("HX-Request") and request.method == "GET"
        else "orgs/members.html"
    )
    return render(request, template, context, status=400 if form.errors else 200)


@require_POST
def member_role(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Change a member's role."""
    actor = _actor(request)
    form = RoleForm(request.POST)
    try:
        if not form.is_valid():
            messages.error(request, "Choose a valid role.")
        else:
            membership = selectors.get_member(actor, pk)
            member_services.change_member_role(actor, membership, role=form.cleaned_data["role"])
            messages.success(request, f"{membership.user.email} is now {membership.role}.")
    except FlotillaError as error:
        report_error(request, error)
    return _org_redirect(request, "org:members")


@require_POST
def member_remove(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Remove a member, or leave the org when it is yourself."""
    actor = _actor(request)
    try:
        membership = selectors.get_member(actor, pk)
        member_services.remove_member(actor, membership)
    except FlotillaError as error:
        report_error(request, error)
        return _org_redirect(request, "org:members")
    if actor.user is not None and membership.user_id == actor.user.pk:
        messages.success(request, f"You left {actor.org}.")
        return redirect("orgs:home")
    messages.success(request, f"{membership.user.email} was removed.")
    return _org_redirect(request, "org:members")


@require_POST
def invitation_revoke(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Withdraw a pending invitation."""
    try:
        member_services.revoke_invitation(_actor(request), pk)
        messages.success(request, "Invitation withdrawn.")
    except FlotillaError as error:
        report_error(request, error)
    return _org_redirect(request, "org:members")


_NEW_TOKEN_KEY = "flotilla.new_token"


def tokens(request: HttpRequest) -> HttpResponse:
    """API tokens: list and create; a new token's secret is shown on one page view only."""
    actor = _actor(request)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token, clear = token_services.create_api_token(
                actor,
                name=form.cleaned_data["name"],
                role=form.cleaned_data["role"],
                expires_at=form.cleaned_data["expires_at"],
            )
        except FlotillaError as error:
            report_error(request, error, form)
        else:
            # Post/redirect/get: the secret rides in the session to the next view only, so a
            # reload neither creates a second token nor shows the secret again.
            request.session[_NEW_TOKEN_KEY] = {"id": token.pk, "clear": clear}
            return _org_redirect(request, "org:tokens")
    created = None
    stashed = request.session.pop(_NEW_TOKEN_KEY, None) if request.method == "GET" else None
    if stashed:
        created = {"token": selectors.get_token(actor, stashed["id"]), "clear": stashed["clear"]}
    response = render(
        request,
        "orgs/tokens.html",
        {"tokens": selectors.list_tokens(actor), "form": form, "created": created},
        status=400 if form.errors else 200,
    )
    if created:
        response.headers["Cache-Control"] = "no-store"
    return response


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Revoke a token."""
    actor = _actor(request)
    try:
        token = token_services.revoke_api_token(actor, selectors.get_token(actor, pk))
        messages.success(request, f"Token {token.name} revoked.")
    except FlotillaError as error:
        report_error(request, error)
    return _org_redirect(request, "org:tokens")


def audit(request: HttpRequest) -> HttpResponse:
    """The audit log with filters and pages."""
    actor = _actor(request)
    try:
        entries = selectors.audit_entries(actor)
    except FlotillaError as error:
        report_error(request, error)
        return _org_redirect(request, "org:overview")
    action = request.GET.get("action", "").strip()
    who = request.GET.get("actor", "").strip()
    if action:
        entries = entries.filter(action__startswith=action)
    if who:
        entries = entries.filter(actor_label__icontains=who)
    org = actor.org
    assert org is not None
    with schema_context(org.schema_name):
        page = Paginator(entries, 50).get_page(request.GET.get("page"))
        page.object_list = list(page.object_list)
    return render(request, "orgs/audit.html", {"page": page, "action": action, "who": who})


def org_settings(request: HttpRequest) -> HttpResponse:
    """Rename the org; leave it."""
    actor = _actor(request)
    org = actor.org
    assert org is not None
    form = OrgSettingsForm(request.POST or None, initial={"name": org.name})
    if request.method == "POST" and form.is_valid():
        try:
            update_organization(actor, org, name=form.cleaned_data["name"])
            messages.success(request, "Saved.")
            return _org_redirect(request, "org:settings")
        except FlotillaError as error:
            report_error(request, error, form)
    return render(
        request,
        "orgs/settings.html",
        {"form": form, "can_edit": can(actor, Action.ORG_UPDATE)},
        status=400 if form.errors else 200,
    )
