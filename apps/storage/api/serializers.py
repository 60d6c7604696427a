"""Storage API shapes: buckets, folder entries and the inputs of the write endpoints."""
from __future__ import annotations

from rest_framework import serializers

from ..models import Bucket


class BucketSerializer(serializers.ModelSerializer):
    uri = serializers.CharField(read_only=True)
    workspace = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Bucket
        fields = ["name", "uri", "workspace", "created_by", "created_at"]

    def get_workspace(self, bucket) -> dict:
        return {"id": bucket.workspace_id, "name": bucket.workspace.name}


class BucketCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=63, help_text="3–63 lowercase letters, digits and hyphens.")
    workspace = serializers.IntegerField(required=False, help_text="Workspace id; default: the current one.")


class EntrySerializer(serializers.Serializer):
    """One row of a folder listing."""

    type = serializers.CharField(source="kind")
    name = serializers.CharField()
    path = serializers.CharField(source="path.uri")
    size = serializers.IntegerField(allow_null=True)
    modified = serializers.DateTimeField(allow_null=True)


class FolderCreateSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="Parent folder, storage://bucket/key.")
    name = serializers.CharField(trim_whitespace=False, help_text='Folder name; "a/b/c" creates three levels.')


class UploadSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="Destination folder, storage://bucket/key.")
    files = serializers.ListField(
        child=serializers.FileField(), allow_empty=False,
        help_text="One or more files (multipart field repeated).",
        error_messages={"required": 'Choose at least one file to upload (multipart field "files").',
                        "empty": 'Choose at least one file to upload (multipart field "files").'},
    )


class ObjectInfoSerializer(serializers.Serializer):
    name = serializers.CharField()
    path = serializers.SerializerMethodField()
    size = serializers.IntegerField()
    modified = serializers.DateTimeField()

    def get_path(self, info) -> str:
        return f"storage://{self.context['bucket']}/{info.key}"
