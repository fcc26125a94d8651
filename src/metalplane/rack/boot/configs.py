"""Boot configs for one machine, rendered from the region's answer. Pure.

The region answers `GetBootConfig` with a `BootConfig` (purpose enlist, commission
or local; kernel and initrd sha256s; kernel params). Kernels and initrds are served by sha256 from
the rack's cache: over HTTP for iPXE, over TFTP (relative paths) for pxelinux
and GRUB.
"""

from __future__ import annotations

from metalplane.rpc.messages import BootConfig

IMAGE_PATH = "images/by-sha256/"


def netboots(answer: BootConfig) -> bool:
    return answer.purpose in ("enlist", "commission") and bool(answer.kernel)


def ipxe_chain(base_url: str) -> str:
    """The script every iPXE client gets first: go to this machine's own script."""
    return f"#!ipxe\nchain {base_url}ipxe.cfg-${{net0/mac:hexhyp}} || exit\n"


def ipxe_script(answer: BootConfig, base_url: str) -> str:
    if not netboots(answer):
        # Local disk: leave iPXE; the firmware tries the next boot device.
        return "#!ipxe\necho metalplane: booting from the local disk\nexit\n"
    return (
        "#!ipxe\n"
        f"echo metalplane: {answer.purpose}\n"
        f"kernel {base_url}{IMAGE_PATH}{answer.kernel} {answer.params}\n"
        f"initrd {base_url}{IMAGE_PATH}{answer.initrd}\n"
        "boot\n"
    )


def pxelinux_config(answer: BootConfig) -> str:
    if not netboots(answer):
        return "DEFAULT local\nLABEL local\n  LOCALBOOT 0\n"
    return (
        "DEFAULT metalplane\n"
        f"LABEL metalplane\n  KERNEL {IMAGE_PATH}{answer.kernel}\n"
        f"  INITRD {IMAGE_PATH}{answer.initrd}\n  APPEND {answer.params}\n"
    )


def grub_config(answer: BootConfig) -> str:
    if not netboots(answer):
        return "set default=0\nset timeout=0\nmenuentry 'Local disk' {\n  exit\n}\n"
    return (
        "set default=0\nset timeout=0\n"
        f"menuentry 'metalplane {answer.purpose}' {{\n"
        f"  linux /{IMAGE_PATH}{answer.kernel} {answer.params}\n"
        f"  initrd /{IMAGE_PATH}{answer.initrd}\n}}\n"
    )
