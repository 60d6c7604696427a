"""`manage.py ensure_admin`: the first admin of a new installation, created once."""
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from apps.core.models import AuditEntry

User = get_user_model()


def run() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("ATELIER_ADMIN_USERNAME", "ATELIER_ADMIN_PASSWORD", "ATELIER_ADMIN_EMAIL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.django_db
def test_generates_a_password_and_prints_it_once():
    output = run()

    password = output.split("Password: ")[1].split()[0]
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert admin.check_password(password)
    assert len(password) == 20
    assert admin.default_workspace.name == "admin-default"
    assert AuditEntry.objects.filter(action="user:create", actor=admin).count() == 1

    again = run()
    assert again == "Admin account: admin (created earlier; password unchanged)\n"
    assert password not in again
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_takes_username_and_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("ATELIER_ADMIN_USERNAME", "ops")
    monkeypatch.setenv("ATELIER_ADMIN_PASSWORD", "copper-kettle-sunrise-7")
    monkeypatch.setenv("ATELIER_ADMIN_EMAIL", "ops@example.test")

    output = run()

    admin = User.objects.get(username="ops")
    assert admin.is_staff
    assert admin.email == "ops@example.test"
    assert admin.check_password("copper-kettle-sunrise-7")
    assert "copper-kettle-sunrise-7" not in output
    assert "Password: the one given in ATELIER_ADMIN_PASSWORD" in output


@pytest.mark.django_db
def test_does_nothing_when_a_staff_user_exists(staff, monkeypatch):
    monkeypatch.setenv("ATELIER_ADMIN_USERNAME", "second-admin")
    monkeypatch.setenv("ATELIER_ADMIN_PASSWORD", "copper-kettle-sunrise-7")

    assert run() == "Admin account: root-admin (created earlier; password unchanged)\n"
    assert not User.objects.filter(username="second-admin").exists()


@pytest.mark.django_db
def test_refuses_a_weak_password_without_creating_anyone(monkeypatch):
    monkeypatch.setenv("ATELIER_ADMIN_PASSWORD", "12345")

    with pytest.raises(CommandError) as excinfo:
        run()

    assert str(excinfo.value).startswith("The admin password from ATELIER_ADMIN_PASSWORD is too weak: ")
    assert "at least 10 characters" in str(excinfo.value)
    assert User.objects.count() == 0


@pytest.mark.django_db
def test_names_the_variable_when_the_username_is_taken(owner, monkeypatch):
    monkeypatch.setenv("ATELIER_ADMIN_USERNAME", owner.username)
    monkeypatch.setenv("ATELIER_ADMIN_PASSWORD", "copper-kettle-sunrise-7")

    with pytest.raises(CommandError) as excinfo:
        run()

    assert str(excinfo.value) == (
        f"Cannot create the admin account 'alice' (username: The username \"alice\" is taken.). "
        "Set ATELIER_ADMIN_USERNAME to another name."
    )
    owner.refresh_from_db()
    assert not owner.is_staff
    assert User.objects.count() == 1
