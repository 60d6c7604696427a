"""Template context every page needs: sidebar sections, workspaces for the switcher."""
from .navigation import sections_for


def console(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    from apps.accounts.selectors import workspaces_for

    return {
        "nav_sections": sections_for(request),
        "current_workspace": getattr(request, "workspace", None),
        "my_workspaces": list(workspaces_for(request.user)),
    }
