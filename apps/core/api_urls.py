"""Core API: the audit log (admins) lives here; health is at /healthz."""
urlpatterns: list = []
