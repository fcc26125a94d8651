"""Child processes that must not outlive the daemon that supervises them."""

from __future__ import annotations

import ctypes
import functools
import shutil
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to signal this process when its parent dies (Linux).

    Called by a process at its own start (a region worker, a forked rack server), so
    that `kill -9` of a region or rack takes its children down with it.
    """
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, sig)


def dying_with_parent(argv: list[str], sig: str = "TERM") -> list[str]:
    """`argv` run so that it gets `sig` when the process that spawned it dies.

    util-linux's `setpriv --pdeathsig` sets the flag and execs the command (the flag
    survives the exec, and so does the PID). This replaces a Python `preexec_fn`: that
    one runs Python in the forked child of a threaded daemon, where a lock another thread
    held at the fork can stall the child before its exec, and with it the parent's event
    loop, which waits for the exec inside the spawn call (uvloop and asyncio alike).
    """
    setpriv = _setpriv()
    return [setpriv, f"--pdeathsig={sig}", "--", *argv] if setpriv else list(argv)


@functools.cache
def _setpriv() -> str | None:
    """Where setpriv is, looked up once per process (every daemon start and restart asks)."""
    return shutil.which("setpriv")
