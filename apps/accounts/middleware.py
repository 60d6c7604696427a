"""Sets `request.workspace`: the workspace chosen in the header switcher (kept in the session)."""
from .selectors import workspace_current

API_PREFIX = "/api/"


class CurrentWorkspaceMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX):
            # The JSON API resolves the workspace in the views that need one (workspace_current:
            # header, session or default) and token clients are not authenticated yet here, so
            # the lookup would be a wasted query on every call, the hot labeling saves included.
            request.workspace = None
        else:
            request.workspace = workspace_current(request) if request.user.is_authenticated else None
        return self.get_response(request)
