"""The labeling JSON API: jobs, labels, samples with their annotations, saves and frames.

The workbench is a client of exactly this API, so the CLI and SDK can label too.

Saving follows optimistic concurrency: `PUT …/samples/<id>/annotations/` carries the
`version` the edits started from and the sample's complete annotation list. If someone saved
in between, the answer is **409** with `{"error": {"code": "conflict", …}, "current": <sample>}`
(the other person's annotations, version and who changed it) and nothing is written. Every
other refusal is a 400 naming the annotation and rule (`annotations.2.geometry: …`), a 403 for
a role without the permission, or a 404 for anything outside the caller's workspaces.
"""
from __future__ import annotations

import base64
import binascii

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import workspace_current
from apps.core.api import Pagination, error_body
from apps.core.permissions import require_perm
from apps.datasets.choices import LabelStatus
from apps.datasets.models import Dataset, Label, Sample
from apps.datasets.selectors import FilterError

from .. import selectors, services
from ..media import waveform_peaks
from ..models import LabelingJob
from .serializers import (
    AnnotationsSavedSerializer,
    AnnotationsSaveSerializer,
    BatchSavedSerializer,
    BatchSaveSerializer,
    ChangedSerializer,
    ConflictSerializer,
    DataAddedSerializer,
    DataAddSerializer,
    FrameListSerializer,
    FrameSavedSerializer,
    FrameSaveSerializer,
    ImportHistorySerializer,
    JobCopySerializer,
    JobCreateSerializer,
    JobDeleteSerializer,
    JobSerializer,
    JobUpdateSerializer,
    LabelApplySerializer,
    LabelBatchDeleteSerializer,
    LabelListSerializer,
    LabelsDeletedSerializer,
    LabelSpecSerializer,
    LabelStatsSerializer,
    LabelUpdateSerializer,
    OperationStartedSerializer,
    PeaksSerializer,
    SampleDeleteSerializer,
    SamplesDeletedSerializer,
    WorkbenchSampleSerializer,
    sample_payload,
)

CONFLICT = OpenApiResponse(ConflictSerializer, description="Someone saved first; nothing was written.")


def _job(request, pk, action: str = "labeling:view") -> LabelingJob:
    job = selectors.job_get_for_user(request.user, pk)
    require_perm(request.user, job.workspace, action)
    return job


def conflict_response(job, sample: Sample, request) -> Response:
    """409: the newer state the caller must merge with; nothing of theirs was written."""
    if not sample.pk:
        body = error_body("conflict", "This frame was removed by someone else since you opened it; nothing was "
                                      "saved. Your edits are kept in the workbench.")
        body["current"] = None
        return Response(body, status=status.HTTP_409_CONFLICT)
    current = sample_payload(job, sample, request)
    who = current["last_change"]["by"] or "someone else"
    body = error_body("conflict", f"{who} saved this sample (now version {sample.annotation_version}) after you "
                                  "opened it; nothing was saved. Review their change, then save again.")
    body["current"] = current
    return Response(body, status=status.HTTP_409_CONFLICT)


class JobListView(APIView):
    """GET: jobs of the current workspace (`?type=`, `?tab=created|participating`). POST: create a job."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(responses=JobSerializer(many=True), parameters=[
        OpenApiParameter("type", str), OpenApiParameter("tab", str), OpenApiParameter("workspace", int)])
    def get(self, request):
        workspace = workspace_current(request)
        require_perm(request.user, workspace, "labeling:view")
        jobs = selectors.jobs_in(workspace)
        kind = request.query_params.get("type")
        if kind:
            jobs = jobs.filter(labeling_type=kind)
        tab = request.query_params.get("tab") or "created"
        if tab == "created":
            jobs = jobs.filter(created_by=request.user)
        elif tab == "participating":
            jobs = jobs.filter(team_enabled=True)
        else:
            raise exceptions.ValidationError({"tab": [f'"{tab}" is not a tab; use created or participating.']})
        paginator = Pagination()
        page = paginator.paginate_queryset(jobs, request, view=self)
        return paginator.get_paginated_response(JobSerializer(page, many=True).data)

    @extend_schema(request=JobCreateSerializer, responses={201: JobSerializer})
    def post(self, request):
        workspace = workspace_current(request)
        serializer = JobCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        dataset = Dataset.objects.filter(pk=data["dataset"], workspace=workspace).first()
        if dataset is None:
            raise exceptions.ValidationError({"dataset": [f"Dataset {data['dataset']} is not a dataset of this "
                                                          "workspace."]})
        job = services.job_create(
            user=request.user, workspace=workspace, name=data["name"], dataset=dataset,
            labeling_type=data["labeling_type"], description=data["description"], labels=data["labels"],
            team_enabled=data["team_enabled"], speech_content_enabled=data["speech_content_enabled"],
            speech_label_mode=data["speech_label_mode"], guide=data["guide"])
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)


class JobDetailView(APIView):
    """GET a job; PATCH name, description, guide, remarks; DELETE (`confirm`, `delete_annotations`)."""

    @extend_schema(responses=JobSerializer)
    def get(self, request, pk):
        return Response(JobSerializer(_job(request, pk)).data)

    @extend_schema(request=JobUpdateSerializer, responses=JobSerializer)
    def patch(self, request, pk):
        job = _job(request, pk)
        serializer = JobUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = services.job_update(user=request.user, job=job, name=data.get("name", job.name),
                                  description=data.get("description", job.description), guide=data.get("guide"),
                                  remarks=data.get("remarks"))
        return Response(JobSerializer(job).data)

    @extend_schema(request=JobDeleteSerializer, responses={204: None})
    def delete(self, request, pk):
        job = _job(request, pk)
        services.job_delete(user=request.user, job=job, confirm=str(request.data.get("confirm") or ""),
                            delete_annotations=bool(request.data.get("delete_annotations")))
        return Response(status=status.HTTP_204_NO_CONTENT)


class JobCopyView(APIView):
    """POST: copy the job (`name` optional: `<name>-copy-xxxx`); annotations are not copied."""

    @extend_schema(request=JobCopySerializer, responses={201: JobSerializer})
    def post(self, request, pk):
        job = _job(request, pk)
        copy = services.job_copy(user=request.user, job=job, name=str(request.data.get("name") or ""),
                                 description=request.data.get("description"))
        return Response(JobSerializer(copy).data, status=status.HTTP_201_CREATED)


class JobSyncView(APIView):
    """POST: rescan the dataset's input location now; answers the operation id."""

    @extend_schema(request=None, responses={202: OperationStartedSerializer})
    def post(self, request, pk):
        operation = services.job_sync(user=request.user, job=_job(request, pk))
        return Response({"operation": operation.pk, "status": operation.status}, status=status.HTTP_202_ACCEPTED)


class LabelListView(APIView):
    """GET: the job's labels with sample counts, shortcuts and attributes. POST: add a label."""

    @extend_schema(responses=LabelListSerializer)
    def get(self, request, pk):
        return Response({"labels": selectors.label_stats(_job(request, pk))})

    @extend_schema(request=LabelSpecSerializer, responses={201: LabelStatsSerializer})
    def post(self, request, pk):
        job = _job(request, pk)
        serializer = LabelSpecSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        spec = dict(serializer.validated_data)
        spec["source"] = request.data.get("source", "")
        label = services.job_label_create(user=request.user, job=job, spec=spec)
        stats = {row["id"]: row for row in selectors.label_stats(job)}
        return Response(stats[label.pk], status=status.HTTP_201_CREATED)


def _label(job, label_id) -> Label:
    label = Label.objects.filter(dataset_id=job.dataset_id, pk=label_id).first()
    if label is None:
        raise exceptions.NotFound("Not found.")
    return label


class LabelDetailView(APIView):
    """PATCH: rename, recolour, change attributes or shortcut. DELETE: remove it from every sample."""

    @extend_schema(request=LabelUpdateSerializer, responses=LabelStatsSerializer)
    def patch(self, request, pk, label_id):
        job = _job(request, pk)
        label = _label(job, label_id)
        attributes = request.data.get("attributes")
        services.job_label_update(user=request.user, job=job, label=label,
                                  name=request.data.get("name", label.name), color=request.data.get("color", ""),
                                  attributes=attributes if isinstance(attributes, list) else None,
                                  shortcut=request.data.get("shortcut"))
        stats = {row["id"]: row for row in selectors.label_stats(job)}
        return Response(stats[label.pk])

    @extend_schema(parameters=[OpenApiParameter("with_objects", bool)], responses=LabelsDeletedSerializer)
    def delete(self, request, pk, label_id):
        job = _job(request, pk)
        with_objects = str(request.query_params.get("with_objects", "")).lower() in ("1", "true", "yes")
        result = services.job_labels_delete(user=request.user, job=job, labels=[_label(job, label_id)],
                                            with_objects=with_objects)
        return Response(result)


class LabelBatchDeleteView(APIView):
    """POST {"labels": [ids], "with_objects": bool}: delete several labels at once (item 20)."""

    @extend_schema(request=LabelBatchDeleteSerializer, responses=LabelsDeletedSerializer)
    def post(self, request, pk):
        job = _job(request, pk)
        ids = request.data.get("labels")
        if not isinstance(ids, list) or not ids:
            raise exceptions.ValidationError({"labels": ["Select at least one label."]})
        labels = list(Label.objects.filter(dataset_id=job.dataset_id, pk__in=[i for i in ids if isinstance(i, int)]))
        if len(labels) != len(set(ids)):
            raise exceptions.ValidationError({"labels": ["Some of these labels are not labels of this job."]})
        return Response(services.job_labels_delete(user=request.user, job=job, labels=labels,
                                                   with_objects=bool(request.data.get("with_objects"))))


class SampleListView(APIView):
    """GET: the job's samples of one tab (`status`=unlabeled|labeled|to_confirm|all) with the
    filters `label`, `hard`, `name`, `annotator` (item 15); paginated, without annotations."""
    pagination_class = Pagination  # the schema documents the page wrapper

    @extend_schema(operation_id="v1_labeling_jobs_samples_list", responses=WorkbenchSampleSerializer(many=True),
                   parameters=[OpenApiParameter(name, str) for name in ("status", "label", "hard", "name",
                                                                        "annotator")])
    def get(self, request, pk):
        job = _job(request, pk)
        try:
            samples = selectors.samples_for_tab(job, request.query_params)
        except FilterError as exc:
            raise exceptions.ValidationError(exc.fields) from None
        paginator = Pagination()
        page = paginator.paginate_queryset(samples.select_related("dataset"), request, view=self)
        return paginator.get_paginated_response([sample_payload(job, s, request, annotations=False) for s in page])


class SampleDetailView(APIView):
    """GET: one sample with its annotations, version, last change and (videos) labeled frames."""

    @extend_schema(responses=WorkbenchSampleSerializer)
    def get(self, request, pk, sample_id):
        job = _job(request, pk)
        return Response(sample_payload(job, selectors.sample_get(job, sample_id), request))


class NextSampleView(APIView):
    """GET `?after=<sample id>&status=unlabeled`: the next sample to label, or 404 when none is left."""

    @extend_schema(parameters=[OpenApiParameter("after", str), OpenApiParameter("status", str)],
                   responses={200: WorkbenchSampleSerializer,
                              404: OpenApiResponse(description="No such sample is left.")})
    def get(self, request, pk):
        job = _job(request, pk)
        wanted = request.query_params.get("status") or LabelStatus.UNLABELED
        if wanted != "all" and wanted not in LabelStatus.values:
            raise exceptions.ValidationError({"status": [f'"{wanted}" is not a status; use all, '
                                                         f'{", ".join(LabelStatus.values)}.']})
        after = None
        if request.query_params.get("after"):
            after = selectors.sample_get(job, request.query_params["after"])
        sample = selectors.next_sample(job, after=after, status=wanted)
        if sample is None:
            return Response(error_body("not_found", f"No {wanted if wanted != 'all' else ''} sample is left in this "
                                                    "job.".replace("  ", " ")), status=status.HTTP_404_NOT_FOUND)
        return Response(sample_payload(job, sample, request))


class SampleAnnotationsView(APIView):
    """PUT {"version": int, "annotations": [...]}: replace the sample's annotations (see the module doc)."""

    @extend_schema(request=AnnotationsSaveSerializer, responses={200: AnnotationsSavedSerializer, 409: CONFLICT})
    def put(self, request, pk, sample_id):
        job = _job(request, pk, "annotation:update")
        sample = selectors.sample_get(job, sample_id)
        data = request.data if isinstance(request.data, dict) else {}
        try:
            result = services.annotations_save(user=request.user, job=job, sample=sample,
                                               version=data.get("version"), annotations=data.get("annotations"))
        except services.AnnotationConflict as conflict:
            return conflict_response(job, conflict.sample, request)
        # The saved rows are at hand: answering from them spares reading the sample back.
        result["annotations"] = [selectors.annotation_payload(a, a.label) for a in result.pop("objects")]
        return Response(result)


class BatchAnnotationsView(APIView):
    """PUT {"items": [{"sample", "version", "annotations"}]}: save several samples at once, all or none."""

    @extend_schema(request=BatchSaveSerializer, responses={200: BatchSavedSerializer, 409: CONFLICT})
    def put(self, request, pk):
        job = _job(request, pk, "annotation:update")
        items = request.data.get("items") if isinstance(request.data, dict) else None
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise exceptions.ValidationError({"items": ["Send a list of {sample, version, annotations}."]})
        ids = [str(item.get("sample") or "") for item in items]
        samples = {s.pk: s for s in Sample.objects.filter(dataset_id=job.dataset_id, pk__in=ids)}
        missing = [i for i in ids if i not in samples]
        if missing:
            raise exceptions.NotFound("Not found.")
        try:
            results = services.annotations_save_many(user=request.user, job=job, items=items, samples=samples)
        except services.AnnotationConflict as conflict:
            return conflict_response(job, conflict.sample, request)
        return Response({"items": results})


class SampleLabelApplyView(APIView):
    """POST {"samples": [ids], "labels": [names]}: add class labels to many samples (item 22).
    DELETE with the same body removes one label from the selected samples only (item 23)."""

    def _parse(self, request, job):
        serializer = LabelApplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        samples = list(Sample.objects.filter(dataset_id=job.dataset_id, pk__in=data["samples"]))
        if len(samples) != len(set(data["samples"])):
            raise exceptions.NotFound("Not found.")
        labels = {label.name: label for label in Label.objects.filter(dataset_id=job.dataset_id,
                                                                      name__in=data["labels"])}
        unknown = [name for name in data["labels"] if name not in labels]
        if unknown:
            raise exceptions.ValidationError({"labels": [f'The label "{unknown[0]}" does not exist in this job; '
                                                         "add it to the label set first."]})
        return samples, [labels[name] for name in dict.fromkeys(data["labels"])]

    @extend_schema(request=LabelApplySerializer, responses=ChangedSerializer)
    def post(self, request, pk):
        job = _job(request, pk, "annotation:update")
        samples, labels = self._parse(request, job)
        changed = services.samples_label_add(user=request.user, job=job, samples=samples, labels=labels)
        return Response({"changed": changed})

    @extend_schema(request=LabelApplySerializer, responses=ChangedSerializer)
    def delete(self, request, pk):
        job = _job(request, pk, "annotation:update")
        samples, labels = self._parse(request, job)
        changed = sum(services.samples_label_remove(user=request.user, job=job, samples=samples, label=label)
                      for label in labels)
        return Response({"changed": changed})


def _decode_image(raw: str) -> bytes:
    if raw.startswith("data:"):
        raw = raw.partition(",")[2]
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise exceptions.ValidationError({"image": ["The frame image is not valid base64."]}) from None


class FrameListView(APIView):
    """GET: the video's labeled frames. POST {"time", "version", "annotations", "image"?}: label a frame."""

    @extend_schema(responses=FrameListSerializer)
    def get(self, request, pk, sample_id):
        job = _job(request, pk)
        return Response({"frames": selectors.frames_of(selectors.sample_get(job, sample_id))})

    @extend_schema(request=FrameSaveSerializer, responses={200: FrameSavedSerializer, 409: CONFLICT})
    def post(self, request, pk, sample_id):
        job = _job(request, pk, "annotation:update")
        video = selectors.sample_get(job, sample_id)
        data = request.data if isinstance(request.data, dict) else {}
        image = _decode_image(data["image"]) if isinstance(data.get("image"), str) and data["image"] else None
        try:
            result = services.video_frame_save(user=request.user, job=job, video=video, time=data.get("time"),
                                               version=data.get("version"), annotations=data.get("annotations"),
                                               image=image)
        except services.AnnotationConflict as conflict:
            if conflict.sample.pk:
                body = error_body("conflict", "Someone else saved this frame after you opened it; nothing was saved.")
                body["current"] = {"frames": selectors.frames_of(video)}
                return Response(body, status=status.HTTP_409_CONFLICT)
            return conflict_response(job, conflict.sample, request)
        result["frames"] = selectors.frames_of(video)
        return Response(result)


class FrameDetailView(APIView):
    """DELETE: remove every label of one frame (item 46)."""

    @extend_schema(responses=FrameListSerializer)
    def delete(self, request, pk, sample_id, frame_id):
        job = _job(request, pk, "annotation:update")
        video = selectors.sample_get(job, sample_id)
        services.video_frame_delete(user=request.user, job=job, video=video, frame=selectors.frame_get(video, frame_id))
        return Response({"frames": selectors.frames_of(video)})


class PeaksView(APIView):
    """GET `?columns=2000`: the recording's waveform as min/max pairs (−1…1) per column."""

    @extend_schema(parameters=[OpenApiParameter("columns", int)], responses=PeaksSerializer)
    def get(self, request, pk, sample_id):
        job = _job(request, pk)
        sample = selectors.sample_get(job, sample_id)
        raw = request.query_params.get("columns") or "2000"
        if not raw.isdigit():
            raise exceptions.ValidationError({"columns": [f'"{raw}" is not a number of columns.']})
        try:
            return Response(waveform_peaks(sample, int(raw)))
        except ValueError as exc:
            raise exceptions.ValidationError({"sample": [str(exc)]}) from None


class SampleDeleteView(APIView):
    """POST {"samples": [ids], "delete_source": false, "confirm": ""}: delete samples (item 17).

    Source files are removed only with `delete_source` and `confirm` = "DELETE"; the answer
    counts what went and lists files that could not be removed."""

    @extend_schema(request=SampleDeleteSerializer, responses=SamplesDeletedSerializer)
    def post(self, request, pk):
        job = _job(request, pk, "labeling:update")
        data = request.data if isinstance(request.data, dict) else {}
        ids = data.get("samples")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise exceptions.ValidationError({"samples": ["Send the ids of the samples to delete as a list."]})
        delete_source = data.get("delete_source", False)
        if not isinstance(delete_source, bool):
            raise exceptions.ValidationError({"delete_source": ["delete_source is true or false."]})
        result = services.samples_delete(user=request.user, job=job, sample_ids=ids, delete_source=delete_source,
                                         confirm=str(data.get("confirm") or ""))
        return Response(result)


class DataAddView(APIView):
    """POST (JSON or multipart): "Add data" into the job's dataset (item 18).

    `labeled` (bool, required), then either `path` (storage://… to import from) or `files`
    (multipart uploads, stored under `upload_path` when given, else the dataset's input
    location); optional `format`.
    Answers 202 with the import operation; GET lists the dataset's import history."""

    @extend_schema(responses=ImportHistorySerializer)
    def get(self, request, pk):
        job = _job(request, pk)
        return Response({"results": [selectors.import_row(op) for op in selectors.import_history(job)[:50]]})

    @extend_schema(request={"application/json": DataAddSerializer, "multipart/form-data": DataAddSerializer},
                   responses={202: DataAddedSerializer})
    def post(self, request, pk):
        job = _job(request, pk, "labeling:update")
        raw = request.data.get("labeled")
        labeled = {True: True, False: False, "true": True, "false": False, "1": True, "0": False}.get(raw)
        if labeled is None:
            raise exceptions.ValidationError({"labeled": ["Say whether the data is labeled: true or false."]})
        files = request.FILES.getlist("files") or None if hasattr(request.FILES, "getlist") else None
        operation = services.job_data_add(user=request.user, job=job, labeled=labeled,
                                          path=str(request.data.get("path") or "").strip(), files=files,
                                          import_format=str(request.data.get("format") or ""),
                                          upload_path=str(request.data.get("upload_path") or "").strip())
        return Response({"operation": operation.uid, "id": operation.pk, "status": operation.status},
                        status=status.HTTP_202_ACCEPTED)
