"""Failure hints (seed-05 §17 item 31): each documented pattern maps to a cause, a suggestion, whether
a retry helps, and the log lines that matched (numbered as in the node's log)."""
from __future__ import annotations

import pytest

from apps.training.diagnosis import diagnose


@pytest.mark.parametrize("line, key, retryable", [
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "cuda_oom", True),
    ("train.py: error: unrecognized arguments: --init_method=tcp://10.0.0.1:29500", "unrecognized_arguments", False),
    ("misc/socket.cc:484 NCCL WARN socketStartConnect: Connect to 10.0.0.2<47383> failed", "nccl", True),
    ("OSError: [Errno 28] No space left on device: '/cache/ckpt.pth'", "no_space", True),
    ("NVRM: Xid (PCI:0000:3b:00): 48, An uncorrectable ECC error detected", "ecc", True),
    ("ModuleNotFoundError: No module named 'timm'", "missing_module", False),
])
def test_each_documented_pattern_gives_a_cause_and_highlights_its_line(line, key, retryable):
    lines = ["epoch 1", "step 10 loss 0.5", line, "Traceback (most recent call last):"]
    result = diagnose(exit_code=1, lines=lines, first_seq=41)
    assert (result.key, result.retryable) == (key, retryable)
    assert result.cause and result.suggestion
    assert result.lines == [(43, line)]  # the 3rd line of a tail starting at line 41


def test_without_a_pattern_the_exit_code_speaks():
    assert diagnose(exit_code=137, lines=["working"]).key == "oom"
    plain = diagnose(exit_code=3, lines=["working"])
    # Nothing says an unexplained crash repeats: auto-restart may try again.
    assert (plain.key, plain.retryable, plain.cause) == ("exit_code", True,
                                                        "The process exited with non-zero exit code 3.")
    assert diagnose(exit_code=None, lines=[], lost=True).key == "lost"
