"""The power driver interface, Ironic-style: small, typed, one job.

A driver is stateless about machines: every call gets the machine's power
parameters (already completed with defaults by :func:`prepare`). The runner
(:mod:`.runner`) adds what drivers must not each reinvent: overall timeouts,
bounded retries, one call per BMC at a time, and backoff.

    class PowerDriver:
        power_type: PowerType                         # name, fields, packages
        def validate(params) -> list[Problem]         # pure
        def bmc_key(params) -> str | None             # which BMC (for locking/backoff)
        def bmc_name(params) -> str | None            # how to name it in messages
        async def query(params, *, timeout) -> "on" | "off" | "unknown"
        async def on(params, *, timeout) -> str | None      # an optional note
        async def off(params, *, timeout) -> str | None
        async def cycle(params, *, timeout) -> str | None
        async def set_boot_device(params, device="pxe", *, persistent=False, timeout)

Drivers raise :class:`~.errors.PowerError` subclasses, never anything else
for a BMC's failure, and never put a secret into a message.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

from metalplane.rack.power.errors import PowerConfigError, PowerTimeoutError, PowerUnsupportedError
from metalplane.rpc.power_schema import (
    PowerType,
    Problem,
    bmc_address,
    bmc_identity,
    scrub,
    secret_values,
    validate_power_parameters,
    with_defaults,
)

PowerState = Literal["on", "off", "unknown"]
Params = Mapping[str, str]

#: Boot devices a driver may be asked to set for the next boot.
BOOT_DEVICES = ("pxe", "disk")


class PowerDriver(ABC):
    """One power type's driver."""

    power_type: ClassVar[PowerType]

    @property
    def name(self) -> str:
        return self.power_type.name

    # -- pure helpers -------------------------------------------------------

    def validate(self, params: Mapping[str, object]) -> list[Problem]:
        """Problems with `params` (field, reason); empty when they are usable. Pure."""
        return validate_power_parameters(self.name, params)

    def bmc_key(self, params: Mapping[str, object]) -> str | None:
        """Identity of the BMC `params` talk to (address + user), or None (no BMC)."""
        return bmc_identity(self.name, params)

    def bmc_name(self, params: Mapping[str, object]) -> str | None:
        """The BMC's address as shown in messages (no credentials)."""
        return bmc_address(self.name, params)

    def scrub(self, text: str, params: Mapping[str, object]) -> str:
        return scrub(text, secret_values(self.name, params))

    def missing_packages(self) -> list[str]:
        """Packages this rack lacks for this driver (MAAS's ``missing_packages``)."""
        needed = self.power_type.packages
        if not needed:
            return []
        present = [exe for exe, _ in needed if shutil.which(exe)]
        # One client of several is enough (ipmitool or FreeIPMI).
        return [] if present else sorted({pkg for _, pkg in needed})

    # -- actions ------------------------------------------------------------

    @abstractmethod
    async def query(self, params: Params, *, timeout: float = 30.0) -> PowerState: ...

    @abstractmethod
    async def on(self, params: Params, *, timeout: float = 30.0) -> str | None: ...

    @abstractmethod
    async def off(self, params: Params, *, timeout: float = 30.0) -> str | None: ...

    @abstractmethod
    async def cycle(self, params: Params, *, timeout: float = 30.0) -> str | None: ...

    async def set_boot_device(
        self, params: Params, device: str = "pxe", *, persistent: bool = False, timeout: float = 30.0
    ) -> None:
        raise PowerUnsupportedError(self.bmc_name(params), f"{self.name} cannot set the boot device")

    async def aclose(self) -> None:  # noqa: B027 - a driver with nothing pooled has nothing to release
        """Release pooled resources (HTTP clients)."""


def prepare(driver: PowerDriver, params: Mapping[str, object]) -> dict[str, str]:
    """`params` completed with defaults, or PowerConfigError listing every problem."""
    problems = driver.validate(params)
    if problems:
        raise PowerConfigError(
            driver.bmc_name(params), "invalid power parameters: " + "; ".join(str(p) for p in problems)
        )
    return with_defaults(driver.name, params)


def prepare_boot_device(driver: PowerDriver, params: Mapping[str, object], device: str) -> dict[str, str]:
    """`prepare`, for setting the boot device: PowerUnsupportedError for a device not in BOOT_DEVICES."""
    p = prepare(driver, params)
    if device not in BOOT_DEVICES:
        raise PowerUnsupportedError(driver.bmc_name(p), f"unknown boot device {device!r}")
    return p


# --------------------------------------------------------------------------- subprocesses


#: The environment a BMC client runs with: nothing inherited but PATH, messages in English.
def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C", "LC_ALL": "C"}
    env.update(extra or {})
    return env


async def run_tool(argv: Sequence[str], *, env: Mapping[str, str], timeout: float, bmc: str | None) -> tuple[int, str]:
    """Run a BMC client; (exit status, stdout+stderr as text).

    On timeout or cancellation the child (which we started) is killed by its
    PID and reaped; a timeout raises PowerTimeoutError naming the BMC.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )
    except FileNotFoundError:
        raise PowerUnsupportedError(bmc, f"{argv[0]} is not installed on this rack") from None
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate()
    except TimeoutError:
        _kill(proc)
        await proc.wait()
        raise PowerTimeoutError(bmc, f"no answer within {timeout:g} s") from None
    except BaseException:
        _kill(proc)
        await asyncio.shield(proc.wait())
        raise
    return proc.returncode or 0, out.decode("utf-8", "replace")


def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
