"""The rack's descriptor budget and the throttle that reports limits in action."""

from __future__ import annotations

import pytest

from metalplane.rack.limits import FDS_PER_CONNECTION, FDS_PER_TRANSFER, MAX_TRANSFERS, Throttle, budget


@pytest.mark.parametrize("nofile", [64, 256, 1024, 4096, 20000, 65536, 1 << 20])
def test_tftp_and_http_at_their_limits_leave_the_reserve_free(nofile):
    b = budget(nofile)
    used = b.tftp.total * FDS_PER_TRANSFER + b.http.total * FDS_PER_CONNECTION
    if nofile >= 256:  # below that, a working minimum wins over the split
        assert used + b.reserve <= nofile
    assert 2 <= b.tftp.per_client <= 256 and b.tftp.per_client <= b.tftp.total
    assert 2 <= b.http.per_client <= 256 and b.http.per_client <= b.http.total


def test_the_budget_at_usual_limits():
    assert budget(1024).tftp == (230, 28)
    assert (budget(20000).tftp.total, budget(20000).tftp.per_client, budget(20000).reserve) == (4096, 256, 1024)
    assert budget(1 << 20).tftp.total == MAX_TRANSFERS  # memory, not descriptors, bounds it there


def test_throttle_reports_at_most_once_per_interval_with_counts():
    now = [0.0]
    throttle = Throttle(10, clock=lambda: now[0])
    assert throttle.hit() == 1  # the first event is said at once
    assert [throttle.hit() for _ in range(99)] == [0] * 99
    now[0] = 10.0
    assert throttle.hit() == 100  # the 99 held back and this one
    assert throttle.total == 101


def test_limits_given_explicitly_override_the_budgets():
    share = budget(1024).tftp
    assert share.override(None, None) == share
    assert share.override(5, None) == (5, share.per_client)
    assert share.override(None, 0) == (share.total, 0)
