"""The rack's boot configs for a machine that boots its own disk (pure)."""

from __future__ import annotations

import pytest

from metalplane.rack.boot.configs import grub_config, ipxe_local_boot, ipxe_script, pxelinux_config, pxelinux_local_boot
from metalplane.rpc.messages import BootConfig


def test_ipxe_local_boot_sanboots_the_bios_disks_in_order_and_exits_under_uefi():
    lines = ipxe_local_boot().splitlines()
    assert lines[0] == "#!ipxe"
    assert lines[2] == "iseq ${platform} efi && goto firmware ||"
    assert lines[3:7] == [f"sanboot --no-describe --drive 0x8{n} ||" for n in range(4)]
    assert lines[7:] == [":firmware", "exit"]


def test_machines_that_do_not_netboot_get_the_local_boot_configs():
    for answer in (
        BootConfig("local"),
        BootConfig("local", problem="no image"),
        BootConfig("commission"),
        BootConfig("poweroff"),
        BootConfig("a-purpose-of-a-newer-region", kernel="k" * 64, initrd="i" * 64),
    ):  # no kernel, or a purpose this rack does not know: nothing to netboot
        assert ipxe_script(answer, "http://10.0.0.2:5248/") == ipxe_local_boot()
        assert pxelinux_config(answer) == pxelinux_local_boot() == "DEFAULT local\nLABEL local\n  LOCALBOOT 0\n"
        assert "exit" in grub_config(answer)


@pytest.mark.parametrize("purpose", ["enlist", "commission", "deploy", "erase", "rescue", "poweroff"])
def test_netbooting_machines_still_get_their_kernel(purpose):
    answer = BootConfig(purpose, kernel="k" * 64, initrd="i" * 64, params=f"mp_mode={purpose}")
    script = ipxe_script(answer, "http://10.0.0.2:5248/")
    assert f"kernel http://10.0.0.2:5248/images/by-sha256/{'k' * 64} mp_mode={purpose}" in script
    assert "sanboot" not in script
    assert f"APPEND mp_mode={purpose}" in pxelinux_config(answer)
