"""Pure decisions of the power runner: retries, backoff, BMC health, poll spread.

No I/O, no clock, no randomness of their own: times and random numbers come
in as arguments, so every rule here is a plain function with unit tests.

Rules:

* an action makes at most ``retries + 1`` attempts, waiting
  ``retry_delay * 2**(n-1)`` (capped at ``retry_delay_max``) between them;
  errors that cannot heal by trying again (wrong password, bad cipher suite,
  unsupported) are not retried, nor is a ``cycle`` that timed out (it may have
  happened: cycling twice is worse than reporting the timeout);
* each failed action counts one failure against its BMC; after
  ``failing_after`` consecutive failures, or at once for a persistent error
  (authentication, configuration), the BMC is *failing*;
* after ``n`` consecutive failures no background call (polling) is made to the
  BMC for ``backoff_base * 2**(n-1)`` seconds (± ``backoff_jitter``, capped at
  ``backoff_max``); an explicit action still goes through, with one attempt
  only while the BMC is failing: a person asked for it, and one try is not a
  tight loop;
* one success clears it all; so does a change of the BMC's parameters (a
  fixed password is tried at once);
* poll phases: a new set of targets is spread evenly over the interval (in
  the order of a hash of their names, so that neighbours in a list do not
  poll together); targets added later go to the middle of the largest gap,
  and existing targets keep their phase.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class PowerSettings:
    """The rack's power settings (all times in seconds)."""

    #: Background power-state polling: each machine once per interval.
    poll_interval: float = 300.0
    #: Power calls in flight at once on this rack (all BMCs together).
    max_concurrency: int = 16
    #: Per-attempt limit of a query, and of on/off/cycle/boot-device.
    query_timeout: float = 20.0
    action_timeout: float = 45.0
    #: Extra attempts after a failed one (bounded retries).
    retries: int = 2
    retry_delay: float = 1.0
    retry_delay_max: float = 8.0
    #: Backoff of a failing BMC for background calls.
    backoff_base: float = 60.0
    backoff_max: float = 3600.0
    backoff_jitter: float = 0.1
    #: Consecutive failures after which a BMC is marked failing.
    failing_after: int = 3

    def __post_init__(self) -> None:
        problems = []
        for name in ("poll_interval", "query_timeout", "action_timeout"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0")
        for name in ("retry_delay", "retry_delay_max", "backoff_base", "backoff_max"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        if self.max_concurrency < 1:
            problems.append("max_concurrency must be >= 1")
        if not 0 <= self.retries <= 10:
            problems.append("retries must be between 0 and 10")
        if not 0 <= self.backoff_jitter < 1:
            problems.append("backoff_jitter must be in [0, 1)")
        if self.failing_after < 1:
            problems.append("failing_after must be >= 1")
        if self.backoff_max < self.backoff_base:
            problems.append("backoff_max must be >= backoff_base")
        if problems:
            raise ValueError("invalid power settings: " + "; ".join(problems))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PowerSettings:
        """Settings from a config mapping; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown power settings: {', '.join(unknown)}")
        return cls(**dict(data))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def timeout_for(self, action: str) -> float:
        return self.query_timeout if action == "query" else self.action_timeout


# --------------------------------------------------------------------------- retries


def should_retry(action: str, kind: str, retryable: bool, attempt: int, max_attempts: int) -> bool:
    """Whether attempt number `attempt` (1-based), which failed with `kind`, is followed by another."""
    if attempt >= max_attempts or not retryable:
        return False
    if action == "cycle" and kind == "timeout":
        return False
    return True


def retry_delay(attempt: int, settings: PowerSettings) -> float:
    """Wait after failed attempt number `attempt` (1-based) before the next one."""
    return min(settings.retry_delay_max, settings.retry_delay * 2.0 ** max(0, attempt - 1))


# --------------------------------------------------------------------------- backoff


def backoff_delay(failures: int, settings: PowerSettings, rand: float = 0.5) -> float:
    """Seconds without background calls after `failures` consecutive failures.

    rand in [0, 1) picks the jitter (0.5: none). Never above backoff_max.
    """
    if failures <= 0:
        return 0.0
    raw = settings.backoff_base * 2.0 ** min(failures - 1, 62)
    raw = min(settings.backoff_max, raw)
    jittered = raw * (1 + settings.backoff_jitter * (2 * rand - 1))
    return max(0.0, min(settings.backoff_max, jittered))


@dataclass(frozen=True)
class BmcHealth:
    """What the rack knows about one BMC's recent behaviour."""

    key: str
    bmc: str | None = None
    fingerprint: str = ""
    failures: int = 0
    failing: bool = False
    last_error: str | None = None
    last_error_kind: str | None = None
    #: No background call before this time (monotonic seconds).
    retry_at: float = 0.0
    last_success: float | None = None
    last_failure: float | None = None
    calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("fingerprint")
        return data


def refresh(health: BmcHealth, fingerprint: str) -> BmcHealth:
    """The same health, or a clean one when the BMC's parameters changed."""
    if health.fingerprint == fingerprint:
        return health
    return BmcHealth(key=health.key, bmc=health.bmc, fingerprint=fingerprint, calls=health.calls)


def record_success(health: BmcHealth, now: float) -> BmcHealth:
    return replace(
        health, failures=0, failing=False, last_error=None, last_error_kind=None, retry_at=0.0, last_success=now
    )


def record_failure(
    health: BmcHealth,
    now: float,
    *,
    message: str,
    kind: str,
    persistent: bool,
    settings: PowerSettings,
    rand: float = 0.5,
) -> BmcHealth:
    failures = health.failures + 1
    if persistent:
        failures = max(failures, settings.failing_after)
    return replace(
        health,
        failures=failures,
        failing=failures >= settings.failing_after,
        last_error=message,
        last_error_kind=kind,
        last_failure=now,
        retry_at=now + backoff_delay(failures, settings, rand),
    )


def background_allowed(health: BmcHealth, now: float) -> bool:
    """May a background call (a poll) go to this BMC now?"""
    return now >= health.retry_at


def max_attempts(health: BmcHealth, settings: PowerSettings) -> int:
    """Attempts an action gets: one while the BMC is failing, else 1 + retries."""
    return 1 if health.failing else settings.retries + 1


# --------------------------------------------------------------------------- poll spread


def _hash(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def spread_evenly(keys: Iterable[str], interval: float) -> dict[str, float]:
    """Phases in [0, interval) evenly spaced, in the order of a hash of each key."""
    ordered = sorted(set(keys), key=lambda k: (_hash(k), k))
    n = len(ordered)
    return {k: interval * i / n for i, k in enumerate(ordered)}


def assign_phases(current: Mapping[str, float], keys: Iterable[str], interval: float) -> dict[str, float]:
    """Poll phases for `keys`: kept for keys in `current`, new ones placed in the largest gaps.

    With nothing kept, the keys are spread evenly (:func:`spread_evenly`).
    """
    wanted = set(keys)
    kept = {k: v % interval for k, v in current.items() if k in wanted}
    new = sorted(wanted - set(kept), key=lambda k: (_hash(k), k))
    if not kept:
        return spread_evenly(new, interval)
    phases = sorted(kept.values())
    out = dict(kept)
    for key in new:
        # Largest gap on the circle, between consecutive phases (wrapping).
        best_start, best_len = phases[-1], phases[0] + interval - phases[-1]
        for a, b in itertools.pairwise(phases):
            if b - a > best_len:
                best_start, best_len = a, b - a
        phase = (best_start + best_len / 2) % interval
        bisect.insort(phases, phase)
        out[key] = phase
    return out


def next_occurrence(phase: float, interval: float, origin: float, after: float) -> float:
    """The first time >= `after` of the form origin + phase + k*interval (k integer)."""
    k = math.ceil((after - origin - phase) / interval)
    return origin + phase + k * interval


def max_in_window(times: Iterable[float], window: float) -> int:
    """The most events of `times` inside any window of that length (to measure spread)."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best
