"""How a commissioning machine gets its metadata token without the boot network reading it.

Boot configs travel in the clear (TFTP, plain HTTP), and anyone on the boot
network may ask the rack for `pxelinux.cfg/01-<MAC>` or `ipxe.cfg-<MAC>`. So the
config never carries the machine's token. It carries an *enrolment credential*:

- bound to the address that asked for the config (the rack sends it in
  `GetBootConfig.client_ip`), short-lived (ENROL_TTL, and never past the
  commissioning deadline), one per machine;
- exchanged **once**, from that address, for the token (`POST
  /MAAS/metadata/enrol`); afterwards it is worth nothing, and the token is only
  ever sent to the machine over that exchange.

Which address may have it (`decide`, pure) follows what the region knows from
its own DHCP. Where metalplane serves DHCP for the asking address (a subnet on
a VLAN with DHCP on, or relayed to one), only the address leased to the
machine's MAC gets the credential: any other host is refused, whenever it asks
(`LeasePending` while the lease may still be on its way from the rack: the
caller waits a few seconds for it). Where the region cannot know (external
DHCP, or a rack that does not say who asked), the first address that asks
gets it and no other does after it, until it expires unused. Once the machine
has exchanged it, the rest of the commissioning run stays bound to the address
it enrolled from: booting again from there gets a fresh credential, any other
address nothing (unless it holds the machine's lease).

Compared with MAAS, whose boot config carries the node's OAuth token to anyone
who asks for the MAC: a host that fetches the config of another machine gets a
credential it cannot use from its own address, and the token never crosses the
boot network except to the address the config was served to. docs/security.md
says what remains (an attacker who can take over the machine's address, or
sniff its traffic, can still act as it).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from sqlalchemy import cast, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import INET
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.hostport import peer_ip
from metalplane.region.db.tables import dhcp_leases, node_enrolments, node_tokens, nodes, subnets, vlans
from metalplane.region.errors import PermissionDenied, Refused, Unauthenticated
from metalplane.region.services import machines
from metalplane.region.services.node_status import ENROLLING
from metalplane.region.services.rows import first_row

ENROL_TTL = timedelta(minutes=15)
Address = IPv4Address | IPv6Address


@dataclass(frozen=True)
class Current:
    """The machine's credential as stored."""

    address: Address | None  # None: not bound yet (a rack that does not say who asked)
    expires: datetime
    used: bool


@dataclass(frozen=True)
class Decision:
    action: str  # "reuse" | "issue" | "refuse" | "wait"
    reason: str = ""


class LeasePending(Refused):
    """The asking address should hold the machine's lease, and the region has not
    heard of it yet (racks report leases within a second or so): ask again shortly."""


def decide(current: Current | None, requester: Address | None, lease: str, managed: bool, now: datetime) -> Decision:
    """Whether `requester` gets the machine's credential. `lease`: what the region's DHCP
    leases say of the requester's address: "this" (leased to the machine's MAC),
    "other" (to another MAC) or "none"; `managed`: metalplane serves DHCP there, so
    the machine's own address has a lease."""
    if lease == "other":
        return Decision("refuse", f"{requester} holds another machine's DHCP lease")
    if lease == "none" and managed:
        return Decision("wait", f"{requester} holds no DHCP lease of this machine's MAC")
    if current is None:
        return Decision("issue")
    bound_here = current.address is None or current.address == requester
    if current.used:
        # The machine enrolled from current.address: this run stays bound there (it
        # may boot again from it), whatever the credential's age.
        return Decision(
            "issue" if bound_here or lease == "this" else "refuse",
            f"the machine enrolled from {current.address}; {requester} is another address",
        )
    if current.expires <= now:
        return Decision("issue")  # never exchanged: the binding lapses with it
    if bound_here:
        return Decision("reuse")
    if lease == "this":
        return Decision("issue")  # the lease proves the new address is the machine's
    return Decision(
        "refuse",
        f"the enrolment credential was given to {current.address}; "
        f"{requester or 'a rack that does not say who asked'} cannot have it",
    )


async def lease_of(conn: AsyncConnection, address: Address | None, mac: str) -> str:
    if address is None:
        return "none"
    rows = await conn.execute(
        select(dhcp_leases.c.mac).where(
            dhcp_leases.c.ip == str(address),
            dhcp_leases.c.state == "active",
            or_(dhcp_leases.c.expires.is_(None), dhcp_leases.c.expires > func.now()),
        )
    )
    leased = {r.mac.lower() for r in rows}
    if not leased:
        return "none"
    return "this" if mac in leased else "other"


async def dhcp_managed(conn: AsyncConnection, address: Address | None) -> bool:
    """Does metalplane serve DHCP for this address (its subnet's VLAN has DHCP on, or is relayed)?"""
    if address is None:
        return False
    found = await conn.execute(
        select(subnets.c.id)
        .join(vlans, vlans.c.id == subnets.c.vlan_id)
        .where(
            subnets.c.cidr.op(">>=")(cast(str(address), INET)),
            or_(vlans.c.dhcp_on.is_(True), vlans.c.relay_vlan_id.is_not(None)),
        )
        .limit(1)
    )
    return found.first() is not None


async def credential_for(conn: AsyncConnection, machine: dict[str, Any], mac: str, client_ip: str | None) -> str:
    """The enrolment credential for a boot config served to `client_ip`. Refused when
    that address may not have it (the boot config then says to boot locally);
    LeasePending when it may, once its DHCP lease is known."""
    requester = peer_ip(client_ip)
    if client_ip is not None and requester is None:
        raise Refused(f"the rack sent {client_ip!r} as the requester's address")
    # The machine's row, locked: two racks asked at once get one credential, not two.
    await conn.execute(select(nodes.c.id).where(nodes.c.id == machine["id"]).with_for_update())
    row = await first_row(conn, select(node_enrolments).where(node_enrolments.c.node_id == machine["id"]))
    current = None if row is None else Current(peer_ip(row.address), row.expires, row.used is not None)
    now = datetime.now(UTC)
    decision = decide(
        current, requester, await lease_of(conn, requester, mac), await dhcp_managed(conn, requester), now
    )
    if decision.action == "wait":
        raise LeasePending(decision.reason)
    if decision.action == "refuse":
        raise Refused(decision.reason)
    if decision.action == "reuse" and row is not None:
        return str(row.secret)
    expires = now + ENROL_TTL
    if machine.get("status_expires") is not None:
        expires = min(expires, machine["status_expires"])
    secret = secrets.token_urlsafe(24)
    values = {
        "secret": secret,
        "address": str(requester) if requester else None,
        "expires": expires,
        "used": None,
        "updated": func.now(),
    }
    await conn.execute(
        pg_insert(node_enrolments)
        .values(node_id=machine["id"], **values)
        .on_conflict_do_update(index_elements=["node_id"], set_=values)
    )
    return secret


async def exchange(conn: AsyncConnection, secret: str, client_ip: str | None) -> str:
    """The machine's token for its enrolment credential, once, from the address it was given to."""
    row = (
        await first_row(
            conn,
            select(node_enrolments, nodes.c.system_id)
            .join(nodes, nodes.c.id == node_enrolments.c.node_id)
            .where(node_enrolments.c.secret == secret)
            .with_for_update(of=node_enrolments),
        )
        if secret
        else None
    )
    if row is None or row.used is not None or row.expires <= datetime.now(UTC):
        raise Unauthenticated("Unknown, used or expired enrolment credential.")
    requester = peer_ip(client_ip)
    bound = peer_ip(row.address)
    if bound is not None and requester != bound:
        raise PermissionDenied(f"This enrolment credential was given to another address than {requester}.")
    machine = await machines.get_machine(conn, row.system_id)
    if machine["status"] not in ENROLLING:  # commissioning, the installer, the wipe, rescue mode
        raise Refused(f"Machine {machine['hostname']} is not running the ephemeral environment.")
    await conn.execute(
        update(node_enrolments)
        .where(node_enrolments.c.node_id == row.node_id)
        .values(used=func.now(), address=str(bound or requester) if (bound or requester) else None, updated=func.now())
    )
    token = (await conn.execute(select(node_tokens.c.token).where(node_tokens.c.node_id == row.node_id))).scalar()
    if token is None:
        raise Refused(f"Machine {machine['hostname']} has no metadata token: commission it again.")
    return str(token)


async def forget(conn: AsyncConnection, node_id: int) -> None:
    """A new commissioning run: the previous run's credential goes."""
    await conn.execute(delete(node_enrolments).where(node_enrolments.c.node_id == node_id))
