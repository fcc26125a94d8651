"""pods/ and pods/{id}/: VM hosts, which metalplane does not manage (services/storage_layouts.py).

The list is empty, every pod is not found in MAAS's words, and adding one is a 400
naming `type`. The actions and their checks are MAAS's (admins only where MAAS asks
for an admin, a missing `tag` before the lookup), so clients see MAAS's answers.
"""

from __future__ import annotations

from metalplane.region.api.checks import mandatory
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.errors import Invalid, NotFound, Refused
from metalplane.region.services.storage_layouts import NO_VM_HOSTS

pods = Handler("PodsHandler", "pods/", "Manage the VM hosts (pods) of the MAAS; metalplane has none.")
pod = Handler("PodHandler", "pods/{id}/", "Manage one VM host (pod) by its id; metalplane has none.", model="Pod")


def no_pod(ctx: Ctx) -> NotFound:
    ctx.path_int("id")  # a garbage id is as unknown as any other
    return NotFound("Pod")


@pods.read
async def list_pods(ctx: Ctx) -> list:
    """List the VM hosts (pods): metalplane manages none, so the list is empty."""
    return []


@pods.action("POST", admin=True)
async def create_pod(ctx: Ctx) -> dict:
    """Add a VM host (pod): refused (400 on `type`), metalplane manages no VM hosts.

    :param type: The kind of VM host (MAAS: virsh or lxd).
    :type type: unicode
    :param power_address: Where the VM host's API answers.
    :type power_address: unicode
    :param power_user: The user for that API.
    :type power_user: unicode
    :param power_pass: The password for that API.
    :type power_pass: unicode
    :param name: The VM host's name.
    :type name: unicode
    :param zone: The VM host's zone.
    :type zone: unicode
    :param pool: The resource pool of the machines it would compose.
    :type pool: unicode
    :param tags: Tags for the VM host, comma separated.
    :type tags: unicode
    """
    raise Invalid.field("type", NO_VM_HOSTS)


@pod.read
async def read_pod(ctx: Ctx) -> dict:
    """Read a VM host: there is none (MAAS's stock "Not Found" for an unknown id)."""
    raise NotFound("Pod", "Not Found")


@pod.action("PUT", admin=True)
async def update_pod(ctx: Ctx) -> dict:
    """Update a VM host: there is none to update.

    :param name: The VM host's name.
    :type name: unicode
    :param pool: The resource pool of the machines it composes.
    :type pool: unicode
    :param zone: The VM host's zone.
    :type zone: unicode
    :param tags: Tags for the VM host, comma separated.
    :type tags: unicode
    :param cpu_over_commit_ratio: CPU over-commit ratio.
    :type cpu_over_commit_ratio: float
    :param memory_over_commit_ratio: Memory over-commit ratio.
    :type memory_over_commit_ratio: float
    :param power_address: Where the VM host's API answers.
    :type power_address: unicode
    :param power_pass: The password for that API.
    :type power_pass: unicode
    """
    raise no_pod(ctx)


@pod.action("DELETE", admin=True)
async def delete_pod(ctx: Ctx) -> None:
    """Delete a VM host: there is none to delete."""
    raise no_pod(ctx)


@pod.action("POST", "refresh", admin=True)
async def refresh_pod(ctx: Ctx) -> dict:
    """Refresh what is known of a VM host: there is none."""
    raise no_pod(ctx)


@pod.action("GET", "parameters", admin=True)
async def pod_parameters(ctx: Ctx) -> dict:
    """A VM host's power parameters: there is none."""
    raise no_pod(ctx)


@pod.action("POST", "compose", admin=True)
async def compose(ctx: Ctx) -> dict:
    """Compose a machine on a VM host: there is none.

    :param cores: Minimum CPU cores.
    :type cores: int
    :param memory: Minimum memory (MiB).
    :type memory: int
    :param architecture: The machine's architecture.
    :type architecture: unicode
    :param storage: Disks to compose, as MAAS's storage constraint.
    :type storage: unicode
    :param interfaces: Interfaces to compose, as MAAS's interfaces constraint.
    :type interfaces: unicode
    :param hostname: The new machine's hostname.
    :type hostname: unicode
    :param domain: The id of the new machine's domain.
    :type domain: int
    :param zone: The id of the new machine's zone.
    :type zone: int
    :param pool: The id of the new machine's resource pool.
    :type pool: int
    """
    raise no_pod(ctx)


@pod.action("POST", "add_tag", admin=True)
async def add_tag(ctx: Ctx) -> dict:
    """Tag a VM host: there is none.

    :param tag: The tag to add (without a comma).
    :type tag: unicode
    """
    if "," in mandatory(ctx.params, "tag"):
        raise Refused('Tag may not contain a ",".')
    raise no_pod(ctx)


@pod.action("POST", "remove_tag", admin=True)
async def remove_tag(ctx: Ctx) -> dict:
    """Untag a VM host: there is none.

    :param tag: The tag to remove.
    :type tag: unicode
    """
    mandatory(ctx.params, "tag")
    raise no_pod(ctx)
