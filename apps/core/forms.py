"""Forms every section reuses."""
from __future__ import annotations

from django import forms


class ConfirmNameForm(forms.Form):
    """Typed-name confirmation of a destructive action (components/confirm_delete.html).

    Valid only when `confirm_name` equals `expected` exactly: same case, no trimming, so
    "Prod " or "prod" never deletes "prod". The page disables the button until it matches;
    this is the check that counts.
    """

    confirm_name = forms.CharField(label="Name", strip=False, max_length=1024)

    def __init__(self, *args, expected: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.expected = expected

    def clean_confirm_name(self) -> str:
        typed = self.cleaned_data["confirm_name"]
        if typed != self.expected:
            raise forms.ValidationError(
                f'Type the name "{self.expected}" exactly to confirm; you typed "{typed}".', code="mismatch"
            )
        return typed
