"""`flotilla members ...`: people in the organisation, and invitations to join it."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.choices import Role
from cli.client import ApiClient
from cli.errors import ApiError, CliError, ExitCode, UsageError
from cli.output import OutputOption, field, text_of, time_field, timestamp
from cli.runtime import CommandGroup, client_for, confirm, output_for, stdin_is_terminal

app = CommandGroup(help="Members of the current organisation, their roles, and invitations.")

MEMBERS_PATH = "orgs/members/"
INVITATIONS_PATH = "orgs/invitations/"

MEMBER_COLUMNS = [
    field("id", no_wrap=True),
    field("email"),
    field("full_name", "name"),
    field("role", no_wrap=True),
    time_field("joined_at", "joined"),
]
INVITATION_COLUMNS = [
    field("id", no_wrap=True),
    field("email"),
    field("role", no_wrap=True),
    field("invited_by", "invited by"),
    time_field("created_at", "created"),
    time_field("expires_at", "expires"),
]

MemberRef = Annotated[str, typer.Argument(metavar="ID_OR_EMAIL", help="The member's id or email.")]
RoleOption = Annotated[Role, typer.Option("--role", case_sensitive=False, help="The role to give.")]


@app.command("list")
def list_members(ctx: typer.Context, output: OutputOption = None) -> None:
    """List the members of the organisation."""
    out = output_for(ctx, output)
    with client_for(ctx) as api:
        members = api.list_all(MEMBERS_PATH).items
    out.listing(MEMBER_COLUMNS, members, empty="No members.")


@app.command("invite")
def invite(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="Who to invite.")],
    role: RoleOption = Role.member,
    output: OutputOption = None,
) -> None:
    """Invite someone by email; prints the invitation link to give them."""
    out = output_for(ctx, output)
    with client_for(ctx) as api:
        invitation = api.post(INVITATIONS_PATH, {"email": email.strip(), "role": role.value})
    if out.is_json:
        out.json(invitation)
        return
    out.note(
        f"Invited {text_of(invitation.get('email'))} as {text_of(invitation.get('role'))}; "
        f"the link expires {timestamp(invitation.get('expires_at'))}:"
    )
    out.result(text_of(invitation.get("url")))


@app.command("invitations")
def list_invitations(ctx: typer.Context, output: OutputOption = None) -> None:
    """List pending invitations."""
    out = output_for(ctx, output)
    with client_for(ctx) as api:
        invitations = api.list_all(INVITATIONS_PATH).items
    out.listing(INVITATION_COLUMNS, invitations, empty="No pending invitations.")


@app.command("revoke-invite")
def revoke_invite(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="ID_OR_EMAIL", help="The invitation's id or email.")],
    output: OutputOption = None,
) -> None:
    """Withdraw a pending invitation, so that its link no longer works."""
    out = output_for(ctx, output)
    with client_for(ctx) as api:
        invitation = _find(api, INVITATIONS_PATH, ref, what="pending invitation")
        api.delete(f"{INVITATIONS_PATH}{invitation['id']}/")
    if not out.is_json:
        out.result(f"Revoked the invitation of {text_of(invitation.get('email'))}.")


@app.command("set-role")
def set_role(
    ctx: typer.Context,
    ref: MemberRef,
    role: Annotated[Role, typer.Argument(case_sensitive=False, help="owner, admin, member or viewer.")],
    output: OutputOption = None,
) -> None:
    """Change a member's role."""
    out = output_for(ctx, output)
    with client_for(ctx) as api:
        member = _find(api, MEMBERS_PATH, ref, what="member")
        updated = api.patch(f"{MEMBERS_PATH}{member['id']}/", {"role": role.value})
    if out.is_json:
        out.json(updated)
    else:
        out.result(f"{text_of(updated.get('email'))} is now {text_of(updated.get('role'))}.")


@app.command("remove")
def remove(
    ctx: typer.Context,
    ref: MemberRef,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    output: OutputOption = None,
) -> None:
    """Remove a member from the organisation (asks first unless --yes)."""
    out = output_for(ctx, output)
    if not yes and not stdin_is_terminal():
        # Refuse before touching the server: a script that forgot --yes must not half-run.
        raise UsageError("refusing to remove a member without confirmation", hint="pass --yes to confirm")
    with client_for(ctx) as api:
        member = _find(api, MEMBERS_PATH, ref, what="member")
        email = text_of(member.get("email"))
        confirm(f"Remove {email} ({text_of(member.get('role'))}) from the organisation?", yes=yes)
        api.delete(f"{MEMBERS_PATH}{member['id']}/")
    if not out.is_json:
        out.result(f"Removed {email}.")


def _find(api: ApiClient, collection: str, ref: str, *, what: str) -> dict[str, Any]:
    """The member or invitation named by its id (digits) or its email (any case)."""
    ref = ref.strip()
    numeric = ref.isascii() and ref.isdigit()
    if numeric:
        if collection == INVITATIONS_PATH:
            # The invitations endpoint has no per-item GET; the list is short (pending only).
            matches = [item for item in api.list_all(collection).items if str(item.get("id")) == ref]
        else:
            try:
                return api.get(f"{collection}{ref}/")
            except ApiError as exc:
                if exc.status == 404:
                    raise CliError(f"no {what} with id {ref}", ExitCode.NOT_FOUND) from exc
                raise
    elif "@" in ref:
        wanted = ref.casefold()
        matches = [
            item for item in api.list_all(collection).items if str(item.get("email", "")).casefold() == wanted
        ]
    else:
        raise UsageError(f"{ref!r} is neither an id nor an email")
    if not matches:
        label = "id" if numeric else "email"
        raise CliError(f"no {what} with {label} {ref}", ExitCode.NOT_FOUND)
    return matches[0]
