"""The algorithm form's editors and the list pages' column chooser and filters in a real browser.
Screenshots go to $ATELIER_SCREENSHOTS (default: the system temp dir)."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from apps.training.choices import TrainingStatus
from apps.training.models import Algorithm, TrainingJob

from .conftest import put_tree

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ATELIER_SCREENSHOTS", tempfile.gettempdir()))


def test_algorithm_form_editors_and_list_column_chooser(page, asgi_server, login, owner, workspace, bucket,
                                                        local_pool, cpu_flavor):
    put_tree("storage://train-data/code", {"train.py": "print('hi')\n"})
    login(page, owner, asgi_server.url)
    page.goto(f"{asgi_server.url}/training/algorithms/new")
    page.fill("input[name=name]", "browser-algo")
    page.select_option("select[name=engine]", "python")
    page.fill("input[name=code_dir]", "storage://train-data/code")
    page.fill("input[name=boot_file]", "train.py")
    # An input channel with a dataset constraint, and an output channel.
    page.click("[data-testid=algorithm-inputs] [data-add=inputs]")
    channel = page.locator("[data-channel-row=inputs]").first
    channel.locator("[data-role=name]").fill("data_url")
    channel.locator("[data-role=constrained]").check()
    channel.locator("[data-role=source]").select_option("dataset")
    channel.locator("[data-role=split]").select_option("split_only")
    page.click("[data-testid=algorithm-outputs] [data-add=outputs]")
    page.locator("[data-channel-row=outputs] [data-role=name]").fill("train_url")
    # A hyperparameter whose default breaks its range: flagged in the row, and the submit is held back.
    page.click("[data-testid=algorithm-hps] [data-add=hyperparameter]")
    hp = page.locator("[data-hp-row]").first
    hp.locator("[data-role=name]").fill("lr")
    hp.locator("[data-role=type]").select_option("Float")
    hp.locator("[data-role=constraint-kind]").select_option("range")
    hp.locator("[data-role=min]").fill("0.001")
    hp.locator("[data-role=max]").fill("1")
    hp.locator("[data-role=default]").fill("5")
    expect(hp.locator(".row-error")).to_have_text("The default 5 is outside the range.")
    preview = page.locator("[data-testid=form-runtime-preview]")
    expect(preview).to_contain_text("$MA_MOUNT_PATH/user-job-dir/code/train.py")
    expect(preview).to_contain_text("$MA_MOUNT_PATH/outputs/train_url_0/")
    page.screenshot(path=str(SHOTS / "training-algorithm-form-error.png"), full_page=True)
    page.click("[data-testid=save-algorithm]")
    assert not Algorithm.objects.exists()
    hp.locator("[data-role=default]").fill("0.1")
    hp.locator("[data-role=required]").check()
    hp.locator("[data-role=description]").fill("learning rate")
    expect(hp.locator(".row-error")).to_be_hidden()
    page.screenshot(path=str(SHOTS / "training-algorithm-form.png"), full_page=True)
    page.click("[data-testid=save-algorithm]")
    expect(page.locator("[data-testid=runtime-preview]")).to_contain_text("$MA_MOUNT_PATH/inputs/data_url_0/")
    page.screenshot(path=str(SHOTS / "training-algorithm-detail.png"), full_page=True)
    algorithm = Algorithm.objects.get(name="browser-algo")
    assert algorithm.inputs[0]["constraint"] == {"source": "dataset", "label_type": "", "data_format": [],
                                                 "split": "split_only"}
    assert algorithm.hyperparameters[0] == {"name": "lr", "type": "Float", "default": 0.1, "required": True,
                                            "constraint": {"kind": "range", "min": 0.001, "max": 1.0},
                                            "description": "learning rate"}

    # The algorithm list: hide the code-folder column; the choice survives a reload.
    page.goto(f"{asgi_server.url}/training/algorithms/")
    header = page.locator("#algorithms th[data-col=code_dir]")
    expect(header).to_be_visible()
    expect(page.locator("#algorithms th[data-col=image]")).to_be_hidden()  # hidden by default
    page.click("[data-testid=algorithms-columns] summary")
    page.uncheck("[data-testid=algorithms-columns] input[data-col=code_dir]")
    expect(header).to_be_hidden()
    page.reload()
    expect(page.locator("#algorithms th[data-col=code_dir]")).to_be_hidden()
    expect(page.locator("#algorithms td[data-col=code_dir]").first).to_be_hidden()
    page.screenshot(path=str(SHOTS / "training-algorithm-list.png"), full_page=True)

    # The job list: filters and the column chooser, which stays applied after an htmx refresh of the rows.
    for name, status in (("job-alpha", TrainingStatus.COMPLETED), ("job-beta", TrainingStatus.FAILED)):
        TrainingJob.objects.create(workspace=workspace, created_by=owner, name=name, pool=local_pool,
                                   flavor=cpu_flavor, status=status, algorithm=algorithm)
    page.goto(f"{asgi_server.url}/training/")
    page.click("[data-testid=jobs-columns] summary")
    page.check("[data-testid=jobs-columns] input[data-col=id]")
    page.uncheck("[data-testid=jobs-columns] input[data-col=pool\\.name]")
    expect(page.locator("#jobs th[data-col=id]")).to_be_visible()
    page.click("[data-testid=jobs-columns] summary")
    page.select_option("#jobs-status", "failed")
    expect(page.locator("#jobs-results")).not_to_contain_text("job-alpha")
    expect(page.locator("#jobs-results")).to_contain_text("job-beta")
    expect(page.locator("#jobs th[data-col=pool\\.name]")).to_be_hidden()
    expect(page.locator("#jobs th[data-col=id]")).to_be_visible()
    page.select_option("#jobs-status", "")
    page.fill("#jobs-name", "alpha")
    page.press("#jobs-name", "Enter")
    expect(page.locator("#jobs-results")).not_to_contain_text("job-beta")
    expect(page.locator("#jobs-results")).to_contain_text("job-alpha")
    page.screenshot(path=str(SHOTS / "training-job-list-columns.png"), full_page=True)


def test_job_form_optional_sections(page, asgi_server, login, owner, workspace, bucket, local_pool, cpu_flavor):
    from .conftest import put

    put("storage://train-data/in/a.bin", b"x" * 2048)
    algorithm = Algorithm.objects.create(workspace=workspace, name="fixed-algo", boot_mode="custom",
                                         boot_command="python run.py --fast", image="team/run:1")
    login(page, owner, asgi_server.url)
    page.goto(f"{asgi_server.url}/training/jobs/new")
    # "My algorithm": the fields it fixes show its values, greyed out and not editable (item 8).
    page.fill("input[name=code_dir]", "storage://train-data/mine")
    page.select_option("select[name=algorithm]", str(algorithm.pk))
    boot = page.locator("[data-testid=boot-fields]")
    expect(boot).to_have_class(re.compile("is-fixed"))
    expect(page.locator("input[name=boot_command]")).to_have_value("python run.py --fast")
    expect(page.locator("input[name=image]")).to_have_value("team/run:1")
    assert boot.evaluate("el => el.inert") is True
    page.screenshot(path=str(SHOTS / "training-job-form-algorithm.png"), full_page=True)
    page.select_option("select[name=algorithm]", "")
    expect(boot).not_to_have_class(re.compile("is-fixed"))
    expect(page.locator("select[name=boot_mode]")).to_have_value("preset")
    expect(page.locator("input[name=code_dir]")).to_have_value("storage://train-data/mine")  # restored
    expect(page.locator("input[name=run_as_uid]")).to_be_hidden()
    expect(page.locator("input[name=image]")).to_be_hidden()  # plain preset framework: no image
    page.select_option("select[name=boot_mode]", "preset_image")
    expect(page.locator("input[name=image]")).to_be_visible()
    expect(page.locator("input[name=boot_file]")).to_be_visible()
    page.select_option("select[name=boot_mode]", "custom")
    expect(page.locator("input[name=run_as_uid]")).to_have_value("1000")
    expect(page.locator("input[name=custom_cpus]")).to_be_hidden()
    page.check("input[name=custom_flavor_on]")
    expect(page.locator("input[name=custom_cpus]")).to_be_visible()
    page.check("input[name=persist_logs]")
    expect(page.locator("input[name=log_path]")).to_be_visible()
    page.select_option("select[name=notify_channel]", "webhook")
    expect(page.locator("input[name=notify_target]")).to_be_visible()
    page.click("[data-testid=inputs-editor] [data-add=inputs]")
    row = page.locator("[data-testid=inputs-editor] .editor-row").first
    row.locator("[data-role=name]").fill("data_url")
    row.locator("[data-role=uri]").fill("storage://train-data/in")
    page.select_option("select[name=pool]", label="local")
    expect(page.locator("[data-testid=pool-info]")).to_have_text(
        "Enabled · shared · no online node · 0/0 nodes available (0 registered) · 0 idle, 0 fragment · GPUs 0/0 free")
    page.click("[data-testid=input-size]")
    expect(page.locator("[data-input-size-result]")).to_contain_text("Inputs: 0.0 MiB of 50 GiB scratch disk.")
    page.screenshot(path=str(SHOTS / "training-job-form-sections.png"), full_page=True)


def test_terminate_and_delete_ask_first(page, asgi_server, login, owner, workspace, bucket, local_pool, cpu_flavor):
    from apps.training.services import training_job_create

    put_tree("storage://train-data/code", {"train.py": "print('hi')\n"})
    job = training_job_create(user=owner, workspace=workspace, name="confirm-me", pool=local_pool, flavor=cpu_flavor,
                              experiment="none", code_dir="storage://train-data/code", boot_file="train.py")
    login(page, owner, asgi_server.url)
    page.goto(f"{asgi_server.url}/training/jobs/{job.pk}/")
    dialog = page.locator("[data-testid=confirm-dialog]")
    # Cancel leaves the job as it was.
    page.click("[data-testid=stop]")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Terminate confirm-me?")
    page.screenshot(path=str(SHOTS / "training-job-terminate-confirm.png"), full_page=True)
    dialog.locator("[data-modal-close]").click()
    expect(dialog).to_be_hidden()
    assert TrainingJob.objects.get(pk=job.pk).status != TrainingStatus.TERMINATED
    # Esc also cancels.
    page.click("[data-testid=stop]")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert TrainingJob.objects.get(pk=job.pk).status != TrainingStatus.TERMINATED
    # Confirm submits the form.
    page.click("[data-testid=stop]")
    dialog.get_by_role("button", name="Terminate").click()
    expect(page.locator("[data-testid=status-card]")).to_have_attribute("data-status", "terminated")
    assert TrainingJob.objects.get(pk=job.pk).status == TrainingStatus.TERMINATED
    page.click("[data-testid=delete]")
    expect(dialog).to_contain_text("Delete confirm-me? Its output files are kept.")
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator("h1")).not_to_have_text("confirm-me")
    assert not TrainingJob.objects.filter(pk=job.pk).exists()
