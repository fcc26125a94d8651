"""IPMI power driver: ipmitool (default) or FreeIPMI's ipmipower, per the BMC's parameters.

Secrets never reach a command line: ipmitool gets the password in
``IPMI_PASSWORD`` (``-E``) and the BMC key in ``IPMI_KGKEY`` (``-K``);
ipmipower gets both from a FreeIPMI config file written 0600 into a private
directory and removed right after the call. The child's environment holds
nothing else but PATH and LANG=C.

ipmitool runs with ``-v`` so that a failure carries the BMC's own answer
("RAKP 2 HMAC is invalid", "unauthorized name", "Insufficient privilege
level"); the messages are classified into the error kinds of :mod:`.errors`.

The argv builders and output parsers are pure functions (unit-tested); the
driver class only runs them.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from collections.abc import Mapping

from metalplane.hostport import format_host_port, split_host_port
from metalplane.rack.power.base import (
    Params,
    PowerDriver,
    PowerState,
    prepare,
    prepare_boot_device,
    run_tool,
    tool_env,
)
from metalplane.rack.power.errors import (
    PowerAuthError,
    PowerBMCError,
    PowerConfigError,
    PowerConnectionError,
    PowerError,
    PowerTimeoutError,
    PowerUnsupportedError,
)
from metalplane.rpc.power_schema import IPMI

IPMI_PORT = 623

#: ipmitool spells the privilege levels its own way.
_IPMITOOL_PRIV = {"USER": "USER", "OPERATOR": "OPERATOR", "ADMIN": "ADMINISTRATOR"}

#: ipmitool's total wait for a silent BMC with -N 1 -R r (measured: 2, 6, 12 s).
_IPMITOOL_RETRY_TIME = ((3, 12.0), (2, 6.0), (1, 2.0))

ACTIONS = ("status", "on", "off", "soft", "cycle", "reset")


def ipmitool_retries(timeout: float) -> int:
    """The -R count whose worst case fits in `timeout` seconds (at least 1)."""
    for retries, worst in _IPMITOOL_RETRY_TIME:
        if worst <= timeout:
            return retries
    return 1


def ipmitool_command(
    params: Params, args: list[str], *, timeout: float, binary: str = "ipmitool"
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) for ipmitool running `args` against the BMC. Pure.

    The password and the BMC key travel in the environment only.
    """
    host, port = split_host_port(params["power_address"], IPMI_PORT)
    interface = "lan" if params.get("power_driver") == "LAN" else "lanplus"
    argv = [binary, "-I", interface, "-H", host, "-p", str(port), "-v", "-N", "1", "-R", str(ipmitool_retries(timeout))]
    if interface == "lanplus" and params.get("cipher_suite_id"):
        argv += ["-C", params["cipher_suite_id"]]
    priv = params.get("privilege_level") or "OPERATOR"
    argv += ["-L", _IPMITOOL_PRIV.get(priv, priv)]
    env: dict[str, str] = {}
    argv += ["-U", params.get("power_user") or ""]
    argv += ["-E"]
    env["IPMI_PASSWORD"] = params.get("power_pass") or ""
    if params.get("k_g") and interface == "lanplus":
        argv += ["-K"]
        env["IPMI_KGKEY"] = params["k_g"]
    return argv + args, env


def ipmitool_action_args(action: str) -> list[str]:
    return {
        "status": ["chassis", "power", "status"],
        "on": ["chassis", "power", "on"],
        "off": ["chassis", "power", "off"],
        "soft": ["chassis", "power", "soft"],
        "cycle": ["chassis", "power", "cycle"],
        "reset": ["chassis", "power", "reset"],
    }[action]


def ipmitool_bootdev_args(device: str, *, persistent: bool, boot_type: str) -> list[str]:
    options = []
    if boot_type == "efi":
        options.append("efiboot")
    if persistent:
        options.append("persistent")
    args = ["chassis", "bootdev", device]
    if options:
        args.append("options=" + ",".join(options))
    return args


def ipmipower_command(
    params: Params, action: str, *, config_file: str, timeout: float, binary: str = "ipmipower"
) -> list[str]:
    """argv for FreeIPMI's ipmipower; credentials come from `config_file`. Pure."""
    host, port = split_host_port(params["power_address"], IPMI_PORT)
    driver = "LAN" if params.get("power_driver") == "LAN" else "LAN_2_0"
    argv = [
        binary,
        "--config-file",
        config_file,
        "-D",
        driver,
        "-h",
        format_host_port(host, port, IPMI_PORT),
        "--session-timeout",
        str(max(1000, int(min(timeout - 0.5, 20.0) * 1000))),
    ]
    if driver == "LAN_2_0" and params.get("cipher_suite_id"):
        argv += ["-I", params["cipher_suite_id"]]
    argv += ["-l", params.get("privilege_level") or "OPERATOR"]
    flags = [f for f in (params.get("workaround_flags") or "").split(",") if f and f != "none"]
    if flags:
        argv += ["-W", ",".join(flags)]
    flag = {"status": "--stat", "on": "--on", "off": "--off", "soft": "--soft", "cycle": "--cycle", "reset": "--reset"}[
        action
    ]
    return argv + [flag]


def freeipmi_config(params: Params) -> str:
    """The FreeIPMI config file text holding the credentials (written 0600)."""
    lines = []
    if params.get("power_user"):
        lines.append(f"username {params['power_user']}")
    if params.get("power_pass"):
        lines.append(f"password {params['power_pass']}")
    if params.get("k_g"):
        lines.append(f"k_g {params['k_g']}")
    return "".join(line + "\n" for line in lines)


# --------------------------------------------------------------------------- parsing

_STATUS_RE = re.compile(r"Chassis Power is (on|off)", re.I)

#: ipmitool -v chatter that says nothing about a failure.
_NOISE = (
    "loading iana pen registry",
    "running get vso capabilities",
    "discovered ipmb address",
    "get hpm.x capabilities request failed",
    "invalid completion code received: invalid command",
    "invalid completion code received: insufficient privilege level",
    "get device id command failed",
    "rakp",
    "get auth capabilities error",
)
_GENERIC = ("unable to establish", "error: unable to establish")


def parse_ipmitool_status(output: str) -> PowerState | None:
    m = _STATUS_RE.search(output)
    return m.group(1).lower() if m else None  # type: ignore[return-value]


def bmc_answer(output: str) -> str:
    """The lines of ipmitool's output that carry the BMC's answer, joined with '; '."""
    picked: list[str] = []
    for raw in output.splitlines():
        line = raw.strip().lstrip(">").strip()
        low = line.lower()
        if not line or low.startswith(("chassis power", "set boot device")):
            continue
        if any(low.startswith(n) for n in _NOISE if n != "rakp") or low.startswith(_GENERIC):
            continue
        if line not in picked:
            picked.append(line)
    if not picked:  # only the generic lines: keep the last of them
        generic = [ln.strip() for ln in output.splitlines() if ln.strip().lower().startswith(_GENERIC)]
        picked = generic[-1:]
    return "; ".join(picked)[:500]


_AUTH = (
    "rakp 2 hmac is invalid",
    "hmac is invalid",
    "unauthorized name",
    "invalid user name",
    "activate session command failed",
    "password invalid",
    "username invalid",
    "k_g invalid",
    "invalid session",
    "password verification timeout",
    "authentication failed",
)
_CONFIG = (
    "invalid authentication algorithm",
    "invalid integrity algorithm",
    "invalid confidentiality algorithm",
    "no matching cipher suite",
    "cipher suite id unavailable",
    "unsupported cipher",
    "insufficient privilege",
    "privilege level insufficient",
    "privilege level cannot be obtained",
    "requires atleast operator",
    "requires at least operator",
    "authentication type unavailable",
    "ipmi 2.0 unavailable",
    "ipmi 1.5 unavailable",
    "invalid role",
)
_UNREACHABLE = (
    "address lookup for",
    "could not open socket",
    "invalid hostname",
    "no route to host",
    "network is unreachable",
    "connection refused",
)
_TIMEOUT = (
    "get auth capabilities error",
    "error issuing get channel authentication capabilities",
    "no response",
    "connection timeout",
    "session timeout",
    "timeout",
)


def classify_failure(bmc: str | None, output: str, tool: str = "ipmitool") -> PowerError:
    """The PowerError for a failed ipmitool/ipmipower run, quoting the BMC's answer. Pure."""
    answer = bmc_answer(output)
    low = output.lower()
    if any(p in low for p in _CONFIG):
        if "privilege" in low or "operator" in low:
            detail = "the user lacks the privilege for this action (check privilege_level and the BMC user's role)"
        elif "ipmi 2.0 unavailable" in low or "ipmi 1.5 unavailable" in low:
            detail = "the BMC does not speak this IPMI version (check power_driver)"
        else:
            detail = "cipher suite not accepted (check cipher_suite_id)"
        return PowerConfigError(bmc, detail, answer=answer)
    if any(p in low for p in _AUTH):
        return PowerAuthError(bmc, "wrong user name, password or BMC key", answer=answer)
    if any(p in low for p in _UNREACHABLE):
        return PowerConnectionError(bmc, answer_from=tool, answer=answer)
    if any(p in low for p in _TIMEOUT):
        return PowerTimeoutError(bmc, answer=answer, answer_from=tool)
    if "unable to establish" in low:
        return PowerTimeoutError(bmc, "could not open a session", answer=answer, answer_from=tool)
    return PowerBMCError(bmc, answer or f"{tool} failed without a message", answer=answer or None)


def parse_ipmipower(output: str) -> str:
    """The status word of ipmipower's "host: word" answer (last line)."""
    lines = [ln for ln in output.splitlines() if ln.strip()]
    if not lines:
        return ""
    return lines[-1].rpartition(": ")[2].strip()


# --------------------------------------------------------------------------- driver


class IpmiDriver(PowerDriver):
    power_type = IPMI

    def __init__(self, *, ipmitool: str = "ipmitool", ipmipower: str = "ipmipower", tmpdir: str | None = None):
        self.ipmitool = ipmitool
        self.ipmipower = ipmipower
        self.tmpdir = tmpdir

    async def query(self, params: Params, *, timeout: float = 30.0) -> PowerState:
        p = prepare(self, params)
        out = await self._run(p, "status", timeout)
        state = parse_ipmitool_status(out) if p["ipmi_client"] == "ipmitool" else parse_ipmipower(out)
        if state not in ("on", "off"):
            raise PowerBMCError(
                self.bmc_name(p),
                "unexpected answer to a power status query",
                answer=self.scrub(bmc_answer(out) or out.strip()[:200], p),
            )
        return state  # type: ignore[return-value]

    async def on(self, params: Params, *, timeout: float = 30.0) -> str | None:
        await self._run(prepare(self, params), "on", timeout)
        return None

    async def off(self, params: Params, *, timeout: float = 30.0) -> str | None:
        p = prepare(self, params)
        await self._run(p, "soft" if p["power_off_mode"] == "soft" else "off", timeout)
        return None

    async def cycle(self, params: Params, *, timeout: float = 30.0) -> str | None:
        """Power cycle; a machine that is off is just powered on (IPMI refuses to cycle it)."""
        p = prepare(self, params)
        started = asyncio.get_running_loop().time()
        state = await self.query(p, timeout=timeout)
        left = max(1.0, timeout - (asyncio.get_running_loop().time() - started))
        if state == "off":
            await self._run(p, "on", left)
            return "machine was off: powered on"
        await self._run(p, "cycle", left)
        return None

    async def set_boot_device(
        self, params: Params, device: str = "pxe", *, persistent: bool = False, timeout: float = 30.0
    ) -> None:
        p = prepare_boot_device(self, params, device)
        if not shutil.which(self.ipmitool):
            raise PowerUnsupportedError(self.bmc_name(p), "setting the boot device needs ipmitool on the rack")
        args = ipmitool_bootdev_args(device, persistent=persistent, boot_type=p["power_boot_type"])
        await self._ipmitool(p, args, timeout)

    # -- plumbing -------------------------------------------------------------

    async def _run(self, p: Mapping[str, str], action: str, timeout: float) -> str:
        if p["ipmi_client"] == "freeipmi":
            return await self._ipmipower(p, action, timeout)
        return await self._ipmitool(p, ipmitool_action_args(action), timeout)

    async def _ipmitool(self, p: Mapping[str, str], args: list[str], timeout: float) -> str:
        bmc = self.bmc_name(p)
        argv, secret_env = ipmitool_command(p, args, timeout=timeout, binary=self.ipmitool)
        rc, out = await run_tool(argv, env=tool_env(secret_env), timeout=timeout, bmc=bmc)
        if rc != 0:
            raise self._scrubbed(classify_failure(bmc, out), p)
        return out

    async def _ipmipower(self, p: Mapping[str, str], action: str, timeout: float) -> str:
        bmc = self.bmc_name(p)
        with tempfile.TemporaryDirectory(prefix="mp-ipmi-", dir=self.tmpdir) as private:
            config = os.path.join(private, "freeipmi.conf")
            fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(freeipmi_config(p))
            argv = ipmipower_command(p, action, config_file=config, timeout=timeout, binary=self.ipmipower)
            rc, out = await run_tool(argv, env=tool_env(), timeout=timeout, bmc=bmc)
        word = parse_ipmipower(out)
        expected = ("on", "off") if action == "status" else ("ok",)
        if rc != 0 or word not in expected:
            raise self._scrubbed(classify_failure(bmc, word or out, "ipmipower"), p)
        return out

    def _scrubbed(self, error: PowerError, p: Mapping[str, str]) -> PowerError:
        clean = self.scrub(error.message, p)
        return error if clean == error.message else error.with_message(clean)
