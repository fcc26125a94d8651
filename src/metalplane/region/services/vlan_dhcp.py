"""Configure DHCP on a VLAN in one go, as MAAS's "Configure DHCP" dialog does: an
optional new dynamic range, the primary and secondary rack, DHCP on.

No rule lives here: the range goes through subnets.create_range (the API's
`ipranges create`) and the VLAN through network.update_vlan (the API's `vlan
update`), in the caller's one transaction, so either both are written or, on the
first refusal, neither. Errors keep the API's field names and messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.errors import Invalid, NotFound
from metalplane.region.services import network, settings
from metalplane.region.services import subnets as subnet_service
from metalplane.region.services.users import User

RangeChoice = Literal["existing", "new", "none"]
RANGE_CHOICES: tuple[RangeChoice, ...] = ("existing", "new", "none")
NEW_RANGE_COMMENT = "Dynamic range for DHCP (configured from the web UI)"


@dataclass(frozen=True)
class DhcpChoice:
    """What the dialog asks: racks by system_id or hostname ("" for none), the dynamic
    range to use, and the cluster's HA mode (None: leave it)."""

    primary_rack: str
    secondary_rack: str
    dynamic_range: RangeChoice
    subnet: str = ""
    start_ip: str = ""
    end_ip: str = ""
    ha_mode: str | None = None


def parse_range_choice(value: str | None) -> RangeChoice:
    for choice in RANGE_CHOICES:
        if value == choice:
            return choice
    raise Invalid.field("dynamic_range", f"Select a valid choice. {value} is not one of the available choices.")


async def configure_dhcp(conn: AsyncConnection, vlan_id: int, choice: DhcpChoice, user: User) -> network.Vlans:
    """Turn DHCP on (or reconfigure it). Raises the first refusal with the API's fields;
    the caller's transaction then rolls everything back."""
    if choice.ha_mode is not None and choice.ha_mode != await settings.get_setting(conn, "dhcp_ha_mode"):
        try:
            await settings.set_setting(conn, "dhcp_ha_mode", choice.ha_mode)
        except Invalid as exc:
            raise Invalid({"dhcp_ha_mode": [m for reasons in exc.errors.values() for m in reasons]}) from None
    if choice.dynamic_range == "new":
        if not await _on_vlan(conn, choice.subnet, vlan_id):
            raise Invalid.field(
                "subnet", f"Select a valid choice. {choice.subnet} is not one of the available choices."
            )
        await subnet_service.create_range(
            conn,
            {
                "type": "dynamic",
                "subnet": choice.subnet,
                "start_ip": choice.start_ip,
                "end_ip": choice.end_ip,
                "comment": NEW_RANGE_COMMENT,
            },
            user,
        )
    return await network.update_vlan(
        conn,
        network.VlanRef(vlan_id=vlan_id),
        {
            "primary_rack": choice.primary_rack,
            "secondary_rack": choice.secondary_rack,
            "dhcp_on": True,
        },
    )


async def disable_dhcp(conn: AsyncConnection, vlan_id: int) -> network.Vlans:
    """DHCP off, as `vlan update dhcp_on=false`: the racks stop serving it."""
    return await network.update_vlan(conn, network.VlanRef(vlan_id=vlan_id), {"dhcp_on": False})


async def _on_vlan(conn: AsyncConnection, subnet: str, vlan_id: int) -> bool:
    """The dialog offers this VLAN's subnets only; a request naming another is refused."""
    if not subnet.isdigit():
        return False
    try:
        found = await subnet_service.get_subnet(conn, subnet)
    except NotFound:
        return False
    return bool(found["vlan_id"] == vlan_id)
