"""Accounts REST API: token issue, tokens, me, workspaces, members, users (staff).

Objects named in a URL come through the same scoped selectors as the pages, so another
workspace's ids answer 404; writes go through apps.accounts.services.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins, permissions, status, viewsets
from rest_framework.response import Response

from apps.core.api import error_response
from apps.core.permissions import require_perm

from .. import selectors, services
from ..models import ApiToken, Membership, Workspace
from . import serializers as s

ERROR = OpenApiResponse(description='Error: `{"error": {"code", "message", "fields"}}`.')


class AuthTokenView(generics.GenericAPIView):
    """Exchange a username and password for a new API token.

    Throttled like the sign-in form: after too many failures for one username from one
    address, every try answers 429 with `Retry-After` until the lock ends.
    """

    serializer_class = s.AuthTokenRequestSerializer
    # Credentials travel in the body; a stale Authorization header must not turn this into a 401.
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(operation_id="auth_token_create", responses={201: s.TokenCreatedSerializer, 400: ERROR, 429: ERROR})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            user = services.user_authenticate(request=request._request, username=data["username"],
                                              password=data["password"], via="api")
        except services.LoginLocked as exc:
            response = error_response("throttled", str(exc), status.HTTP_429_TOO_MANY_REQUESTS)
            response["Retry-After"] = str(exc.retry_after)
            return response
        except ValidationError as exc:
            return error_response("invalid_credentials", " ".join(exc.messages))
        token, key = services.api_token_create(user=user, name=data["name"], expires_at=data["expires_at"])
        body = s.TokenCreatedSerializer({"token": key, "id": token.pk, "name": token.name,
                                         "expires_at": token.expires_at}).data
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="My API tokens (never their keys)"),
    retrieve=extend_schema(summary="One of my API tokens"),
    create=extend_schema(summary="Create a token; the key is in this response only",
                         request=s.TokenCreateSerializer, responses={201: s.TokenCreatedSerializer, 400: ERROR}),
    destroy=extend_schema(summary="Revoke a token (the record stays, marked revoked)", responses={204: None}),
)
class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                      mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ApiTokenSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return ApiToken.objects.none()
        return selectors.tokens_of(self.request.user)

    def get_object(self):
        return selectors.token_get_for_user(self.request.user, self.kwargs["pk"])

    def create(self, request, *args, **kwargs):
        serializer = s.TokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, key = services.api_token_create(user=request.user, **serializer.validated_data)
        body = s.TokenCreatedSerializer({"token": key, "id": token.pk, "name": token.name,
                                         "expires_at": token.expires_at}).data
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.api_token_revoke(user=self.request.user, token=instance)


class MeView(generics.GenericAPIView):
    """Who the caller is, their workspaces with roles, and the current workspace."""

    serializer_class = s.MeSerializer

    def get(self, request):
        user = request.user
        current = selectors.workspace_current(request)
        body = {
            "id": user.pk, "username": user.username, "email": user.email, "is_staff": user.is_staff,
            "current_workspace": current.pk if current else None,
            "workspaces": [{"id": w.pk, "name": w.name, "role": w.my_role} for w in selectors.workspaces_for(user)],
        }
        return Response(self.get_serializer(body).data)


@extend_schema_view(
    list=extend_schema(summary="Workspaces I belong to, with my role"),
    create=extend_schema(summary="Create a workspace (I become its admin)", responses={201: s.WorkspaceSerializer,
                                                                                         400: ERROR}),
    retrieve=extend_schema(summary="One of my workspaces", responses={200: s.WorkspaceSerializer, 404: ERROR}),
    partial_update=extend_schema(summary="Rename or re-describe a workspace (admins)",
                                 responses={200: s.WorkspaceSerializer, 400: ERROR, 403: ERROR, 404: ERROR}),
)
class WorkspaceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                       mixins.UpdateModelMixin, viewsets.GenericViewSet):
    serializer_class = s.WorkspaceSerializer
    # Renames are partial by nature; PUT would only restate the same two fields.
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Workspace.objects.none()
        return selectors.workspaces_for(self.request.user)

    def get_object(self):
        return selectors.workspace_get_for_user(self.request.user, self.kwargs["pk"])

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        workspace = services.workspace_create(user=request.user, name=serializer.validated_data["name"],
                                              description=serializer.validated_data.get("description", ""))
        workspace = selectors.workspace_get_for_user(request.user, workspace.pk)
        return Response(self.get_serializer(workspace).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        workspace = self.get_object()
        serializer = self.get_serializer(workspace, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.workspace_rename(user=request.user, workspace=workspace, name=data.get("name", workspace.name),
                                  description=data.get("description"))
        return Response(self.get_serializer(self.get_object()).data)


WORKSPACE_ID = OpenApiParameter("workspace_pk", int, OpenApiParameter.PATH, description="Workspace id")


@extend_schema_view(
    list=extend_schema(summary="Members of a workspace with their roles", parameters=[WORKSPACE_ID]),
    create=extend_schema(summary="Add an existing user to the workspace (admins)", parameters=[WORKSPACE_ID],
                         request=s.MembershipCreateSerializer,
                         responses={201: s.MembershipSerializer, 400: ERROR, 403: ERROR, 404: ERROR}),
    partial_update=extend_schema(summary="Change a member's role (admins; the last admin stays)",
                                 parameters=[WORKSPACE_ID], request=s.MembershipUpdateSerializer,
                                 responses={200: s.MembershipSerializer, 400: ERROR, 403: ERROR, 404: ERROR}),
    destroy=extend_schema(summary="Remove a member (admins; the last admin stays)", parameters=[WORKSPACE_ID],
                          responses={204: None, 400: ERROR, 403: ERROR, 404: ERROR}),
)
class MembershipViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
                        mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = s.MembershipSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def workspace(self):
        if not hasattr(self, "_workspace"):
            self._workspace = selectors.workspace_get_for_user(self.request.user, self.kwargs["workspace_pk"])
        return self._workspace

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        workspace = self.workspace()
        require_perm(self.request.user, workspace, "member:view")
        return selectors.memberships_of(workspace)

    def get_object(self):
        return selectors.membership_get(self.workspace(), self.kwargs["pk"])

    def create(self, request, *args, **kwargs):
        workspace = self.workspace()
        require_perm(request.user, workspace, "member:create")
        serializer = s.MembershipCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        membership = services.membership_create(actor=request.user, workspace=workspace,
                                                user=serializer.context["member_user"],
                                                role=serializer.validated_data["role"])
        return Response(s.MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()
        require_perm(request.user, membership.workspace, "member:update")
        serializer = s.MembershipUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_set(actor=request.user, workspace=membership.workspace,
                                             user=membership.user, role=serializer.validated_data["role"])
        return Response(s.MembershipSerializer(membership).data)

    def perform_destroy(self, instance):
        services.membership_remove(actor=self.request.user, membership=instance)


class IsPlatformStaff(permissions.BasePermission):
    message = "Only platform admins can manage users."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_staff and
                    request.user.is_active)


@extend_schema_view(
    list=extend_schema(summary="Every user (platform admins)",
                       parameters=[OpenApiParameter("q", str, description="Part of a username or email")]),
    retrieve=extend_schema(summary="One user (platform admins)"),
    create=extend_schema(summary="Create a user with a personal workspace (platform admins)",
                         request=s.UserCreateSerializer, responses={201: s.UserSerializer, 400: ERROR, 403: ERROR}),
)
class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                  viewsets.GenericViewSet):
    serializer_class = s.UserSerializer
    permission_classes = [permissions.IsAuthenticated, IsPlatformStaff]

    def get_queryset(self):
        return selectors.users_search(self.request.query_params.get("q", ""))

    def create(self, request, *args, **kwargs):
        serializer = s.UserCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.user_password_validate(data["password"], username=data["username"], email=data["email"])
        user = services.user_create(actor=request.user, **data)
        return Response(s.UserSerializer(self.get_queryset().get(pk=user.pk)).data, status=status.HTTP_201_CREATED)
