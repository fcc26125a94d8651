"""The lifecycle's pure rules: MAAS's transitions and words, allocation's messages, interface
constraints, permissions, user_data, erase modes, owner data, and the deploy contract's reports."""

from __future__ import annotations

import base64
from datetime import timedelta
from itertools import pairwise

import pytest

from metalplane.region.errors import Conflict, Invalid, PermissionDenied
from metalplane.region.services import (
    allocation,
    boot,
    deployment,
    erasing,
    interface_constraints,
    lifecycle,
    node_status,
    rescue,
)
from metalplane.region.services import permissions as perms
from metalplane.region.services.node_status import (
    LABELS,
    Status,
    allowed,
    require_transition,
    timed_out_message,
    timeout_for,
)
from metalplane.region.services.users import User

ADMIN = User(1, "admin", "", True)
ALICE = User(2, "alice", "", False)
BOB = User(3, "bob", "", False)


def test_the_deploy_path_is_allowed_and_shortcuts_are_not():
    path = [Status.READY, Status.ALLOCATED, Status.DEPLOYING, Status.DEPLOYED, Status.RELEASING, Status.READY]
    assert all(allowed(a, b) for a, b in pairwise(path))
    with pytest.raises(Conflict, match=r"^Invalid transition: New -> Deploying\.$"):
        require_transition(Status.NEW, Status.DEPLOYING)
    assert not allowed(Status.READY, Status.DEPLOYED) and not allowed(Status.BROKEN, Status.ALLOCATED)
    assert LABELS[Status.FAILED_RELEASING] == "Releasing failed" and len(LABELS) == 23


def test_timeouts_use_maas_words_and_hard_coded_minutes():
    assert timeout_for(Status.DEPLOYING, timedelta(minutes=30)) == timedelta(minutes=30)
    assert timeout_for(Status.RELEASING, timedelta(minutes=30)) == timedelta(minutes=5)
    assert timeout_for(Status.READY, timedelta(minutes=30)) is None
    assert (
        timed_out_message(Status.DEPLOYING, timedelta(minutes=30))
        == "Node operation 'Deploying' timed out after 30 minutes."
    )
    assert (
        timed_out_message(Status.DEPLOYING, timedelta(seconds=10))
        == "Node operation 'Deploying' timed out after 10 seconds."
    )


def test_allocation_messages_are_maas_words():
    assert allocation.no_match_message({}) == "No machine available."
    assert allocation.no_match_message({"system_id": ["abc"]}) == "No machine with system ID abc available."
    given = {"zone": ["z1"], "name": ["foo"], "cpu_count": ["2"]}
    assert allocation.no_match_message(given) == (
        "No available machine matches constraints: [('zone', ['z1']), ('name', ['foo']), ('cpu_count', ['2'])] "
        '(resolved to "cpu_count=2.0 name=foo zone=z1")'
    )
    assert allocation.describe({"tags": ["a", "b"], "agent_name": ["x"]}) == "tags=a,b"


def test_interface_constraints_parse_and_match():
    parsed = interface_constraints.parse("eth:space=dmz,vid=10;storage:subnet=cidr:10.0.0.0/24")
    assert parsed == {"eth": {"space": ["dmz"], "vid": ["10"]}, "storage": {"subnet": ["cidr:10.0.0.0/24"]}}
    ifaces = [
        {"id": 5, "space": "dmz", "vid": 10, "subnets": []},
        {"id": 6, "space": None, "vid": 0, "subnets": [{"id": 1, "name": "s", "cidr": "10.0.0.0/24"}]},
    ]
    assert interface_constraints.match(parsed, ifaces) == {"eth": [5], "storage": [6]}
    assert interface_constraints.match({"x": {"space": ["nope"]}}, ifaces) is None
    for bad in ("eth", "-x:name=a", "a:name=1;a:name=2", "a:colour=red"):
        with pytest.raises(ValueError):
            interface_constraints.parse(bad)


def test_permissions_follow_maas_rules():
    assert perms.allowed(perms.EDIT, ALICE, None, False) and perms.allowed(perms.EDIT, ALICE, ALICE.id, False)
    assert not perms.allowed(perms.EDIT, ALICE, BOB.id, False) and perms.allowed(perms.EDIT, ADMIN, BOB.id, False)
    assert not perms.allowed(perms.EDIT, ADMIN, ADMIN.id, True)  # locked: nobody edits
    assert perms.allowed(perms.LOCK, ADMIN, ADMIN.id, True) and not perms.allowed(perms.ADMIN, ADMIN, None, True)
    assert not perms.allowed(perms.OWNER, ADMIN, BOB.id, False)  # admins too are refused others' machines
    assert not perms.allowed(perms.ADMIN, ALICE, None, False)
    with pytest.raises(PermissionDenied):
        perms.require(ALICE, "mark_fixed", {"owner_id": None, "locked": False})


def test_user_data_is_base64_decoded_when_it_is_base64():
    data = b"#!/bin/sh\necho hi\n" * 10
    assert lifecycle.decode_user_data(base64.encodebytes(data).decode()) == data  # libmaas wraps lines
    assert lifecycle.decode_user_data("#cloud-config\nfoo: bar\n") == b"#cloud-config\nfoo: bar\n"
    with pytest.raises(Invalid) as caught:
        lifecycle.decode_user_data("x" * (lifecycle.MAX_USER_DATA + 1))
    assert list(caught.value.errors) == ["user_data"]


def test_erase_mode_from_flags_and_settings():
    off = {
        "enable_disk_erasing_on_release": False,
        "disk_erase_with_quick_erase": False,
        "disk_erase_with_secure_erase": True,
    }
    assert lifecycle.erase_mode(None, None, None, off) is None
    assert lifecycle.erase_mode(True, True, None, off) == "secure-quick"  # secure where the disk has it
    assert lifecycle.erase_mode(True, True, False, off) == "quick"
    assert lifecycle.erase_mode(True, None, None, off) == "secure"
    assert lifecycle.erase_mode(True, False, False, off) == "full"
    assert lifecycle.erase_mode(None, None, None, {**off, "enable_disk_erasing_on_release": True}) == "secure"


def test_owner_data_sets_and_deletes():
    assert lifecycle.merged_owner_data({"a": "1", "b": "2"}, {"a": "", "c": "3"}) == {"b": "2", "c": "3"}
    with pytest.raises(Invalid):
        lifecycle.merged_owner_data({}, {"k" * 256: "v"})


def test_the_image_to_deploy_must_have_a_root_tarball():
    manifest = {
        "images": [
            {"name": "debian/bookworm", "architecture": "amd64", "files": {"root-tgz": {"sha256": "s", "size": 1}}},
            {"name": "ephemeral/bookworm", "architecture": "amd64", "files": {"boot-kernel": {}}},
            {"name": "debian/trixie", "architecture": "arm64", "files": {"root-tgz": {}}},
        ]
    }
    assert lifecycle.choose_image(manifest, "amd64/generic", "debian", "bookworm")["name"] == "debian/bookworm"
    with pytest.raises(Invalid) as caught:
        lifecycle.choose_image(manifest, "amd64/generic", "debian", "trixie")
    assert caught.value.errors == {
        "distro_series": ["'debian/trixie' is not a valid distro_series.  It should be one of: debian/bookworm."]
    }


def test_deploy_reports_become_events_and_outcomes():
    assert deployment.step_event({"step": "image", "status": "ok", "runtime": 98.75, "message": "done"}) == (
        "NODE_INSTALL_EVENT",
        "image ok (98.8 s): done",
    )
    assert deployment.step_event({"step": "disk", "status": "failed"})[0] == "NODE_INSTALL_EVENT_FAILED"
    for bad in (
        {"step": "x", "status": "ok"},
        {"step": "disk", "status": "meh"},
        {"step": "disk", "status": "ok", "runtime": True},
        {"step": 3, "status": "ok"},
    ):
        with pytest.raises(Invalid):
            deployment.step_event(bad)
    assert deployment.done_outcome({"result": "ok"}) == (True, "")
    assert deployment.done_outcome({"result": "failed", "step": "disk", "message": "no disk"}) == (
        False,
        "Installation failed (refer to the installation log for more information). disk: no disk",
    )
    assert (
        deployment.booted_summary({"result": "ok", "kernel": "6.1", "user_data": {"ran": True, "exit_status": 0}})
        == "Booted from disk (6.1); user_data ran (exit status 0)"
    )
    assert deployment.image_urls(["10.0.0.2", "10.0.0.2", "10.0.0.3"], "ab") == [
        "http://10.0.0.2:5248/images/by-sha256/ab",
        "http://10.0.0.3:5248/images/by-sha256/ab",
    ]


def test_boot_purpose_of_each_status():
    assert boot.purpose_for(None) == "enlist"
    assert boot.purpose_for(Status.COMMISSIONING) == "commission"
    assert boot.purpose_for(Status.DEPLOYING, netboot=True) == "deploy"
    assert boot.purpose_for(Status.DEPLOYING, netboot=False) == "local"  # the installer is done
    assert boot.purpose_for(Status.DEPLOYED, netboot=False) == "local"
    assert boot.purpose_for(Status.DEPLOYED, netboot=True) == "local"
    assert "mp_after=reboot" in boot.kernel_params("deploy", "http://r/", "T", "52:54:00:00:00:01")
    assert "mp_after=poweroff" in boot.kernel_params("commission", "http://r/", "T", "52:54:00:00:00:01")


def test_a_machine_nobody_is_using_boots_the_ephemeral_image_to_power_off():
    """MAAS's "poweroff" purpose: every status but the ones with a run of the ephemeral image
    (commissioning, deploying, erasing, rescue) and Deployed."""
    running = {Status.COMMISSIONING, Status.DEPLOYING, Status.DISK_ERASING, Status.ENTERING_RESCUE_MODE}
    running |= {Status.RESCUE_MODE, Status.DEPLOYED}
    for status in set(Status) - running:
        assert boot.purpose_for(status, netboot=True) == "poweroff", status.name
        assert boot.purpose_for(status, netboot=False) == "poweroff", status.name  # a failed deploy's disk too
    params = boot.kernel_params("poweroff", "http://r/", None, "52:54:00:00:00:01").split()
    assert "mp_mode=poweroff" in params and "mp_after=poweroff" in params
    assert not any(p.startswith(("enrol=", "token=")) for p in params)  # it talks to nobody
    assert "poweroff" not in boot.ENROLLING


def test_the_release_to_deploy_comes_from_the_request_the_images_or_the_defaults():
    images = {"debian/bookworm": {}, "ubuntu/noble": {}}
    assert lifecycle.release_to_deploy(images, None, None, "ubuntu", "noble") == ("ubuntu", "noble")
    assert lifecycle.release_to_deploy(images, None, "bookworm", "ubuntu", "noble") == ("debian", "bookworm")
    assert lifecycle.release_to_deploy(images, None, "debian/trixie", "ubuntu", "noble") == ("debian", "trixie")
    assert lifecycle.release_to_deploy(images, "centos", "bookworm", "ubuntu", "noble") == ("centos", "bookworm")
    assert lifecycle.release_to_deploy(images, None, "jammy", "ubuntu", "noble") == ("ubuntu", "jammy")


def test_the_ephemeral_modes_of_erasing_and_rescue_mode():
    assert boot.purpose_for(Status.DISK_ERASING) == "erase"
    assert boot.purpose_for(Status.ENTERING_RESCUE_MODE) == boot.purpose_for(Status.RESCUE_MODE) == "rescue"
    # Exiting towards Deployed: the exit power-cycles it to boot its disk; else it is kept off.
    assert boot.purpose_for(Status.EXITING_RESCUE_MODE, False, previous_status=Status.DEPLOYED) == "local"
    assert boot.purpose_for(Status.EXITING_RESCUE_MODE, previous_status=Status.READY) == "poweroff"
    assert boot.purpose_for(Status.FAILED_DISK_ERASING) == "poweroff"
    assert "mp_after=poweroff" in boot.kernel_params("erase", "http://r/", "c", "52:54:00:00:00:01")


def test_rescue_mode_returns_to_the_status_before_with_maas_power_action():
    assert node_status.rescue_previous(Status.DEPLOYED, None) == Status.DEPLOYED  # entering from Deployed
    assert node_status.rescue_previous(Status.RESCUE_MODE, Status.DEPLOYED) == Status.DEPLOYED
    assert (
        node_status.rescue_previous(Status.FAILED_ENTERING_RESCUE_MODE, Status.ALLOCATED) == Status.ALLOCATED
    )  # a retry
    assert node_status.rescue_previous(Status.RESCUE_MODE, None) == Status.READY
    assert node_status.exit_rescue_power(Status.DEPLOYED) == "cycle"
    assert node_status.exit_rescue_power(Status.READY) == node_status.exit_rescue_power(Status.BROKEN) == "off"


def test_erase_and_rescue_reports_are_checked():
    assert erasing.done_outcome({"result": "ok"}) == (True, "")
    assert erasing.done_outcome({"result": "failed", "message": "vda"}) == (False, "Failed to erase disks. vda")
    with pytest.raises(Invalid):
        erasing.done_outcome({"result": "done"})
    with pytest.raises(Invalid):
        rescue.booted_outcome({"result": "ok", "message": 3})
    assert erasing.config_for({"status": Status.DISK_ERASING, "system_id": "x", "erase_mode": None}) == {
        "system_id": "x",
        "mode": "full",
    }
