from django.urls import path

from . import views

urlpatterns = [
    path("", views.DatasetListView.as_view(), name="api-dataset-list"),
    path("<int:pk>/", views.DatasetDetailView.as_view(), name="api-dataset-detail"),
    path("<int:pk>/samples/", views.SampleListView.as_view(), name="api-dataset-samples"),
    path("<int:pk>/samples/<str:sample_id>/", views.SampleDetailView.as_view(), name="api-dataset-sample"),
    path("<int:pk>/samples/<str:sample_id>/annotations/", views.SampleAnnotationsView.as_view(),
         name="api-dataset-sample-annotations"),
    path("<int:pk>/labels/", views.LabelListView.as_view(), name="api-dataset-labels"),
    path("<int:pk>/labels/<int:label_id>/", views.LabelDetailView.as_view(), name="api-dataset-label"),
    path("<int:pk>/imports/", views.ImportView.as_view(), name="api-dataset-import"),
    path("<int:pk>/uploads/", views.UploadView.as_view(), name="api-dataset-upload"),
    path("<int:pk>/sync/", views.SyncView.as_view(), name="api-dataset-sync"),
    path("<int:pk>/versions/", views.VersionListView.as_view(), name="api-dataset-versions"),
    path("<int:pk>/versions/<int:version_id>/", views.VersionDetailView.as_view(), name="api-dataset-version"),
    path("<int:pk>/versions/<int:version_id>/current/", views.VersionCurrentView.as_view(),
         name="api-dataset-version-current"),
    path("<int:pk>/versions/<int:version_id>/analysis/", views.VersionAnalysisView.as_view(),
         name="api-dataset-version-analysis"),
    path("<int:pk>/exports/", views.ExportView.as_view(), name="api-dataset-export"),
    path("<int:pk>/auto-group/", views.AutoGroupView.as_view(), name="api-dataset-auto-group"),
    path("<int:pk>/processing/", views.ProcessingView.as_view(), name="api-dataset-processing"),
    path("<int:pk>/operations/", views.OperationListView.as_view(), name="api-dataset-operations"),
    path("<int:pk>/operations/<int:operation_id>/", views.OperationDetailView.as_view(), name="api-dataset-operation"),
    path("<int:pk>/operations/<int:operation_id>/errors/", views.OperationErrorsView.as_view(),
         name="api-dataset-operation-errors"),
    path("<int:pk>/operations/<int:operation_id>/stop/", views.OperationStopView.as_view(),
         name="api-dataset-operation-stop"),
]
