"""The rack's `rackd` status: judged by the region from the rack's connections, made
worse by what the rack says of its own internals (a supervised task down)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def rackd_status(
    connected_regions: int, live_regions: int, per_rack: int, refusal: str | None = None
) -> tuple[str, str]:
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
    connection cannot report: then its last report is stale and only the judgement counts.
    A stored `dead` is the region's own mark from when the rack was lost (a rack that
    reports is not dead), stale once the rack is connected again."""
    if reported is None or judged[0] == "dead":
        return judged
    status, info = reported
    if status != "degraded" or SEVERITY[status] < SEVERITY.get(judged[0], 0):
        return judged
    return status, "; ".join(x for x in (judged[1], info) if x)


UNREACHABLE = "the rack controller has no connection to any region controller"


def unreachable_services(
    names: Iterable[str], last: Mapping[str, tuple[str, str]] | None = None
) -> dict[str, tuple[str, str]]:
    """What the region can say of a rack it has lost: rackd is dead, every other service
    unknown — a rack cut off from the regions (not dead) keeps serving DHCP, TFTP and HTTP,
    so claiming them dead would be as false as showing their last `running`. What each
    service `last` reported stays in its info ("...; last reported running; TEXT"), for
    the pages that show it (a Kea HA state); an info that already says so is kept."""
    out = {}
    for name in names:
        if name == "rackd":
            out[name] = ("dead", UNREACHABLE)
            continue
        status, info = (last or {}).get(name, ("unknown", ""))
        if info.startswith(UNREACHABLE):
            out[name] = ("unknown", info)
        elif status == "unknown" and not info:
            out[name] = ("unknown", UNREACHABLE)
        else:
            out[name] = ("unknown", f"{UNREACHABLE}; last reported {status}" + (f"; {info}" if info else ""))
    return out


def status_changes(
    before: Mapping[str, tuple[str, str]], after: Mapping[str, tuple[str, str]]
) -> list[tuple[str, str, str]]:
    """(service, old status, new status) for each service whose status (not its info)
    changed; a service seen for the first time changes from `unknown`."""
    out = []
    for name, (status, _) in sorted(after.items()):
        old = before.get(name, ("unknown", ""))[0]
        if old != status:
            out.append((name, old, status))
    return out
