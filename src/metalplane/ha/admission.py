"""Admission control for racks joining a region worker: a bounded number at once.

A rack joining a worker costs a TLS handshake, the secret handshake and a
Register (database writes on the worker's bounded pool). When 1,000 racks
arrive at once, or the 250 racks of a killed worker move together, admitting
all of them queues their Registers behind each other past every timeout: the
links are dropped and redone, and the work feeds on itself. A worker therefore
admits at most `limit` joining racks at a time; the others are told to come
back after `retry_after` seconds (HTTP 503 with Retry-After on the WebSocket
upgrade, before any work of this side), which the rack honours with jitter.

Pure: the worker holds one `Admission`, asks `busy()` at each upgrade, and
each join that goes ahead holds a `Ticket` until it is registered or gone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Ticket:
    admission: Admission
    held: bool = True

    def release(self) -> None:
        """The join is over (registered, refused or gone); a second release does nothing."""
        if self.held:
            self.held = False
            self.admission.joining -= 1


@dataclass
class Admission:
    limit: int
    retry_after: int = 1  # seconds (HTTP's Retry-After is whole seconds)
    joining: int = 0
    admitted: int = 0
    refused: int = 0
    peak: int = 0

    def busy(self) -> bool:
        """Whether to turn a new join away now (counted as refused)."""
        if self.joining >= self.limit:
            self.refused += 1
            return True
        return False

    def enter(self) -> Ticket:
        """A join starts: it holds its ticket until it is registered or gone. Checked by
        `busy` when the upgrade arrives; joins that passed it together may overshoot a little."""
        self.joining += 1
        self.admitted += 1
        self.peak = max(self.peak, self.joining)
        return Ticket(self)
