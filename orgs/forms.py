"""Portal forms: shape checks only; the services decide what is allowed."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from orgs.choices import Role
from orgs.models import normalise_email


class SignUpForm(forms.Form):
    """A new person and their organisation."""

    org_name = forms.CharField(label="Organisation name", max_length=100)
    slug = forms.CharField(
        label="Organisation URL name",
        max_length=40,
        help_text="Lowercase letters, digits and hyphens; your pages live under /o/<name>/.",
    )
    full_name = forms.CharField(label="Your name", max_length=150, required=False)
    email = forms.EmailField(label="Email")
    password = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)


class SignInForm(AuthenticationForm):
    """Email and password."""

    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True}))

    def clean_username(self) -> str:
        # Accounts store the address lower-cased: "A@Example.com" is the same person.
        return normalise_email(self.cleaned_data["username"])


class CreateOrgForm(forms.Form):
    """Another organisation for a signed-in person."""

    name = forms.CharField(label="Organisation name", max_length=100)
    slug = forms.CharField(label="URL name", max_length=40)


class InviteForm(forms.Form):
    """Invite someone by email."""

    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    """Change a member's role."""

    role = forms.ChoiceField(choices=Role.choices)


class TokenForm(forms.Form):
    """Create an API token."""

    name = forms.CharField(max_length=100)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires (optional)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


class AcceptAndRegisterForm(forms.Form):
    """Create an account to accept an invitation (the email is the invited one)."""

    full_name = forms.CharField(label="Your name", max_length=150, required=False)
    password = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)


class OrgSettingsForm(forms.Form):
    """Rename the organisation."""

    name = forms.CharField(max_length=100)
