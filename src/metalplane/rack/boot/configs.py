"""Boot configs for one machine, rendered from the region's answer. Pure.

The region answers `{"purpose": "enlist"|"commission"|"local", "kernel": SHA,
"initrd": SHA, "params": "..."}`. Kernels and initrds are served by sha256 from
the rack's cache: over HTTP for iPXE, over TFTP (relative paths) for pxelinux
and GRUB.
"""

from __future__ import annotations

from typing import Any

IMAGE_PATH = "images/by-sha256/"


def netboots(answer: dict[str, Any]) -> bool:
    return answer.get("purpose") in ("enlist", "commission") and bool(answer.get("kernel"))


def ipxe_chain(base_url: str) -> str:
    """The script every iPXE client gets first: go to this machine's own script."""
    return f"#!ipxe\nchain {base_url}ipxe.cfg-${{net0/mac:hexhyp}} || exit\n"


def ipxe_script(answer: dict[str, Any], base_url: str) -> str:
    if not netboots(answer):
        # Local disk: leave iPXE; the firmware tries the next boot device.
        return "#!ipxe\necho metalplane: booting from the local disk\nexit\n"
    return (
        "#!ipxe\n"
        f"echo metalplane: {answer['purpose']}\n"
        f"kernel {base_url}{IMAGE_PATH}{answer['kernel']} {answer['params']}\n"
        f"initrd {base_url}{IMAGE_PATH}{answer['initrd']}\n"
        "boot\n"
    )


def pxelinux_config(answer: dict[str, Any]) -> str:
    if not netboots(answer):
        return "DEFAULT local\nLABEL local\n  LOCALBOOT 0\n"
    return (
        "DEFAULT metalplane\n"
        f"LABEL metalplane\n  KERNEL {IMAGE_PATH}{answer['kernel']}\n"
        f"  INITRD {IMAGE_PATH}{answer['initrd']}\n  APPEND {answer['params']}\n"
    )


def grub_config(answer: dict[str, Any]) -> str:
    if not netboots(answer):
        return "set default=0\nset timeout=0\nmenuentry 'Local disk' {\n  exit\n}\n"
    return (
        "set default=0\nset timeout=0\n"
        f"menuentry 'metalplane {answer['purpose']}' {{\n"
        f"  linux /{IMAGE_PATH}{answer['kernel']} {answer['params']}\n"
        f"  initrd /{IMAGE_PATH}{answer['initrd']}\n}}\n"
    )
