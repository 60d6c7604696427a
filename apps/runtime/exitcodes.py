"""Exit codes in words, for events, the run page and owners ("137: killed, likely out of memory")."""
from __future__ import annotations

import signal

# Codes with a conventional meaning. 128+N means "killed by signal N" (shells and our
# supervisor both report signal deaths that way).
_MEANINGS = {
    0: "success",
    1: "general error",
    2: "misuse of a command or bad arguments",
    126: "command found but not executable",
    127: "command not found",
    130: "interrupted (SIGINT)",
    134: "aborted (SIGABRT), often a failed assertion in native code",
    137: "killed (SIGKILL), likely out of memory",
    139: "segmentation fault (SIGSEGV)",
    143: "terminated (SIGTERM)",
}


def exit_code_from_returncode(returncode: int) -> int:
    """Popen reports a signal death as -N; record it the shell way, 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def exit_code_explain(code: int | None) -> str:
    """A short phrase for `code`; empty when there is no code yet."""
    if code is None:
        return ""
    if code in _MEANINGS:
        return _MEANINGS[code]
    if 128 < code < 128 + 65:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            return f"killed by signal {code - 128}"
        return f"killed by signal {name}"
    return "error reported by the program"


def exit_code_label(code: int | None) -> str:
    """"exit code 137 (killed (SIGKILL), likely out of memory)"."""
    if code is None:
        return ""
    return f"exit code {code} ({exit_code_explain(code)})"
