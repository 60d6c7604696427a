"""Error pages: JSON in the one error format for API paths, the console layout for pages."""
from django.http import JsonResponse
from django.shortcuts import render

from .api import error_body


def _wants_json(request) -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/infer/")


def _bad_request_message(exception) -> str:
    """Words for the request-level refusals Django raises before a view runs."""
    from django.conf import settings
    from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent

    if isinstance(exception, TooManyFilesSent):
        return f"Too many files in one request; at most {settings.DATA_UPLOAD_MAX_NUMBER_FILES} are allowed."
    if isinstance(exception, TooManyFieldsSent):
        return "Too many form fields in one request."
    if isinstance(exception, RequestDataTooBig):
        return "The request body is too large."
    return "The request could not be understood."


def bad_request(request, exception=None):
    message = _bad_request_message(exception)
    if _wants_json(request):
        return JsonResponse(error_body("bad_request", message), status=400)
    return render(request, "core/error.html", {"code": 400, "title": "Bad request", "message": message}, status=400)


def not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return render(request, "core/error.html", {"code": 404, "title": "Not found",
                                               "message": "This page does not exist or you cannot see it."}, status=404)


def forbidden(request, exception=None):
    message = str(exception) if exception and str(exception) else "You do not have permission to do this."
    if _wants_json(request):
        return JsonResponse(error_body("permission_denied", message), status=403)
    return render(request, "core/error.html", {"code": 403, "title": "Insufficient permissions",
                                               "message": message}, status=403)


def server_error(request):
    if _wants_json(request):
        return JsonResponse(error_body("server_error", "Something went wrong on our side; it has been logged."),
                            status=500)
    return render(request, "core/error.html", {"code": 500, "title": "Something went wrong",
                                               "message": "The error has been logged."}, status=500)
