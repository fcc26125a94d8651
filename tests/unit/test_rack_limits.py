"""The rack's descriptor budget and the throttle that reports limits in action."""

from __future__ import annotations

import pytest

from metalplane.rack.limits import FDS_PER_CONNECTION, FDS_PER_TRANSFER, MAX_TRANSFERS, Throttle, budget


@pytest.mark.parametrize("nofile", [64, 256, 1024, 4096, 20000, 65536, 1 << 20])
def test_tftp_and_http_at_their_limits_leave_the_reserve_free(nofile):
    b = budget(nofile)
    used = b.tftp_transfers * FDS_PER_TRANSFER + b.http_connections * FDS_PER_CONNECTION
    if nofile >= 256:  # below that, a working minimum wins over the split
        assert used + b.reserve <= nofile
    assert 2 <= b.tftp_per_client <= 256 and b.tftp_per_client <= b.tftp_transfers
    assert 2 <= b.http_per_client <= 256 and b.http_per_client <= b.http_connections


def test_the_budget_at_usual_limits():
    assert (budget(1024).tftp_transfers, budget(1024).tftp_per_client) == (230, 28)
    assert (budget(20000).tftp_transfers, budget(20000).tftp_per_client, budget(20000).reserve) == (4096, 256, 1024)
    assert budget(1 << 20).tftp_transfers == MAX_TRANSFERS  # memory, not descriptors, bounds it there


def test_throttle_reports_at_most_once_per_interval_with_counts():
    now = [0.0]
    throttle = Throttle(10, clock=lambda: now[0])
    assert throttle.hit() == 1  # the first event is said at once
    assert [throttle.hit() for _ in range(99)] == [0] * 99
    now[0] = 10.0
    assert throttle.hit() == 100  # the 99 held back and this one
    assert throttle.total == 101
