"""Account pages: sign-in, password, workspaces and members, API tokens, platform admin.

Views are thin: forms check input shape, services apply the rules and audit, and every object
named in a URL comes through a scoped selector (another workspace → 404).
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.choices import Role
from apps.core.permissions import has_perm, require_perm, role_allows
from apps.core.tables import render_table

from . import selectors, services
from .forms import (
    LoginForm,
    MemberAddForm,
    OwnPasswordChangeForm,
    PasswordResetForm,
    RoleForm,
    StaffMembershipForm,
    TokenCreateForm,
    UserCreateForm,
    WorkspaceForm,
    apply_service_errors,
)
from .tables import UserTable

# Invalid form submissions re-render the page with this status so clients (and tests) can tell.
INVALID = 400


def _safe_next(request, candidate: str | None, fallback: str) -> str:
    """`candidate` when it points back into this console, else `fallback`."""
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()},
                                                     require_https=request.is_secure()):
        return candidate
    return fallback


def _page_or_partial(request, template: str) -> str:
    """The confirmation pages double as modal bodies: htmx asks for their `confirm` partial."""
    return f"{template}#confirm" if getattr(request, "htmx", False) else template


# ---- sign-in and password -------------------------------------------------------------------

@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request):
    """Username/password sign-in, throttled per username+IP (see apps.accounts.throttling)."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = INVALID
        if form.is_valid():
            try:
                user = services.user_authenticate(request=request, username=form.cleaned_data["username"],
                                                  password=form.cleaned_data["password"])
            except services.LoginLocked as exc:
                form.add_error(None, str(exc))
                status = 429
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                login(request, user)
                return redirect(_safe_next(request, next_url, reverse("core:overview")))
    return render(request, "accounts/login.html", {"form": form, "next": next_url}, status=status)


@sensitive_post_parameters()
@login_required
@require_http_methods(["GET", "POST"])
def password_change(request):
    """Change one's own password; Django's validators apply and the session survives."""
    form = OwnPasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                services.user_password_set(actor=request.user, user=request.user,
                                           password=form.cleaned_data["new_password1"])
            except ValidationError as exc:
                form.add_error("new_password1", exc.message_dict.get("password", exc.messages))
            else:
                update_session_auth_hash(request, request.user)
                messages.success(request, "Your password has been changed.")
                return redirect("accounts:password_change")
        return render(request, "accounts/password_change.html", {"form": form}, status=INVALID)
    return render(request, "accounts/password_change.html", {"form": form})


# ---- workspaces -----------------------------------------------------------------------------

def _workspace_list_page(request, *, create_form=None, status=200):
    workspaces = list(selectors.workspaces_for(request.user))
    for ws in workspaces:
        ws.can_rename = role_allows(ws.my_role, "workspace:update")
        ws.can_view_members = role_allows(ws.my_role, "member:view")
    return render(request, "accounts/workspace_list.html", {
        "workspaces": workspaces,
        "create_form": create_form or WorkspaceForm(prefix="new"),
    }, status=status)


@login_required
@require_GET
def workspace_list(request):
    """My workspaces with my role; create one; admins rename theirs."""
    return _workspace_list_page(request)


@login_required
@require_POST
def workspace_create(request):
    form = WorkspaceForm(request.POST, prefix="new")
    if form.is_valid():
        try:
            workspace = services.workspace_create(user=request.user, name=form.cleaned_data["name"],
                                                  description=form.cleaned_data["description"])
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            request.session[selectors.SESSION_KEY] = workspace.pk
            messages.success(request, f'Workspace "{workspace.name}" created; you are its admin and now work in it.')
            return redirect("accounts:workspace_list")
    return _workspace_list_page(request, create_form=form, status=INVALID)


@login_required
@require_http_methods(["GET", "POST"])
def workspace_rename(request, pk):
    """GET shows the form (a page, or the modal body for htmx); POST renames. Admins only."""
    workspace = selectors.workspace_get_for_user(request.user, pk)
    require_perm(request.user, workspace, "workspace:update")
    form = WorkspaceForm(request.POST or None, initial={"name": workspace.name, "description": workspace.description})
    status = 200
    if request.method == "POST":
        status = INVALID
        if form.is_valid():
            try:
                services.workspace_rename(user=request.user, workspace=workspace, name=form.cleaned_data["name"],
                                          description=form.cleaned_data["description"])
            except ValidationError as exc:
                apply_service_errors(form, exc)
            else:
                messages.success(request, f'Workspace renamed to "{workspace.name}".')
                return redirect("accounts:workspace_list")
    return render(request, _page_or_partial(request, "accounts/workspace_rename.html"),
                  {"workspace": workspace, "form": form}, status=status)


@login_required
@require_POST
def workspace_switch(request, pk):
    """Make a workspace the current one (kept in the session) and go back where the user was."""
    workspace = selectors.workspace_get_for_user(request.user, pk)
    request.session[selectors.SESSION_KEY] = workspace.pk
    back = request.POST.get("next") or request.headers.get("Referer")
    return redirect(_safe_next(request, back, reverse("core:overview")))


# ---- members --------------------------------------------------------------------------------

def _members_page(request, workspace, *, add_form=None, role_form=None, role_pk=None, status=200):
    require_perm(request.user, workspace, "member:view")
    is_admin = has_perm(request.user, workspace, "member:update")
    memberships = list(selectors.memberships_of(workspace))
    for m in memberships:
        m.role_form = role_form if m.pk == role_pk else RoleForm(initial={"role": m.role}, prefix=f"m{m.pk}")
    return render(request, "accounts/membership_list.html", {
        "workspace": workspace,
        "memberships": memberships,
        "is_admin": is_admin,
        "add_form": add_form or MemberAddForm(),
    }, status=status)


@login_required
@require_GET
def workspace_members(request, pk):
    """The roster with roles; admins add, re-role and remove members."""
    return _members_page(request, selectors.workspace_get_for_user(request.user, pk))


@login_required
@require_POST
def member_add(request, pk):
    workspace = selectors.workspace_get_for_user(request.user, pk)
    require_perm(request.user, workspace, "member:create")
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            membership = services.membership_create(actor=request.user, workspace=workspace,
                                                    user=form.cleaned_data["user"], role=form.cleaned_data["role"])
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, f"{membership.user.get_username()} joined {workspace.name} as {membership.role}.")
            return redirect("accounts:workspace_members", pk=workspace.pk)
    return _members_page(request, workspace, add_form=form, status=INVALID)


@login_required
@require_POST
def member_update(request, pk, mid):
    workspace = selectors.workspace_get_for_user(request.user, pk)
    membership = selectors.membership_get(workspace, mid)
    require_perm(request.user, workspace, "member:update")
    form = RoleForm(request.POST, prefix=f"m{membership.pk}")
    if form.is_valid():
        try:
            services.membership_set(actor=request.user, workspace=workspace, user=membership.user,
                                    role=form.cleaned_data["role"])
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, f"{membership.user.get_username()} is now {form.cleaned_data['role']}.")
            return redirect("accounts:workspace_members", pk=workspace.pk)
    return _members_page(request, workspace, role_form=form, role_pk=membership.pk, status=INVALID)


@login_required
@require_http_methods(["GET", "POST"])
def member_remove(request, pk, mid):
    """GET asks for confirmation; POST removes. The last admin stays."""
    workspace = selectors.workspace_get_for_user(request.user, pk)
    membership = selectors.membership_get(workspace, mid)
    require_perm(request.user, workspace, "member:delete")
    error = None
    if request.method == "POST":
        try:
            services.membership_remove(actor=request.user, membership=membership)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, f"{membership.user.get_username()} was removed from {workspace.name}.")
            return redirect("accounts:workspace_members", pk=workspace.pk)
    return render(request, _page_or_partial(request, "accounts/membership_confirm_remove.html"),
                  {"workspace": workspace, "membership": membership, "error": error},
                  status=INVALID if error else 200)


# ---- API tokens -----------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def token_list(request):
    """My tokens; creating one shows its key in this response only (it is never stored)."""
    form = TokenCreateForm(request.POST or None)
    created, key, status = None, None, 200
    if request.method == "POST":
        status = INVALID
        if form.is_valid():
            try:
                created, key = services.api_token_create(user=request.user, name=form.cleaned_data["name"],
                                                         expires_at=form.cleaned_data["expires_at"])
            except ValidationError as exc:
                apply_service_errors(form, exc)
            else:
                form, status = TokenCreateForm(), 201
    response = render(request, "accounts/token_list.html", {
        "form": form, "tokens": selectors.tokens_of(request.user), "created": created, "key": key,
    }, status=status)
    if key:
        # The key must not linger in any cache or in the browser's back/forward store.
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def token_revoke(request, pk):
    """GET asks for confirmation; POST revokes (the row stays, marked revoked)."""
    token = selectors.token_get_for_user(request.user, pk)
    if request.method == "POST":
        services.api_token_revoke(user=request.user, token=token)
        messages.success(request, f'Token "{token.name}" revoked; requests using it now get 401.')
        return redirect("accounts:token_list")
    return render(request, _page_or_partial(request, "accounts/token_confirm_revoke.html"), {"token": token})


# ---- platform admin -------------------------------------------------------------------------

def _require_staff(request) -> None:
    if not (request.user.is_staff and request.user.is_active):
        raise PermissionDenied("Only platform admins can manage users.")


def _users_page(request, *, form=None, status=200):
    table = UserTable(selectors.users_search(), request.GET, id="users")
    return render_table(request, "accounts/user_list.html", {"form": form or UserCreateForm()}, table,
                        status=status)


@login_required
@require_GET
def admin_users(request):
    """Every user with search; create users. Staff only (403 for everyone else)."""
    _require_staff(request)
    return _users_page(request)


@sensitive_post_parameters("password")
@login_required
@require_POST
def admin_user_create(request):
    _require_staff(request)
    form = UserCreateForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.user_password_validate(data["password"], username=data["username"], email=data["email"])
            user = services.user_create(actor=request.user, username=data["username"], password=data["password"],
                                        email=data["email"], is_staff=data["is_staff"])
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, f'User "{user.username}" created with the workspace "{user.default_workspace}".')
            return redirect("accounts:admin_user_detail", pk=user.pk)
    return _users_page(request, form=form, status=INVALID)


def _user_detail_page(request, subject, *, password_form=None, membership_form=None, status=200):
    return render(request, "accounts/user_detail.html", {
        "subject": subject,
        "memberships": selectors.memberships_of_user(subject),
        "roles": Role.choices,
        "tokens": selectors.tokens_of(subject),
        "password_form": password_form or PasswordResetForm(),
        "membership_form": membership_form or StaffMembershipForm(),
    }, status=status)


@login_required
@require_GET
def admin_user_detail(request, pk):
    """One user: state, memberships, tokens; staff only (404 for everyone else)."""
    return _user_detail_page(request, selectors.user_get_for_staff(request.user, pk))


@login_required
@require_POST
def admin_user_active(request, pk):
    subject = selectors.user_get_for_staff(request.user, pk)
    activate = request.POST.get("is_active") == "true"
    try:
        services.user_set_active(actor=request.user, user=subject, is_active=activate)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{subject.username} is {'active' if activate else 'deactivated'}.")
    return redirect("accounts:admin_user_detail", pk=subject.pk)


@sensitive_post_parameters("password")
@login_required
@require_POST
def admin_user_password(request, pk):
    subject = selectors.user_get_for_staff(request.user, pk)
    form = PasswordResetForm(request.POST)
    if form.is_valid():
        try:
            services.user_password_set(actor=request.user, user=subject, password=form.cleaned_data["password"])
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            if subject.pk == request.user.pk:  # resetting one's own password keeps this session
                update_session_auth_hash(request, subject)
            messages.success(request, f"{subject.username}'s password was reset; their open sessions ended.")
            return redirect("accounts:admin_user_detail", pk=subject.pk)
    return _user_detail_page(request, subject, password_form=form, status=INVALID)


@login_required
@require_POST
def admin_membership_set(request, pk):
    """Staff: put the user in a workspace with a role, or change that role."""
    subject = selectors.user_get_for_staff(request.user, pk)
    form = StaffMembershipForm(request.POST)
    if form.is_valid():
        try:
            services.membership_set(actor=request.user, workspace=form.cleaned_data["workspace"], user=subject,
                                    role=form.cleaned_data["role"])
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, f"{subject.username} is {form.cleaned_data['role']} in "
                                      f"{form.cleaned_data['workspace']}.")
            return redirect("accounts:admin_user_detail", pk=subject.pk)
    return _user_detail_page(request, subject, membership_form=form, status=INVALID)


@login_required
@require_POST
def admin_membership_remove(request, pk, mid):
    subject = selectors.user_get_for_staff(request.user, pk)
    membership = selectors.memberships_of_user(subject).filter(pk=mid).first()
    if membership is None:
        raise Http404("Not found.")
    try:
        services.membership_remove(actor=request.user, membership=membership)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{subject.username} left {membership.workspace}.")
    return redirect("accounts:admin_user_detail", pk=subject.pk)


@login_required
@require_POST
def admin_token_revoke(request, pk, tid):
    """Staff: revoke one of the user's tokens (e.g. after a leak)."""
    subject = selectors.user_get_for_staff(request.user, pk)
    token = selectors.token_get_for_user(subject, tid)
    services.api_token_revoke(user=request.user, token=token)
    messages.success(request, f"{subject.username}'s token \"{token.name}\" revoked.")
    return redirect("accounts:admin_user_detail", pk=subject.pk)
