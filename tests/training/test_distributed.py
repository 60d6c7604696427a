"""Distributed training jobs on two real worker processes (one node each), CPU-only with gloo."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.training.choices import TrainingStatus
from apps.training.selectors import job_runs
from apps.training.services import training_job_create

from .conftest import job_log, put, put_tree, wait_job

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SEED_DDP = (Path(__file__).resolve().parents[1] / "fixtures" / "training" / "ddp" / "main.py").read_text()

# A small data-parallel job: each rank sees half of the data; after training, gradients averaged by
# DDP must leave both ranks with identical weights that moved away from the start.
TINY_DDP = '''
import argparse, json, os
import torch, torch.distributed as dist
parser = argparse.ArgumentParser()
parser.add_argument("--init_method"); parser.add_argument("--rank", type=int); parser.add_argument("--world_size", type=int)
parser.add_argument("--train_url")
args, _ = parser.parse_known_args()
names = ["MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "VC_TASK_INDEX", "VC_WORKER_NUM", "VC_WORKER_HOSTS",
         "MA_NUM_HOSTS", "MA_CURRENT_INSTANCE_NAME", "MA_TASK_NAME"]
print("ENV " + json.dumps({n: os.environ.get(n) for n in names}), flush=True)
dist.init_process_group(backend="nccl", init_method=args.init_method, rank=args.rank, world_size=args.world_size)
torch.manual_seed(0)
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
g = torch.Generator().manual_seed(args.rank + 1)
x = torch.randn(64, 4, generator=g); y = x.sum(dim=1, keepdim=True)
start = model.module.weight.detach().clone()
for _ in range(20):
    opt.zero_grad(); torch.nn.functional.mse_loss(model(x), y).backward(); opt.step()
w = model.module.weight.detach()
print("WEIGHTS " + json.dumps([round(v, 6) for v in w.flatten().tolist()]), flush=True)
print("MOVED " + str(bool((w - start).abs().sum() > 0.1)), flush=True)
if args.rank == 0:
    torch.save(model.state_dict(), os.path.join(args.train_url, "model.pth"))
# Both ranks leave together: a rank tearing gloo down while its peer is still in the last
# collective makes the peer abort (SIGABRT, exit 134) on a loaded machine.
dist.barrier()
dist.destroy_process_group()
'''


def _line(lines, prefix):
    return next(line for line in lines if line.startswith(prefix))[len(prefix):]


def test_two_node_job_trains_data_parallel_with_matching_weights(training_worker, owner, workspace, bucket,
                                                                  local_pool, cpu_flavor):
    training_worker(name="node-a")
    training_worker(name="node-b")
    put_tree("storage://train-data/tiny", {"train.py": TINY_DDP})

    job = training_job_create(
        user=owner, workspace=workspace, name="ddp-tiny", pool=local_pool, flavor=cpu_flavor, experiment="none",
        engine="pytorch", code_dir="storage://train-data/tiny", boot_file="train.py", node_count=2,
        outputs=[{"name": "train_url", "uri": "storage://train-data/tiny-out"}],
    )
    job = wait_job(job, TrainingStatus.COMPLETED, timeout=120)

    rank0, rank1 = job_runs(job)
    assert rank0.worker_id != rank1.worker_id
    log0, log1 = job_log(job, 0), job_log(job, 1)
    env0, env1 = json.loads(_line(log0, "ENV ")), json.loads(_line(log1, "ENV "))
    common = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(rank0.master_port), "WORLD_SIZE": "2",
              "VC_WORKER_NUM": "2", "VC_WORKER_HOSTS": "127.0.0.1,127.0.0.1", "MA_NUM_HOSTS": "2",
              "MA_TASK_NAME": "worker"}
    assert env0 == common | {"RANK": "0", "VC_TASK_INDEX": "0",
                             "MA_CURRENT_INSTANCE_NAME": f"run-{rank0.group.hex[:8]}-worker-0"}
    assert env1 == common | {"RANK": "1", "VC_TASK_INDEX": "1",
                             "MA_CURRENT_INSTANCE_NAME": f"run-{rank0.group.hex[:8]}-worker-1"}
    assert _line(log0, "WEIGHTS ") == _line(log1, "WEIGHTS ")
    assert _line(log0, "MOVED ") == "True"
    start0 = _line(log0, "[atelier] Training process starts: ")
    assert start0.endswith(f"--init_method=tcp://127.0.0.1:{rank0.master_port} --rank=0 --world_size=2")
    assert _line(log1, "[atelier] Training process starts: ").endswith("--rank=1 --world_size=2")
    assert "[atelier] torch.distributed: this node has no GPU; using the gloo backend instead of nccl." in log1


def test_seed_ddp_sample_runs_unchanged_on_two_nodes(training_worker, owner, workspace, bucket, local_pool,
                                                     cpu_flavor):
    training_worker(name="node-a")
    training_worker(name="node-b")
    put_tree("storage://train-data/DDP", {"main.py": SEED_DDP})
    put("storage://train-data/cifar/README", "custom_data=true needs no files")

    # epochs=0: ResNet18 takes ~20 s per batch on one CPU core; the sample still forms the process group
    # from the platform's arguments, shards the data and wraps the model in DDP (a parameter broadcast).
    job = training_job_create(
        user=owner, workspace=workspace, name="ddp-seed", pool=local_pool, flavor=cpu_flavor, experiment="none",
        engine="pytorch", code_dir="storage://train-data/DDP", boot_file="main.py", node_count=2,
        inputs=[{"name": "data_url", "uri": "storage://train-data/cifar"}],
        outputs=[{"name": "output_dir", "uri": "storage://train-data/ddp-out"}],
        hyperparameters={"custom_data": "true", "enable_gpu": "false", "epochs": "0", "lr": "0.01"},
    )
    job = wait_job(job, TrainingStatus.COMPLETED, timeout=150)

    for rank, lines in enumerate((job_log(job, 0), job_log(job, 1))):
        started = _line(lines, "[atelier] Training process starts: ")
        assert f"--rank={rank} --world_size=2" in started and "--custom_data=true --data_url=" in started
        assert "[atelier] torch.distributed: this node has no GPU; using the gloo backend instead of nccl." in lines
        assert any("you are training on custom random dataset" in line for line in lines)


TORCHRUN_PROBE = '''
import json, os
import torch, torch.distributed as dist
names = ["MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK"]
print("ENV " + json.dumps({n: os.environ.get(n) for n in names}), flush=True)
dist.init_process_group(backend="gloo")  # env:// from what torchrun set
t = torch.tensor([dist.get_rank() + 1.0])
dist.all_reduce(t)
print("SUM " + str(int(t.item())), flush=True)
dist.destroy_process_group()
'''


def test_torchrun_mode_sets_the_torch_variables_on_two_nodes(training_worker, owner, workspace, bucket, local_pool,
                                                               cpu_flavor):
    """Item 20: the optional torchrun mode sets MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE/LOCAL_RANK."""
    training_worker(name="node-a")
    training_worker(name="node-b")
    put_tree("storage://train-data/trun", {"probe.py": TORCHRUN_PROBE})
    job = training_job_create(
        user=owner, workspace=workspace, name="torchrun-probe", pool=local_pool, flavor=cpu_flavor,
        experiment="none", engine="pytorch", code_dir="storage://train-data/trun", boot_file="probe.py",
        node_count=2, launch_mode="torchrun")
    job = wait_job(job, TrainingStatus.COMPLETED, timeout=120)
    log0, log1 = job_log(job, 0), job_log(job, 1)
    env0, env1 = json.loads(_line(log0, "ENV ")), json.loads(_line(log1, "ENV "))
    assert (env0["RANK"], env1["RANK"], env0["WORLD_SIZE"], env0["LOCAL_RANK"], env1["LOCAL_RANK"]) == \
           ("0", "1", "2", "0", "0")
    assert env0["MASTER_ADDR"] == env1["MASTER_ADDR"] == "127.0.0.1"
    assert env0["MASTER_PORT"] == env1["MASTER_PORT"]
    assert _line(log0, "SUM ") == _line(log1, "SUM ") == "3"  # 1 + 2: both ranks joined one group
    assert "-m torch.distributed.run --nnodes=2 --node_rank=1" in _line(log1, "[atelier] Training process starts: ")
