"""The rack's `rackd` status: judged by the region from the rack's connections, made
worse by what the rack says of its own internals (a supervised task down)."""

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


SEVERITY = {"running": 0, "degraded": 1, "dead": 2}


def with_rack_report(judged: tuple[str, str], reported: tuple[str, str] | None) -> tuple[str, str]:
    """The worse of the region's judgement and the rack's own report. A rack with no
    connection cannot report: then its last report is stale and only the judgement counts."""
    if reported is None or judged[0] == "dead":
        return judged
    status, info = reported
    if status not in SEVERITY or status == "running" or SEVERITY[status] < SEVERITY.get(judged[0], 0):
        return judged
    return status, "; ".join(x for x in (judged[1], info) if x)
