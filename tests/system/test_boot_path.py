"""A real machine boots from the rack: a qemu VM (TCG, iPXE ROM) on a TAP in the lab,
Kea + TFTP + HTTP on the rack, the ephemeral image from the region. It enlists,
then commissions through its BMC (an ipmi_sim whose power hook starts and stops
the VM, like virtualbmc), and ends Ready with its CPU count and memory. Another host
on the boot network that fetches the VM's boot config meanwhile gets nothing to act
as the VM with (the config carries an enrolment credential only for the VM's own
leased address). Then it is allocated and deployed: having no disk, the installer it
PXE-boots fails, and the machine ends in Failed deployment with the installer's output."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from metalplane.images.build import BuildError, build_ephemeral
from tests.support.bmc_ipmi import IpmiSimBmc, command_hook
from tests.support.image_mirror import publish_stand_in_debian
from tests.support.netlab import Lab
from tests.support.processes import wait_until
from tests.support.stack import Stack

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86 not installed"),
    pytest.mark.timeout(900),
]
CIDR = "10.80.0.0/24"
VM_MAC = "52:54:00:80:00:42"
VM_CPUS, VM_MEMORY = 2, 512
BOOT_TIMEOUT = 240  # TCG on 2 shared cores


def vm_command(tap: str, serial: Path) -> list[str]:
    return [
        "qemu-system-x86_64",
        "-accel",
        "tcg",
        "-m",
        str(VM_MEMORY),
        "-smp",
        str(VM_CPUS),
        "-boot",
        "n",
        "-no-reboot",
        "-display",
        "none",
        "-serial",
        f"file:{serial}",
        "-netdev",
        f"tap,id=n0,ifname={tap},script=no,downscript=no",
        "-device",
        f"virtio-net-pci,netdev=n0,mac={VM_MAC}",
    ]


@pytest.fixture(scope="module")
def lab(databases, tmp_path_factory):
    try:
        image = build_ephemeral(tmp_path_factory.mktemp("mirror"), version="20261123.1", release="bookworm")
    except BuildError as exc:
        pytest.fail(f"could not build the ephemeral image: {exc}")
    with Lab() as lab:
        lab.add_network("pxe", CIDR)
        region = lab.add_host("region", {"pxe": "10.80.0.10/24"})
        rack = lab.add_host("rack1", {"pxe": "10.80.0.2/24"})
        bmchost = lab.add_host("bmchost", {"pxe": "10.80.0.100/24"})
        stack = Stack(lab, databases)
        stack.start_region(region, "pxe")
        stack.add_rack(rack, "rack1")
        stack.start_rack("rack1")
        wait_until(lambda: len(stack.api("rack-controllers", "read")) == 1, 30, what="the rack")
        stack.import_image(image.out, timeout=120)
        stack.serve_dhcp(CIDR, "10.80.0.100", "10.80.0.199", "rack1")
        workdir = lab.new_workdir("vm")
        tap = lab.add_tap("pxe")
        lab.stack, lab.workdir, lab.tap, lab.bmchost = stack, workdir, tap, bmchost
        wait_until(
            lambda: http_status(stack)[0] == "running" and "image" in http_status(stack)[1],
            120,
            what="the rack to cache the image",
        )
        yield lab


def http_status(stack: Stack) -> tuple[str, str]:
    rack = stack.api("rack-controllers", "read")[0]
    s = next(x for x in rack["service_set"] if x["name"] == "http")
    return s["status"], s["status_info"]


def machine_by_mac(stack: Stack, mac: str) -> dict | None:
    for m in stack.api("machines", "read"):
        if any(i["mac_address"] == mac for i in m["interface_set"]):
            return m
    return None


def test_tftp_serves_loaders_and_per_machine_configs_to_real_clients(lab):
    client = lab.add_host("tftpc", {"pxe": "10.80.0.60/24"})
    loader = client.run(
        [
            "curl",
            "-s",
            "--tftp-blksize",
            "1468",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            "tftp://10.80.0.2/undionly.kpxe",
        ]
    )
    assert int(loader.stdout) == Path("/usr/lib/ipxe/undionly.kpxe").stat().st_size
    out = lab.workdir / "pxelinux.cfg"
    client.run(
        ["busybox", "tftp", "-g", "-b", "512", "-r", "pxelinux.cfg/01-52-54-00-99-99-99", "-l", str(out), "10.80.0.2"]
    )
    assert "mp_mode=enlist" in out.read_text()  # an unknown MAC enlists
    hpa = client.run(
        ["tftp", "-m", "binary", "10.80.0.2", "-c", "get", "grub.cfg-52-54-00-99-99-99", str(lab.workdir / "grub.cfg")],
        check=False,
    )
    assert hpa.returncode == 0 and "mp_mode=enlist" in (lab.workdir / "grub.cfg").read_text()


def test_an_unknown_machine_pxe_boots_and_enlists_as_new(lab):
    stack = lab.stack
    vm = lab.fabric.spawn(vm_command(lab.tap, lab.workdir / "enlist.serial"), log=lab.workdir / "enlist.log")
    try:
        machine = wait_until(lambda: machine_by_mac(stack, VM_MAC), BOOT_TIMEOUT, interval=2, what="the VM to enlist")
        assert machine["status_name"] == "New"
        assert machine["architecture"] == "amd64/generic"
        assert machine["boot_interface"]["mac_address"] == VM_MAC
        vm.wait(120)  # it powers itself off
    finally:
        lab.fabric.stop(vm)
    assert "metalplane: finished" in (lab.workdir / "enlist.serial").read_text(errors="replace")


def commission(stack: Stack, system_id: str, meanwhile=None, **extra: str) -> dict:
    stack.api("machine", "commission", system_id, *[f"{k}={v}" for k, v in extra.items()])
    if meanwhile is not None:
        meanwhile()
    return wait_until(
        lambda: (m := stack.api("machine", "read", system_id))["status_name"] != "Commissioning" and m,
        BOOT_TIMEOUT,
        interval=2,
        what="commissioning to end",
    )


def test_commissioning_through_the_bmc_ends_ready_with_the_vms_facts(lab):
    stack = lab.stack
    machine = machine_by_mac(stack, VM_MAC)
    assert machine is not None, "the enlistment test runs first"
    hook = command_hook(
        lab.workdir / "vm-power",
        ["ip", "netns", "exec", lab.fabric.netns, *vm_command(lab.tap, lab.workdir / "vm.serial")],
    )
    bmc = IpmiSimBmc(
        lab.workdir / "bmc", "10.80.0.100", 623, user="admin", password="vm-bmc-pass", name="vmbmc", hook=hook
    ).start(host=lab.bmchost)
    lab.bmc, lab.serial = bmc, lab.workdir / "vm.serial"  # the VM's console, each time the BMC starts it
    stack.api(
        "machine",
        "update",
        machine["system_id"],
        "power_type=ipmi",
        "power_parameters_power_address=10.80.0.100",
        "power_parameters_power_user=admin",
        "power_parameters_power_pass=vm-bmc-pass",
        "power_parameters_cipher_suite_id=3",
    )
    intruder = lab.add_host("intruder", {"pxe": "10.80.0.61/24"})
    stolen: list[str] = []

    def another_host_asks_for_the_vms_config() -> None:
        """Right after commission is asked, before the VM has booted: another host on the
        boot network fetches the VM's boot config over TFTP and over HTTP."""
        out = lab.workdir / "intruder.cfg"
        intruder.run(
            [
                "busybox",
                "tftp",
                "-g",
                "-b",
                "512",
                "-r",
                f"pxelinux.cfg/01-{VM_MAC.replace(':', '-')}",
                "-l",
                str(out),
                "10.80.0.2",
            ]
        )
        stolen.append(out.read_text())
        stolen.append(intruder.run(["curl", "-s", f"http://10.80.0.2:5248/ipxe.cfg-{VM_MAC.replace(':', '-')}"]).stdout)

    done = commission(stack, machine["system_id"], meanwhile=another_host_asks_for_the_vms_config)
    serial = lab.serial.read_text(errors="replace")
    assert done["status_name"] == "Ready", (done["error_description"], serial[-3000:])
    # The intruder got configs with nothing to act as the VM with; the VM got its token.
    assert len(stolen) == 2 and all("LOCALBOOT" in c or "exit" in c for c in stolen), stolen
    assert not any("enrol=" in c or "token=" in c for c in stolen), stolen
    assert "enrolled: got this machine's metadata token" in serial
    assert done["cpu_count"] == VM_CPUS
    assert done["memory"] == VM_MEMORY
    results = stack.api("machine", "commissioning-results", machine["system_id"])
    assert {r["name"] for r in results} >= {"00-cpuinfo", "10-meminfo"}
    assert all(r["exit_status"] == 0 for r in results)
    wait_until(lambda: not bmc.power, 60, what="the VM to power off")


def import_stand_in_debian(lab) -> str:
    """A deployable debian/bookworm (a root tarball of one file) imported into the region;
    its sha256. `deploy` needs an image with a root tarball, and the installer fails at its
    disk step, before it fetches the tarball: building the real Debian image (debootstrap,
    minutes; tests/system/test_deploy_image.py) would buy nothing here."""
    mirror = lab.new_workdir("debian-mirror")
    sha256 = publish_stand_in_debian(mirror)
    stack = lab.stack
    stack.cli("admin", "boot-resources", "import", f"path={mirror}")

    def imported() -> bool:
        found = [r for r in stack.api("boot-resources", "read") if r["name"] == "debian/bookworm"]
        return bool(found) and any(
            s["complete"] for s in stack.api("boot-resource", "read", str(found[0]["id"]))["sets"].values()
        )

    wait_until(imported, 60, what="the stand-in debian/bookworm image")
    return sha256


def test_a_deploy_without_a_disk_ends_in_failed_deployment_with_the_installers_output(lab):
    """`machines allocate`, `machine deploy`: the region powers the VM on through its BMC, it
    PXE-boots the installer (the ephemeral image, mp_mode=deploy) from the rack, which enrols,
    gets its orders, finds no disk and reports; the region records the output and the event.
    The image deployed is a stand-in (import_stand_in_debian: a root-tgz of one file, not a
    Debian root), enough for `deploy` to accept bookworm: the installer fails before fetching it."""
    stack = lab.stack
    machine = machine_by_mac(stack, VM_MAC)
    assert machine is not None and machine["status_name"] == "Ready", "the commissioning test runs first"
    sid = machine["system_id"]
    sha256 = import_stand_in_debian(lab)
    allocated = stack.api("machines", "allocate", f"system_id={sid}")
    assert allocated["status_name"] == "Allocated", allocated
    try:
        deploying = stack.api("machine", "deploy", sid, "distro_series=bookworm")
        assert (deploying["status_name"], deploying["osystem"], deploying["distro_series"]) == (
            "Deploying",
            "debian",
            "bookworm",
        )
        done = wait_until(
            lambda: (m := stack.api("machine", "read", sid))["status_name"] != "Deploying" and m,
            BOOT_TIMEOUT,
            interval=2,
            what="the deploy to end",
        )
        console = lab.serial.read_text(errors="replace")
        assert done["status_name"] == "Failed deployment", (done["error_description"], console[-3000:])
        # The installer reboots after a failure; qemu's -no-reboot makes that the VM's end.
        wait_until(lambda: not lab.bmc.power, 60, what="the VM to stop after the failure")
    finally:
        if lab.bmc.power:  # whatever failed above: the VM does not outlive the test
            lab.bmc.power_off_hook()
    assert "mode=deploy" in console and "enrolled: got this machine's metadata token" in console, console[-3000:]
    assert "metalplane: finished: FAILED" in console, console[-3000:]
    reason = "Installation failed (refer to the installation log for more information). disk: no disk to install to"
    assert done["error_description"].startswith(reason + ": /sys/block has no disk"), done["error_description"]
    assert (done["status_action"], done["status_message"]) == (
        "disk",
        f"Node installation failure - {done['error_description']}",
    )
    # The installer's whole output, as the region keeps it: the installation result.
    installation = stack.api("node-script-result", "read", sid, "current-installation", "include_output=1")
    (result,) = installation["results"]
    output = base64.b64decode(result["output"]).decode()
    assert result["exit_status"] == 1, result
    assert "FAILED: no disk to install to: /sys/block has no disk" in output and "== step disk: failed" in output
    assert f"image debian/bookworm sha256 {sha256}" in output  # the orders it got from this region
    events = stack.api("events", "query", f"id={sid}", "level=DEBUG", "limit=100")["events"]
    failures = [e["description"] for e in events if e["type"] == "Node installation failure"]
    assert any("no disk to install to" in d for d in failures), [(e["type"], e["description"]) for e in events]
    assert {"User starting deployment", "Node installation"} <= {e["type"] for e in events}
    # Released, it is Ready again for the tests after this one.
    stack.api("machine", "release", sid)
    wait_until(lambda: stack.api("machine", "read", sid)["status_name"] == "Ready", 60, what="the release")


def test_a_failing_script_fails_commissioning_with_its_output_kept(lab):
    stack = lab.stack
    machine = machine_by_mac(stack, VM_MAC)
    script = lab.workdir / "99-fail.sh"
    script.write_text("#!/bin/sh\necho 'disk check: bad sectors on vda'\nexit 1\n")
    stack.cli("admin", "commissioning-scripts", "create", "name=99-fail", f"content@={script}")
    try:
        done = commission(stack, machine["system_id"])
    finally:
        stack.cli("admin", "commissioning-script", "delete", "99-fail")
    assert done["status_name"] == "Failed commissioning"
    assert "99-fail" in done["error_description"]
    failed = next(
        r for r in stack.api("machine", "commissioning-results", machine["system_id"]) if r["name"] == "99-fail"
    )
    assert failed["exit_status"] == 1 and "bad sectors" in failed["output"]
    wait_until(lambda: not lab.bmc.power, 60, what="the VM to power off")


def test_a_machine_that_never_reports_times_out(lab):
    stack = lab.stack
    ghost = stack.api(
        "machines",
        "create",
        "architecture=amd64/generic",
        "mac_addresses=52:54:00:80:00:99",
        "power_type=manual",
        "hostname=ghost",
        "commission=false",
    )
    done = commission(stack, ghost["system_id"], timeout="10")
    assert done["status_name"] == "Failed commissioning"
    assert "timed out" in done["error_description"]


def test_the_vm_was_given_its_lease_by_the_rack(lab):
    known = [
        a
        for s in lab.stack.api("subnets", "read")
        if s["cidr"] == CIDR
        for a in lab.stack.api("subnet", "ip-addresses", str(s["id"]))
        if a.get("mac_address") == VM_MAC
    ]
    assert known, "the VM's DHCP lease reached the region"
