"""Child processes that must not outlive the daemon that supervises them."""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to signal this process when its parent dies (Linux).

    Called in the child (a worker, or as a preexec_fn for Kea), so that `kill -9`
    of a region or rack takes its children down with it.
    """
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, sig)
