"""MAAS's network validation rules as pure functions over plain values.

Each check returns MAAS's error shape, {field: [reason, ...]}, empty when fine,
so the API can answer 400 before anything is written.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from metalplane.region import validation
from metalplane.region.errors import Invalid

Errors = dict[str, list[str]]
Network = IPv4Network | IPv6Network
ALL = "__all__"
RANGE_TYPES = ("dynamic", "reserved")
RESERVED_FABRIC_NAME = re.compile(r"^fabric-(\d+)$")


def err(field: str, reason: str) -> Errors:
    return {field: [reason]}


def parse_cidr(text: str | None) -> tuple[Network | None, Errors]:
    if text is None or not text.strip():
        return None, err("cidr", "This field is required.")
    network = validation.parse_network(text)
    if network is None:
        return None, err("cidr", validation.CIDR_FORMAT)
    if network.prefixlen == 0:
        return None, err("cidr", "Prefix length must be greater than 0.")
    return network, {}


def check_gateway(network: Network, gateway: str | None) -> Errors:
    if not gateway:
        return {}
    address = validation.parse_ip(gateway)
    if address is None:
        return err("gateway_ip", validation.INVALID_IP)
    if address.version == 6 and address.is_link_local and network.version == 6:
        return {}
    if address not in network:
        return err("gateway_ip", "Gateway IP must be within CIDR range.")
    return {}


def parse_dns_servers(values: list[str]) -> tuple[list[str], Errors]:
    servers: list[str] = []
    for value in values:
        for item in re.split(r"[,\s]+", value.strip()):
            if not item:
                continue
            address = validation.parse_ip(item)
            if address is None:
                return [], err("dns_servers", f"Invalid IP address: {validation.shown(item)}.")
            servers.append(str(address))
    if len(servers) > validation.MAX_LIST:
        return [], err("dns_servers", f"Ensure this list has at most {validation.MAX_LIST} items.")
    return servers, {}


def check_name(kind: str, name: str, field: str = "name") -> Errors:
    """MAAS's name rule for `kind` (validation.NAME_RULES), as an error dict."""
    try:
        validation.check_name(kind, name, field)
    except Invalid as exc:
        return exc.errors
    return {}


def check_fabric_name(name: str, fabric_id: int | None) -> Errors:
    problems = check_name("fabric", name)
    if problems:
        return problems
    reserved = RESERVED_FABRIC_NAME.match(name)
    if reserved and (fabric_id is None or int(reserved.group(1)) != fabric_id):
        return err("name", "Reserved fabric name.")
    return {}


def check_vid(vid: int | None) -> Errors:
    if vid is None:
        return err("vid", "This field is required.")
    if not 0 <= vid <= 4094:
        return err("vid", "VID must be between 0 and 4094.")
    return {}


def check_mtu(mtu: int | None) -> Errors:
    # MAAS: the form's min_value speaks first, the model's range check second.
    if mtu is not None and mtu < 552:
        return err("mtu", "Ensure this value is greater than or equal to 552.")
    if mtu is not None and mtu > 65535:
        return err("mtu", "MTU must be between 552 and 65535.")
    return {}


@dataclass(frozen=True)
class Span:
    """An address interval that a new range must not collide with."""

    start: str
    end: str
    type: str  # dynamic, reserved, or an address use such as gateway-ip


def _both(reason: str) -> Errors:
    # MAAS reports range-wide problems under both address fields.
    return {"start_ip": [reason], "end_ip": [reason]}


def check_range(
    range_type: str | None,
    start: str | None,
    end: str | None,
    cidr: str,
    existing: list[Span],
    used_addresses: list[str],
) -> Errors:
    """MAAS's IPRange.clean(): addresses, order, subnet bounds and overlaps."""
    if not range_type:
        return err("type", "This field is required.")
    if range_type not in RANGE_TYPES:
        return err("type", f"Select a valid choice. {range_type} is not one of the available choices.")
    if not start or not end:
        return _both("Start IP address and end IP address are both required.")
    first, last = validation.parse_ip(start), validation.parse_ip(end)
    if first is None or last is None:
        return {
            name: [validation.INVALID_IP] for name, value in (("start_ip", first), ("end_ip", last)) if value is None
        }
    if first.version != last.version:
        return _both("Start IP address and end IP address must be in the same address family.")
    if int(last) < int(first):  # same family, checked above
        return err("end_ip", "End IP address must not be less than Start IP address.")
    network = ip_network(cidr)
    if first not in network and last not in network:
        return _both(f"IP addresses must be within subnet: {cidr}.")
    if first not in network:
        return err("start_ip", f"Start IP address must be within subnet: {cidr}.")
    if last not in network:
        return err("end_ip", f"End IP address must be within subnet: {cidr}.")
    if network.num_addresses > 2 and first == network.network_address:
        return err("start_ip", "Reserved network address cannot be included in IP range.")
    if network.version == 4 and network.num_addresses > 2 and last == network.broadcast_address:
        return err("end_ip", "Broadcast address cannot be included in IP range.")
    if network.version == 6 and range_type == "dynamic" and int(last) - int(first) + 1 < 256:
        return _both("IPv6 dynamic range must be at least 256 addresses in size.")
    for span in existing:
        if int(ip_address(span.start)) <= int(last) and int(first) <= int(ip_address(span.end)):
            if range_type == "dynamic":
                return _both("Requested dynamic range conflicts with an existing IP address or range.")
            return _both("Requested reserved range conflicts with an existing range.")
    if range_type == "dynamic":
        for used in used_addresses:
            if int(first) <= int(ip_address(used)) <= int(last):
                return _both("Requested dynamic range conflicts with an existing IP address or range.")
    return {}


def check_ranges_fit(cidr: str, ranges: list[Span]) -> Errors:
    """A subnet's new CIDR must still hold each of its ranges as check_range would accept it
    (inside, and clear of the network and broadcast addresses)."""
    for span in ranges:
        problems = check_range(span.type, span.start, span.end, cidr, [], [])
        if problems:
            reason = next(iter(problems.values()))[0]
            return err("cidr", f"IP range {span.start}-{span.end} would not fit {cidr}: {reason}")
    return {}


@dataclass(frozen=True)
class DhcpState:
    """A VLAN's DHCP settings as they would be after an update."""

    dhcp_on: bool
    primary: int | None
    secondary: int | None
    has_dynamic_range: bool
    primary_alive: bool = True


def resolve_rack_change(
    current_primary: int | None,
    current_secondary: int | None,
    primary: int | None,
    secondary: int | None,
    primary_given: bool,
    secondary_given: bool,
) -> tuple[int | None, int | None]:
    """MAAS's side rules: clearing the primary promotes the secondary; making the
    secondary the primary clears the secondary."""
    new_primary = primary if primary_given else current_primary
    new_secondary = secondary if secondary_given else current_secondary
    if primary_given and primary is None and new_secondary is not None:
        new_primary, new_secondary = new_secondary, None
    elif primary_given and primary is not None and primary == current_secondary and not secondary_given:
        new_secondary = None
    return new_primary, new_secondary


def check_secondary_not_primary(
    current_primary: int | None, primary_given: bool, secondary: int | None, label: str
) -> Errors:
    """MAAS refuses a secondary that is already this VLAN's (unchanged) primary."""
    if secondary is not None and not primary_given and secondary == current_primary:
        return err(ALL, f"{label} is already set as the primary rack controller")
    return {}


def check_dhcp(state: DhcpState) -> Errors:
    if state.dhcp_on and not state.has_dynamic_range:
        return err("dhcp_on", "dhcp can only be turned on when a dynamic IP range is defined.")
    if state.dhcp_on and state.primary is None:
        return err(ALL, "dhcp can only be turned on when a primary rack controller is set.")
    if state.primary is not None and state.primary == state.secondary:
        return err(ALL, "The primary and secondary rack must be different")
    if state.secondary is not None and state.primary is None:
        return err("secondary_rack", "A secondary rack controller needs a primary rack controller.")
    if state.secondary is not None and not state.primary_alive:
        return err(ALL, "The primary rack controller must be up and running to set a secondary rack controller.")
    return {}


def same_family(a: str, b: str) -> bool:
    return ipaddress.ip_address(a).version == ipaddress.ip_address(b).version
