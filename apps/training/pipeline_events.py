"""The per-node pipeline events of training jobs in the documented wording (seed-05 §4).

The run engine performs some steps of a node's pipeline itself (input staging per channel,
the process's end, the final output upload per channel) and describes each as a structured
`apps.runtime.runevents.PipelineStep`; this module words them for runs owned by a training
job, Chinese first (the ModelArts wording the documentation lists) with English beside it,
the duration as `[耗时: N 秒]` where the documentation has one and the exit code where it has
one. It is registered for the training owner type in `TrainingConfig.ready()`; the engine adds
the `[worker-N]` prefix. The steps inside the run (pre-check, dependencies, pre-start hook,
process start) are printed by `builtin/launch.py` as ATELIER_EVENT lines in the same wording.

A node's events, in order (documented item numbers in brackets):
  训练代码下载中 [21] → 训练代码下载完成 [22] or 下载失败 [23] (the job's code folder, staged as
  the run input "code"), then per input channel 训练输入下载中 [24] → 训练输入 (参数名称: x)
  下载完成 [25] or 下载失败 [26], outputs restored for a resume (预下载), then from the launcher
  the pre-check, dependencies, hook and 训练任务开始运行 [29], then 训练任务运行结束, 退出码 N [30],
  训练输入上传中 [31] and per output channel 训练输出 (参数名称: x) 上传完成 [32] (or 上传失败).
The engine's status steps (waiting for the other nodes, all nodes started, the launcher's process
started, succeeded) are worded here too; they are not documented items, so their Chinese follows
the list's style.

The user's parameter names are looked up on the job: the engine knows channels by their folder
(`<name>_0`, see channels.local_name).
"""
from __future__ import annotations

from apps.runtime.logstream import human_bytes
from apps.runtime.runevents import (
    STEP_INPUT_DONE,
    STEP_INPUT_FAILED,
    STEP_INPUT_STARTED,
    STEP_NODES_READY,
    STEP_NODES_WAITING,
    STEP_OUTPUT_DONE,
    STEP_OUTPUT_FAILED,
    STEP_OUTPUT_STARTED,
    STEP_PROCESS_ENDED,
    STEP_PROCESS_STARTED,
    STEP_SUCCEEDED,
    PipelineStep,
    with_duration,
)

CODE_INPUT = "code"  # the run input that stages the job's code folder (services._run_inputs)


def _count(step: PipelineStep) -> str:
    return f"{step.files} file{'s' if step.files != 1 else ''}, {human_bytes(step.bytes)}"


def _parameter(run, step: PipelineStep, field: str) -> str:
    """The parameter name of the job's channel staged in folder `step.channel` (the folder if unknown)."""
    from .models import TrainingJob

    channels = TrainingJob.objects.filter(pk=run.owner_id).values_list(field, flat=True).first() or []
    return next((c["name"] for c in channels if c.get("local") == step.channel), step.channel)


def training_pipeline_text(run, step: PipelineStep) -> str | None:
    """The event text of a pipeline step of a training job's run (without the `[worker-N]` prefix)."""
    kind, took = step.kind, step.seconds
    if kind in (STEP_INPUT_STARTED, STEP_INPUT_DONE, STEP_INPUT_FAILED) and step.channel == CODE_INPUT \
            and not step.preload:
        if kind == STEP_INPUT_STARTED:
            return "训练代码下载中 / Downloading the training code"
        if kind == STEP_INPUT_DONE:
            return with_duration(f"训练代码下载完成 / Training code downloaded: {_count(step)}", took)
        return with_duration(f"训练代码下载失败, 失败原因: {step.error} / Training code download failed", took)
    if kind in (STEP_INPUT_STARTED, STEP_INPUT_DONE, STEP_INPUT_FAILED) and step.preload:
        # Outputs restored before an attempt (pre-download, or a resume after a restart): not in the
        # documented list, worded like it.
        name = _parameter(run, step, "outputs")
        if kind == STEP_INPUT_STARTED:
            return f"训练输出 (参数名称: {name}) 预下载中 / Pre-downloading output {name}"
        if kind == STEP_INPUT_DONE:
            return with_duration(f"训练输出 (参数名称: {name}) 预下载完成 / Output {name} pre-downloaded: "
                                 f"{_count(step)}", took)
        return with_duration(f"训练输出 (参数名称: {name}) 预下载失败, 失败原因: {step.error} / "
                             f"Output {name} pre-download failed", took)
    if kind == STEP_INPUT_STARTED:
        name = _parameter(run, step, "inputs")
        return f"训练输入下载中 (参数名称: {name}) / Downloading input {name}"
    if kind == STEP_INPUT_DONE:
        name = _parameter(run, step, "inputs")
        return with_duration(f"训练输入 (参数名称: {name}) 下载完成 / Input {name} downloaded: {_count(step)}", took)
    if kind == STEP_INPUT_FAILED:
        name = _parameter(run, step, "inputs")
        return with_duration(f"训练输入 (参数名称: {name}) 下载失败, 失败原因: {step.error} / "
                             f"Input {name} download failed", took)
    if kind == STEP_PROCESS_ENDED:
        # The documented wording has no duration here: the job's own duration is on its page.
        return f"训练任务运行结束, 退出码 {step.exit_code} / Training process ended, exit code {step.exit_code}"
    if kind == STEP_OUTPUT_STARTED:
        # "训练输入上传中" is the documented text verbatim (sic: it announces the *output* upload).
        return "训练输入上传中 / Uploading training outputs"
    if kind == STEP_OUTPUT_DONE:
        name = _parameter(run, step, "outputs")
        return with_duration(f"训练输出 (参数名称: {name}) 上传完成 / Output {name} uploaded: {_count(step)}", took)
    if kind == STEP_OUTPUT_FAILED:
        name = _parameter(run, step, "outputs")
        return with_duration(f"训练输出 (参数名称: {name}) 上传失败, 失败原因: {step.error} / "
                             f"Output {name} upload failed", took)
    # The engine's status steps: not in the documented list, worded like it (Chinese, English beside).
    if kind == STEP_NODES_WAITING:
        return "等待其他节点启动 / Waiting for the other nodes."
    if kind == STEP_NODES_READY:
        return f"全部 {step.nodes} 个节点已启动, 主节点 {step.address} / All {step.nodes} nodes started; " \
               f"master {step.address}."
    if kind == STEP_PROCESS_STARTED:
        # The launcher's process: the user's code starts later (训练任务开始运行, from the launcher).
        return f"训练进程已启动 (pid {step.pid}) / Process started (pid {step.pid})."
    if kind == STEP_SUCCEEDED:
        return "运行成功, 退出码 0 / Succeeded: the process exited with code 0."
    return None
