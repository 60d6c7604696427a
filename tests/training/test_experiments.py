"""Experiments (seed-05 §17 item 40): created from the job form only, unique names, modified time,
editable name/description, and a delete that needs DELETE typed and takes every job with it."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from apps.training.models import Experiment, TrainingJob
from apps.training.services import training_job_create, training_job_delete, training_job_stop

from .conftest import put_tree

pytestmark = pytest.mark.django_db

EXPERIMENTS = "/api/v1/training/experiments/"


@pytest.fixture
def make_job(owner, workspace, bucket, local_pool, cpu_flavor, django_capture_on_commit_callbacks):
    put_tree("storage://train-data/code", {"train.py": "print('hi')\n"})

    def make(name, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return training_job_create(user=owner, workspace=workspace, name=name, pool=local_pool,
                                       flavor=cpu_flavor, code_dir="storage://train-data/code",
                                       boot_file="train.py", **kwargs)
    return make


def _age(experiment):
    """Move the modified time back so a later touch is visible."""
    old = experiment.modified_at - dt.timedelta(hours=1)
    Experiment.objects.filter(pk=experiment.pk).update(modified_at=old)
    return old


def test_experiments_come_from_the_job_form_and_track_their_jobs(api, owner, make_job):
    first = make_job("job-a", experiment="new", experiment_name="exp-1", experiment_description="baseline")
    experiment = first.experiment
    assert (experiment.name, experiment.description) == ("exp-1", "baseline")
    # There is no create endpoint of its own.
    assert api.post(EXPERIMENTS, {"name": "direct"}, format="json").status_code == 405
    with pytest.raises(ValidationError) as exc:
        make_job("job-b", experiment="new", experiment_name="exp-1")
    assert 'An experiment named "exp-1" already exists' in str(exc.value)
    old = _age(experiment)
    make_job("job-c", experiment="existing", experiment_id=experiment.pk)
    experiment.refresh_from_db()
    assert experiment.modified_at > old  # a job was added
    old = _age(experiment)
    job = TrainingJob.objects.get(name="job-c")
    training_job_stop(user=owner, job=job)
    training_job_delete(user=owner, job=TrainingJob.objects.get(pk=job.pk))
    experiment.refresh_from_db()
    assert experiment.modified_at > old  # a job was removed
    assert [(e["name"], e["job_count"]) for e in api.get(EXPERIMENTS).json()["results"]] == [("exp-1", 1)]


def test_name_and_description_are_edited_on_the_detail_page(client, owner, make_job):
    experiment = make_job("job-a", experiment="new", experiment_name="exp-1").experiment
    make_job("job-b", experiment="new", experiment_name="exp-2")
    old = _age(experiment)
    client.force_login(owner)
    url = f"/training/experiments/{experiment.pk}/"
    assert client.post(url, {"name": "exp-renamed", "description": "d" * 256}).status_code == 302
    experiment.refresh_from_db()
    assert (experiment.name, len(experiment.description)) == ("exp-renamed", 256)
    assert experiment.modified_at > old
    page = client.post(url, {"name": "exp-2", "description": ""}, follow=True).content.decode()
    assert "An experiment named &quot;exp-2&quot; already exists." in page
    page = client.post(url, {"name": "exp-renamed", "description": "x" * 257}, follow=True).content.decode()
    assert "256" in page
    experiment.refresh_from_db()
    assert (experiment.name, len(experiment.description)) == ("exp-renamed", 256)


def test_delete_needs_DELETE_and_takes_every_job(client, api, owner, outsider, make_job):
    experiment = make_job("job-a", experiment="new", experiment_name="exp-1").experiment
    make_job("job-b", experiment="existing", experiment_id=experiment.pk)  # Pending: stopped, then deleted
    other = make_job("job-c", experiment="none")
    client.force_login(owner)
    url = f"/training/experiments/{experiment.pk}/"
    page = client.post(url, {"action": "delete", "confirm": "delete"}, follow=True).content.decode()
    assert "Type DELETE to delete the experiment and all of its jobs." in page
    assert TrainingJob.objects.filter(experiment=experiment).count() == 2
    refused = api.delete(f"{EXPERIMENTS}{experiment.pk}/", {"confirm": "yes"}, format="json")
    assert refused.status_code == 400
    client.force_login(outsider)
    assert client.post(url, {"action": "delete", "confirm": "DELETE"}).status_code == 404
    client.force_login(owner)
    response = client.post(url, {"action": "delete", "confirm": "DELETE"})
    assert response.status_code == 302 and response["Location"] == "/training/experiments/"
    assert not Experiment.objects.filter(pk=experiment.pk).exists()
    assert list(TrainingJob.objects.values_list("name", flat=True)) == [other.name]
