"""Pure: chrony's own view (``chronyc -n -c tracking`` and ``sources``) -> a service status.

* **running**: synchronised to a source that answers (one of its last two
  polls did) and that is itself synchronised to real time, i.e. not a
  server in orphan mode (stratum below `ORPHAN_STRATUM`);
* **degraded**: serving, but from its own clock (orphan: nothing upstream
  answers), or still following a source that stopped answering, or a source
  that has no time source of its own;
* **dead** is said by the supervisor (no process to ask).
"""

from __future__ import annotations

from dataclasses import dataclass

from metalplane.ntp.config import REGION_STRATUM

#: chrony's reference ID when it serves its own clock (``local``), 127.127.1.1.
LOCAL_REFID = "7F7F0101"
#: A source at this stratum or above serves its own clock (a region or rack in orphan mode).
ORPHAN_STRATUM = REGION_STRATUM


@dataclass(frozen=True)
class Tracking:
    ref_id: str  #: hex, e.g. "0A3C0001"
    ref_name: str  #: the source's address ("" for the local clock)
    stratum: int
    leap: str  #: "Normal" | "Not synchronised" | ...

    @property
    def local(self) -> bool:
        return self.ref_id.upper() == LOCAL_REFID or self.leap == "Not synchronised"


@dataclass(frozen=True)
class SourceState:
    mode: str  #: "^" server, "=" peer, "#" reference clock
    state: str  #: "*" selected, "+" combined, "-", "?" unreachable, "x", "~"
    name: str
    stratum: int
    poll: int  #: log2 seconds
    reach: int  #: the last 8 polls, newest in bit 0
    last_rx: int  #: seconds since the last good sample

    @property
    def answering(self) -> bool:
        return bool(self.reach & 0b11)


def parse_tracking(csv: str) -> Tracking:
    """``chronyc -n -c tracking`` -> Tracking (ValueError if it is not that)."""
    fields = csv.strip().splitlines()[0].split(",") if csv.strip() else []
    if len(fields) < 14:
        raise ValueError(f"not chronyc tracking output: {csv.strip()[:200]!r}")
    return Tracking(fields[0], fields[1], int(fields[2]), fields[13])


def parse_sources(csv: str) -> list[SourceState]:
    """``chronyc -n -c sources`` -> one SourceState per source (malformed lines: ValueError)."""
    out = []
    for line in csv.strip().splitlines():
        f = line.split(",")
        if len(f) < 7:
            raise ValueError(f"not chronyc sources output: {line[:200]!r}")
        out.append(SourceState(f[0], f[1], f[2], int(f[3]), int(f[4]), int(f[5], 8), int(f[6])))
    return out


def judge(tracking: Tracking, sources: list[SourceState], local_stratum: int) -> tuple[str, str]:
    """(status, text) for a running chronyd."""
    selected = next((s for s in sources if s.state == "*"), None)
    others = ", ".join(f"{s.name} {_words(s)}" for s in sources) or "none configured"
    if tracking.local or selected is None:
        return "degraded", (
            f"no time source answers (sources: {others}); serving its own clock at stratum {local_stratum} (orphan)"
        )
    if not selected.answering:
        return "degraded", (
            f"{selected.name} stopped answering (last reply {selected.last_rx}s ago); "
            f"serving at stratum {tracking.stratum} on its last synchronisation "
            f"(sources: {others})"
        )
    if selected.stratum >= ORPHAN_STRATUM:
        return "degraded", (
            f"following {selected.name}, which has no time source itself (stratum "
            f"{selected.stratum}); serving at stratum {tracking.stratum}"
        )
    return "running", (
        f"synchronised to {selected.name} (stratum {selected.stratum}); serving at stratum {tracking.stratum}"
    )


def _words(s: SourceState) -> str:
    if s.state == "*":
        return "selected"
    if not s.reach:
        return "unreachable"
    return {"+": "combined", "-": "not combined", "?": "unusable", "x": "falseticker", "~": "too variable"}.get(
        s.state, s.state
    )
