"""NTP with chrony, for regions and racks (one package: the same daemon, other sources).

    from metalplane.ntp import ChronyService, parse_ntp_servers, rack_config, region_config
    ntp = ChronyService(state_dir / "ntp")
    await ntp.apply(region_config(parse_ntp_servers("ntp.ubuntu.com 10.0.0.1"), other_regions=[...],
                                  allow=[...]))     # a region: "ntp_region"
    await ntp.apply(rack_config(regions=[...], allow=[...]))   # a rack: "ntp_rack"
    ntp.status()      # ("running" | "degraded" | "dead" | "off", text)

Modules: `config` (pure: MAAS's source rules, chrony.conf), `chronyc` (pure:
chrony's tracking/sources -> status), `service` (chronyd supervised).
"""

from metalplane.ntp.chronyc import judge, parse_sources, parse_tracking
from metalplane.ntp.config import (
    RACK_STRATUM,
    REGION_POLL,
    REGION_STRATUM,
    ChronyConfig,
    ChronyPaths,
    Source,
    parse_ntp_servers,
    rack_config,
    region_config,
    render,
)
from metalplane.ntp.service import ChronyConfigError, ChronyError, ChronyService

__all__ = [
    "RACK_STRATUM",
    "REGION_POLL",
    "REGION_STRATUM",
    "ChronyConfig",
    "ChronyConfigError",
    "ChronyError",
    "ChronyPaths",
    "ChronyService",
    "Source",
    "judge",
    "parse_ntp_servers",
    "parse_sources",
    "parse_tracking",
    "rack_config",
    "region_config",
    "render",
]
