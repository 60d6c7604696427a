"""Storage browser pages: bucket list, folder view, and the forms behind their buttons.

Views are thin: every object comes from a scoped accessor (another workspace's bucket
is a 404), every write goes through `services`, refusals come back as messages or
inline form errors.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.forms import ConfirmNameForm
from apps.core.paths import StoragePath, parse
from apps.core.permissions import has_perm, require_perm
from apps.core.storage import NotFound, get_storage
from apps.core.tables import render_table

from . import selectors, services
from .downloads import download_response
from .forms import BucketCreateForm, FolderCreateForm, GoToPathForm, UploadForm
from .links import folder_url, with_path
from .tables import BucketTable, FolderTable
from .uploads import limit_uploads


def _path_from(request, source) -> StoragePath:
    """The `path` parameter as a StoragePath the user can see; anything else is a 404."""
    try:
        path = parse(source.get("path", ""))
    except ValidationError:
        raise Http404("Not found.") from None
    bucket = selectors.bucket_get_for_user(request.user, path.bucket)
    require_perm(request.user, bucket.workspace, "storage:view")
    return path


def _browser_context(request, **forms) -> dict:
    workspace = request.workspace
    table = BucketTable(selectors.buckets_in(workspace), request.GET, id="buckets")
    return {
        "table": table,
        "create_form": forms.get("create_form") or BucketCreateForm(),
        "goto_form": forms.get("goto_form") or GoToPathForm(user=request.user),
        "can_create": has_perm(request.user, workspace, "storage:create"),
        "can_delete": has_perm(request.user, workspace, "storage:delete"),
    }


@login_required
@require_GET
def browser(request):
    """The bucket list of the current workspace, with the create-bucket and go-to-path forms."""
    if request.workspace is not None:
        require_perm(request.user, request.workspace, "storage:view")
    context = _browser_context(request)
    return render_table(request, "storage/bucket_list.html", context, context["table"])


@login_required
@require_POST
def bucket_create(request):
    form = BucketCreateForm(request.POST)
    if form.is_valid():
        try:
            bucket = services.bucket_create(user=request.user, workspace=request.workspace,
                                            name=form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f'Bucket "{bucket.name}" created.')
            return redirect("storage:bucket", bucket.name)
    context = _browser_context(request, create_form=form)
    return render(request, "storage/bucket_list.html", context, status=400)


@login_required
@require_GET
def go(request):
    """Open the folder named in `?path=` (the bucket list's path picker submits here)."""
    form = GoToPathForm(request.GET, user=request.user)
    if form.is_valid():
        return redirect(folder_url(form.cleaned_data["path"]))
    context = _browser_context(request, goto_form=form)
    return render(request, "storage/bucket_list.html", context, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def bucket_delete(request, bucket):
    """GET: the typed-name confirmation (a partial for the dialog). POST: delete with everything in it."""
    bucket = selectors.bucket_get_for_user(request.user, bucket)
    require_perm(request.user, bucket.workspace, "storage:delete")
    form = ConfirmNameForm(request.POST or None, expected=bucket.name)
    if request.method == "POST" and form.is_valid():
        services.bucket_delete(user=request.user, bucket=bucket, recursive=True)
        messages.success(request, f'Bucket "{bucket.name}" deleted.')
        return redirect("storage:browser")
    context = {"kind": "bucket", "name": bucket.name, "form": form, "bucket": bucket,
               "path": StoragePath(bucket.name, ""),
               "action": reverse("storage:bucket_delete", args=[bucket.name]),
               "consequences": f'The bucket "{bucket.name}" and every folder and file in it are deleted.',
               "back_url": reverse("storage:bucket", args=[bucket.name])}
    template = "storage/object_confirm_delete.html"
    if request.htmx and request.method == "GET":
        template += "#confirm-form"
    return render(request, template, context, status=400 if request.method == "POST" else 200)


@login_required
@require_GET
def folder(request, bucket, key=""):
    """One folder: breadcrumbs, its folders and files (search, sort, pages), and the write actions."""
    bucket_obj = selectors.bucket_get_for_user(request.user, bucket)
    require_perm(request.user, bucket_obj.workspace, "storage:view")
    try:
        path = parse(StoragePath(bucket, key.rstrip("/")).uri)
    except ValidationError:
        raise Http404("Not found.") from None
    storage = get_storage()
    if path.key and not storage.is_folder(path):
        if storage.exists(path):
            return redirect(with_path("storage:download", path))
        raise Http404("Not found.")
    table = FolderTable(path, request.GET)
    try:
        table.page  # noqa: B018  # list now, so a folder deleted meanwhile is a 404, not a broken page
    except NotFound:
        raise Http404("Not found.") from None
    crumbs = [{"name": bucket, "url": reverse("storage:bucket", args=[bucket])}]
    parts = path.key.split("/") if path.key else []
    for depth in range(1, len(parts) + 1):
        crumbs.append({"name": parts[depth - 1], "url": folder_url(StoragePath(bucket, "/".join(parts[:depth])))})
    context = {
        "bucket": bucket_obj,
        "path": path,
        "crumbs": crumbs,
        "parent_url": folder_url(path.parent) if path.key else reverse("storage:browser"),
        "folder_form": FolderCreateForm(),
        "upload_form": UploadForm(),
        "can_create": has_perm(request.user, bucket_obj.workspace, "storage:create"),
        "can_delete": has_perm(request.user, bucket_obj.workspace, "storage:delete"),
        "max_upload_bytes": settings.ATELIER_MAX_UPLOAD_BYTES,
    }
    return render_table(request, "storage/folder_detail.html", context, table)


@login_required
@require_POST
def folder_create(request):
    """Create a folder in `path`. htmx (the dialog) gets the form back with errors, or a redirect."""
    parent = _path_from(request, request.POST)
    form = FolderCreateForm(request.POST)
    if form.is_valid():
        try:
            created = services.folder_create(user=request.user, parent=parent, name=form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f'Folder "{created.key}" created.')
            if request.htmx:
                response = HttpResponse(status=204)
                response["HX-Redirect"] = folder_url(parent)
                return response
            return redirect(folder_url(parent))
    if request.htmx:
        return render(request, "storage/_folder_create_form.html", {"folder_form": form, "path": parent})
    for message in form.errors.get("name", []) + form.non_field_errors():
        messages.error(request, message)
    return redirect(folder_url(parent))


@csrf_exempt
@login_required
@require_POST
def upload(request):
    """Upload files into `path` without JavaScript (the page's module uses the API instead)."""
    # The limit handler must be in place before anything parses the body (CSRF reads it first).
    limit = limit_uploads(request)
    return _upload(request, limit)


@csrf_protect
def _upload(request, limit):
    folder = _path_from(request, request.POST)
    form = UploadForm(request.POST, request.FILES)
    try:
        if limit.too_large:
            raise ValidationError(services.upload_too_large_message(limit.too_large[0]))
        if not form.is_valid():
            raise ValidationError([e for errors in form.errors.values() for e in errors])
        infos = services.objects_upload(user=request.user, folder=folder, files=form.cleaned_data["files"])
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        names = ", ".join(info.name for info in infos)
        messages.success(request, f"Uploaded {len(infos)} file{'s' if len(infos) != 1 else ''}: {names}.")
    return redirect(folder_url(folder))


@login_required
@require_GET
def download(request):
    """Stream the file at `?path=` as an attachment."""
    path = _path_from(request, request.GET)
    try:
        return download_response(request, path)
    except NotFound:
        raise Http404("Not found.") from None


@login_required
@require_http_methods(["GET", "POST"])
def delete(request):
    """Delete the file or folder at `?path=`. GET renders the confirmation (a partial for the dialog);
    a folder must be confirmed by typing its name, since everything in it goes too."""
    path = _path_from(request, request.GET)
    if not path.key:
        return redirect("storage:bucket_delete", path.bucket)
    storage = get_storage()
    is_folder = storage.is_folder(path)
    if not is_folder and not storage.exists(path):
        raise Http404("Not found.")
    form = ConfirmNameForm(request.POST or None, expected=path.name) if is_folder else None
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            if is_folder:
                services.folder_delete(user=request.user, path=path, recursive=True)
            else:
                services.object_delete(user=request.user, path=path)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, f'{"Folder" if is_folder else "File"} "{path.key}" deleted.')
        return redirect(folder_url(path.parent))
    context = {"kind": "folder" if is_folder else "file", "name": path.name, "form": form, "path": path,
               "action": with_path("storage:delete", path), "back_url": folder_url(path.parent),
               "consequences": f'"{path.key}" and every folder and file inside it are deleted.' if is_folder else ""}
    template = "storage/object_confirm_delete.html"
    if request.htmx and request.method == "GET":
        template += "#confirm-form"
    return render(request, template, context, status=400 if request.method == "POST" else 200)
