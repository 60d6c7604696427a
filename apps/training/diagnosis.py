"""Failure reasons in words: exit code plus log patterns → cause, suggestion, and whether a retry helps.

The rules are ordered: the first rule matching a line of the failed node's log tail wins (rules
look at the last lines first, where the error usually is). A cause whose retry would fail
the same way (a missing module, a bad argument, a syntax error) is not retryable; out of
memory, device errors, failed pre-checks and lost machines are. A non-zero exit no rule explains
is retryable too: nothing says it repeats, and a crash mid-training is what auto-restart (with the
checkpoints restored into the output folders) is for.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# How many lines at the end of a node's log the matcher reads.
TAIL_LINES = 400
# At most this many matched lines are kept for highlighting.
MAX_MATCHED = 8


@dataclass(frozen=True)
class Rule:
    key: str
    pattern: re.Pattern
    cause: str
    suggestion: str
    retryable: bool


RULES = [
    # The launcher's own pre-check (exit code 13): the machine, not the code — another node may pass.
    Rule("precheck", re.compile(r"^\[atelier\]\[ERROR\]\[detect\] code: \d+, message: .*, item: .+$"),
         "The node failed the environment pre-check.",
         "The job is re-dispatched to another node when auto-restart is on; otherwise free the disk space or "
         "fix the item the log names, then rebuild the job.", True),
    Rule("cuda_oom", re.compile(r"CUDA out of memory|CUDA error: out of memory|OutOfMemoryError", re.I),
         "Out of GPU memory.", "Lower the batch size or the model size, or choose a flavor with more GPU memory.", True),
    Rule("oom", re.compile(r"\bMemoryError\b|Cannot allocate memory|std::bad_alloc|Killed$|out of memory", re.I),
         "Out of memory.", "Lower the batch size or the data loaded at once, or choose a flavor with more memory.",
         True),
    Rule("nccl", re.compile(r"NCCL (error|WARN)|ncclSystemError|ncclInternalError|ncclUnhandledCudaError"),
         "Collective communication (NCCL) error between nodes.",
         "Check that every node can reach the others; set NCCL_DEBUG=INFO to see the failing link.", True),
    Rule("ecc", re.compile(r"ECC error|uncorrectable ECC|Xid \d+", re.I),
         "GPU hardware (ECC) error.", "The job will run on another GPU; report the machine to an administrator.", True),
    Rule("cuda", re.compile(r"CUDA error|cuDNN error|CUBLAS_STATUS|device-side assert|no CUDA GPUs are available",
                            re.I),
         "CUDA error.", "Check that the code runs on the flavor's GPUs (device indices, CUDA_VISIBLE_DEVICES) and that "
                        "tensors are valid; a device-side assert usually means a label out of range.", False),
    Rule("missing_module", re.compile(r"(ModuleNotFoundError|ImportError): (No module named .*|cannot import name .*)"),
         "A Python module is missing.",
         "Add the package to requirements.txt in the code folder (name==version), or fix the import.", False),
    Rule("unrecognized_arguments", re.compile(r"error: unrecognized arguments: .*"),
         "The script does not accept an argument the platform passes.",
         "Parse arguments with parser.parse_known_args() so platform arguments such as --init_method are ignored, "
         "or declare them.", False),
    Rule("no_space", re.compile(r"No space left on device", re.I),
         "The disk is full.", "Write less to the local disk (or clean up checkpoints), or ask for a bigger disk.", True),
    Rule("syntax", re.compile(r"^(SyntaxError|IndentationError|TabError): "),
         "The code has a syntax error.", "Fix the line the traceback names.", False),
    Rule("file_not_found", re.compile(r"(FileNotFoundError|No such file or directory)"),
         "A file the code opens does not exist.",
         "Check the paths: inputs are at the --<input>= path, the code at $WORKSPACE.", False),
    Rule("permission", re.compile(r"PermissionError|Permission denied"),
         "Permission denied.", "Write only below the run directory (outputs, $MA_LOG_DIR, /cache-like TMPDIR).", False),
    Rule("distributed_timeout", re.compile(r"(DistNetworkError|timed out.*rendezvous|Timed out initializing process "
                                           r"group|Connection (refused|reset)).*", re.I),
         "The nodes could not connect to each other.",
         "Use --init_method as given (it holds the master address) and make sure every node starts.", True),
]


@dataclass
class Diagnosis:
    cause: str
    suggestion: str
    retryable: bool
    key: str = ""
    lines: list[tuple[int, str]] = field(default_factory=list)  # (line number, text) that matched

    def as_dict(self, node: int | None = None) -> dict:
        return {"key": self.key, "cause": self.cause, "suggestion": self.suggestion, "retryable": self.retryable,
                "lines": [list(line) for line in self.lines], "node": node}


def diagnose(*, exit_code: int | None, lines: list[str], first_seq: int = 1, lost: bool = False,
             started: bool = True, reason: str = "") -> Diagnosis:
    """Explain a failed node from its exit code and the tail of its log (`lines`, numbered from `first_seq`)."""
    if lost:
        return Diagnosis("The machine running the node stopped responding (worker lost).",
                         "The job restarts on another worker when auto-restart is on.", True, "lost")
    if not started:
        return Diagnosis(f"The platform could not prepare the node: {reason.rstrip('.')}.",
                         "Check that the inputs and the code folder still exist and are readable.", True, "platform")
    for rule in RULES:
        matched = [(first_seq + index, text) for index, text in enumerate(lines) if rule.pattern.search(text)]
        if matched:
            return Diagnosis(rule.cause, rule.suggestion, rule.retryable, rule.key, matched[-MAX_MATCHED:])
    if exit_code == 137:
        return Diagnosis("The process was killed (SIGKILL), most likely for using too much memory.",
                         "Lower the memory use or choose a flavor with more memory.", True, "oom")
    if exit_code is not None and exit_code > 128:
        return Diagnosis(f"The process was killed by a signal (exit code {exit_code}).",
                         "Look at the last log lines; a crash in native code often means a library mismatch.",
                         True, "signal")
    return Diagnosis(f"The process exited with non-zero exit code {exit_code}.",
                     "Read the end of the log for the error the program reported.", True, "exit_code")
