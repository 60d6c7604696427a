"""Page forms for accounts. They validate input shape; the rules live in services."""
from __future__ import annotations

from datetime import datetime, time

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.choices import Role

from .models import ApiToken, Workspace

User = get_user_model()


def apply_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: keyed messages on their field when the form
    has it, everything else above the form."""
    if hasattr(exc, "error_dict"):
        for field, messages in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, messages)
    else:
        form.add_error(None, exc.messages)


class LoginForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autofocus": True,
                                                                             "autocomplete": "username"}))
    password = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


# The rules of AUTH_PASSWORD_VALIDATORS in one sentence (Django's help is an HTML list).
PASSWORD_RULES = ("At least 10 characters; not a common password, not only digits, "
                  "and not similar to the username or email.")


class OwnPasswordChangeForm(PasswordChangeForm):
    """Django's form (old password check, confirmation, validators) with a one-line rule summary."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].help_text = PASSWORD_RULES


class WorkspaceForm(forms.Form):
    """Create or rename a workspace."""

    name = forms.CharField(max_length=Workspace._meta.get_field("name").max_length)
    description = forms.CharField(max_length=Workspace._meta.get_field("description").max_length, required=False)


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="An existing user's username.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.DEVELOPER)

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        user = User.objects.filter(username=username).first()
        if user is None:
            raise ValidationError(f'There is no user named "{username}". Usernames are case-sensitive; '
                                  "a platform admin creates new users.")
        self.cleaned_data["user"] = user
        return username


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=ApiToken._meta.get_field("name").max_length,
                           help_text="What uses this token, e.g. “CI pipeline”.")
    expires_at = forms.DateField(
        required=False, label="Expires on", widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional. The token stops working at the end of this day; leave empty for no expiry.",
    )

    def clean_expires_at(self):
        day = self.cleaned_data.get("expires_at")
        if day is None:
            return None
        if day < timezone.localdate():
            raise ValidationError(f"{day:%Y-%m-%d} is in the past; choose today or a later day.")
        # The last second of the chosen day in the console's time zone.
        return timezone.make_aware(datetime.combine(day, time(23, 59, 59)))


class UserCreateForm(forms.Form):
    """Platform admin: a new user with a personal workspace."""

    username = forms.CharField(max_length=150, help_text="Letters, digits and @ . + - _ only.")
    email = forms.EmailField(required=False)
    password = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                               help_text=PASSWORD_RULES)
    is_staff = forms.BooleanField(required=False, label="Platform admin",
                                  help_text="May create and deactivate users and manage every workspace's members.")


class PasswordResetForm(forms.Form):
    """Platform admin: set a user's password."""

    password = forms.CharField(strip=False, label="New password", help_text=PASSWORD_RULES,
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))


class StaffMembershipForm(forms.Form):
    """Platform admin: put a user in any workspace with a role."""

    workspace = forms.ModelChoiceField(queryset=Workspace.objects.order_by("name"), empty_label="Choose a workspace")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.DEVELOPER)
