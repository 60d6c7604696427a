"""`manage.py ensure_admin`: create the first platform admin when no staff user exists yet.

`make run` calls it on every start; it only ever creates one account, the first time.
The username and password come from ATELIER_ADMIN_USERNAME / ATELIER_ADMIN_PASSWORD
(or the options); without a password a random one is generated and printed once.
"""
from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.services import user_create

DEFAULT_USERNAME = "admin"
# 15 random bytes = 20 URL-safe characters (120 bits): strong, and still easy to copy once.
GENERATED_PASSWORD_BYTES = 15


class Command(BaseCommand):
    help = "Create the first admin (staff) account unless a staff account already exists."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=None,
                            help=f"defaults to ATELIER_ADMIN_USERNAME, else {DEFAULT_USERNAME!r}")
        parser.add_argument("--password", default=None,
                            help="defaults to ATELIER_ADMIN_PASSWORD, else a generated password printed once")
        parser.add_argument("--email", default=None, help="defaults to ATELIER_ADMIN_EMAIL, else empty")

    def handle(self, *args, username=None, password=None, email=None, **options):
        User = get_user_model()
        existing = list(User.objects.filter(is_staff=True, is_active=True).order_by("pk")
                        .values_list("username", flat=True)[:5])
        if existing:
            self.stdout.write(f"Admin account: {', '.join(existing)} (created earlier; password unchanged)")
            return

        username = (username or os.environ.get("ATELIER_ADMIN_USERNAME", "") or DEFAULT_USERNAME).strip()
        email = email or os.environ.get("ATELIER_ADMIN_EMAIL", "")
        source = "--password" if password else "ATELIER_ADMIN_PASSWORD"
        password = password or os.environ.get("ATELIER_ADMIN_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        else:
            try:
                validate_password(password, User(username=username, email=email))
            except ValidationError as exc:
                raise CommandError(f"The admin password from {source} is too weak: " + " ".join(exc.messages)) from None

        try:
            user_create(username=username, password=password, email=email, is_staff=True)
        except ValidationError as exc:
            details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            raise CommandError(
                f"Cannot create the admin account {username!r} ({details}). "
                "Set ATELIER_ADMIN_USERNAME to another name."
            ) from None

        self.stdout.write("Created the first admin account.")
        self.stdout.write(f"  Username: {username}")
        if generated:
            self.stdout.write(f"  Password: {password}")
            self.stdout.write("  (generated; shown only this once: sign in and change it under Change password)")
        else:
            self.stdout.write(f"  Password: the one given in {source}")
