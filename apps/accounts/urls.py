from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", views.password_change, name="password_change"),
    path("workspaces/", views.workspace_list, name="workspace_list"),
    path("workspaces/new/", views.workspace_create, name="workspace_create"),
    path("workspaces/<int:pk>/rename/", views.workspace_rename, name="workspace_rename"),
    path("workspaces/<int:pk>/switch/", views.workspace_switch, name="workspace_switch"),
    path("workspaces/<int:pk>/members/", views.workspace_members, name="workspace_members"),
    path("workspaces/<int:pk>/members/add/", views.member_add, name="member_add"),
    path("workspaces/<int:pk>/members/<int:mid>/role/", views.member_update, name="member_update"),
    path("workspaces/<int:pk>/members/<int:mid>/remove/", views.member_remove, name="member_remove"),
    path("tokens/", views.token_list, name="token_list"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path("admin/users/", views.admin_users, name="admin_users"),
    path("admin/users/new/", views.admin_user_create, name="admin_user_create"),
    path("admin/users/<int:pk>/", views.admin_user_detail, name="admin_user_detail"),
    path("admin/users/<int:pk>/active/", views.admin_user_active, name="admin_user_active"),
    path("admin/users/<int:pk>/password/", views.admin_user_password, name="admin_user_password"),
    path("admin/users/<int:pk>/memberships/", views.admin_membership_set, name="admin_membership_set"),
    path("admin/users/<int:pk>/memberships/<int:mid>/remove/", views.admin_membership_remove,
         name="admin_membership_remove"),
    path("admin/users/<int:pk>/tokens/<int:tid>/revoke/", views.admin_token_revoke, name="admin_token_revoke"),
]
