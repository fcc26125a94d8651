"""Boot configs for one machine, rendered from the region's answer. Pure.

The region answers `GetBootConfig` with a `BootConfig` (purpose enlist, commission,
deploy, erase, rescue, poweroff or local; kernel and initrd sha256s; kernel params).
A purpose this rack does not know boots the local disk. Kernels and initrds are
served by sha256 from the rack's cache: over HTTP for iPXE, over TFTP (relative
paths) for pxelinux and GRUB.
"""

from __future__ import annotations

from metalplane.rpc.messages import BootConfig

IMAGE_PATH = "images/by-sha256/"


# the ephemeral image's modes (mp_mode=); poweroff: the image powers the machine off at once
NETBOOT_PURPOSES = ("enlist", "commission", "deploy", "erase", "rescue", "poweroff")


def netboots(answer: BootConfig) -> bool:
    return answer.purpose in NETBOOT_PURPOSES and bool(answer.kernel)


def ipxe_chain(base_url: str) -> str:
    """The script every iPXE client gets first: go to this machine's own script."""
    return f"#!ipxe\nchain {base_url}ipxe.cfg-${{net0/mac:hexhyp}} || exit\n"


# BIOS drive numbers of the first four disks, tried in order (as MAAS does).
LOCAL_DRIVES = ("0x80", "0x81", "0x82", "0x83")


def ipxe_local_boot() -> str:
    """Boot the machine's own disk (a Deployed machine's answer).

    Under BIOS, `sanboot --no-describe --drive 0x80` hands the first disk's boot
    sector to the BIOS directly, the next disk if that fails: it does not depend on
    the firmware trying the next boot device after iPXE exits, which some BIOSes
    never do. Under UEFI there are no BIOS drive numbers: `exit` returns to the
    firmware's boot manager, which boots the next entry (the disk). Both were
    booted into GRUB on the disk under qemu (SeaBIOS with its iPXE ROM).
    """
    sanboots = "".join(f"sanboot --no-describe --drive {d} ||\n" for d in LOCAL_DRIVES)
    return (
        "#!ipxe\necho metalplane: booting from the local disk\n"
        "iseq ${platform} efi && goto firmware ||\n"
        f"{sanboots}:firmware\nexit\n"
    )


def pxelinux_local_boot() -> str:
    """pxelinux's own way to leave to the first disk (as MAAS's config.local.template)."""
    return "DEFAULT local\nLABEL local\n  LOCALBOOT 0\n"


def ipxe_script(answer: BootConfig, base_url: str) -> str:
    if not netboots(answer):
        return ipxe_local_boot()
    return (
        "#!ipxe\n"
        f"echo metalplane: {answer.purpose}\n"
        f"kernel {base_url}{IMAGE_PATH}{answer.kernel} {answer.params}\n"
        f"initrd {base_url}{IMAGE_PATH}{answer.initrd}\n"
        "boot\n"
    )


def pxelinux_config(answer: BootConfig) -> str:
    if not netboots(answer):
        return pxelinux_local_boot()
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
