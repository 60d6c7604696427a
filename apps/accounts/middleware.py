"""Sets `request.workspace`: the workspace chosen in the header switcher (kept in the session)."""
from .selectors import workspace_current


class CurrentWorkspaceMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.workspace = workspace_current(request) if request.user.is_authenticated else None
        return self.get_response(request)
