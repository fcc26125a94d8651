"""The rack's `rackd` status, judged by the region from the rack's connections."""

from __future__ import annotations


def rackd_status(connected_regions: int, live_regions: int, per_rack: int,
                 refusal: str | None = None) -> tuple[str, str]:
    """running when connected to as many regions as it should be; degraded with
    the reason when fewer; dead with no connection at all."""
    if refusal:
        return "dead", f"refused: {refusal}"
    if connected_regions == 0:
        return "dead", "no connection to any region"
    wanted = min(per_rack, max(live_regions, 1))
    if connected_regions >= wanted:
        return "running", ""
    return "degraded", f"connected to {connected_regions} of {wanted} region controllers"
