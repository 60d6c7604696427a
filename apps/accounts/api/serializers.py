"""REST shapes for accounts. Validation of input shape only; rules live in the services."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from apps.core.choices import Role

from ..models import ApiToken, Membership, Workspace

User = get_user_model()


class AuthTokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})
    name = serializers.CharField(max_length=64, required=False, default="API client",
                                 help_text="Label shown in the token list.")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                           help_text="When the token stops working; omit for no expiry.")


class TokenCreatedSerializer(serializers.Serializer):
    """The one response that carries a token's plain key."""

    token = serializers.CharField(
        help_text="The key; shown only in this response. Send it as `Authorization: Token <key>`.")
    id = serializers.IntegerField()
    name = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


class ApiTokenSerializer(serializers.ModelSerializer):
    state = serializers.CharField(read_only=True, help_text="active, expired or revoked")

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "state", "created_at", "expires_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "state", "created_at", "last_used_at", "revoked_at"]


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class WorkspaceRoleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    role = serializers.CharField()


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    is_staff = serializers.BooleanField()
    current_workspace = serializers.IntegerField(allow_null=True, help_text="Id of the session's (or the "
                                                 "X-Atelier-Workspace header's) workspace.")
    workspaces = WorkspaceRoleSerializer(many=True)


class WorkspaceSerializer(serializers.ModelSerializer):
    my_role = serializers.CharField(read_only=True, help_text="The caller's role in this workspace.")

    class Meta:
        model = Workspace
        fields = ["id", "name", "description", "created_at", "my_role"]
        read_only_fields = ["id", "created_at", "my_role"]
        # Uniqueness is checked case-insensitively by the service with a clearer message.
        extra_kwargs = {"name": {"validators": []}}


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.CharField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "username", "email", "role", "created_at"]
        read_only_fields = ["id", "user", "username", "email", "created_at"]


class MembershipCreateSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, help_text="An existing user's username (case-sensitive).")
    role = serializers.ChoiceField(choices=Role.choices)

    def validate_username(self, value):
        user = User.objects.filter(username=value).first()
        if user is None:
            raise serializers.ValidationError(f'There is no user named "{value}".')
        self.context["member_user"] = user
        return value


class MembershipUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class UserSerializer(serializers.ModelSerializer):
    workspace_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "email", "is_staff", "is_active", "date_joined", "last_login", "workspace_count"]
        read_only_fields = fields


class UserCreateSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})
    is_staff = serializers.BooleanField(required=False, default=False)
