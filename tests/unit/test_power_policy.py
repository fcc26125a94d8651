"""Pure decisions of the power runner: retries, backoff, BMC health, poll spread."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from metalplane.rack.power import policy
from metalplane.rack.power.policy import BmcHealth, PowerSettings

S = PowerSettings(
    backoff_base=10, backoff_max=300, backoff_jitter=0.0, failing_after=3, retries=2, retry_delay=1, retry_delay_max=3
)


def test_settings_validation_and_mapping():
    with pytest.raises(ValueError, match="poll_interval"):
        PowerSettings(poll_interval=0)
    with pytest.raises(ValueError, match="max_concurrency"):
        PowerSettings(max_concurrency=0)
    with pytest.raises(ValueError, match="backoff_max"):
        PowerSettings(backoff_base=100, backoff_max=10)
    with pytest.raises(ValueError, match="unknown power settings: bogus"):
        PowerSettings.from_mapping({"bogus": 1})
    s = PowerSettings.from_mapping({"poll_interval": 60, "max_concurrency": 4})
    assert s.poll_interval == 60 and s.max_concurrency == 4
    assert PowerSettings.from_mapping(s.as_dict()) == s
    assert s.timeout_for("query") == s.query_timeout and s.timeout_for("on") == s.action_timeout


def test_should_retry():
    assert policy.should_retry("query", "timeout", True, 1, 3)
    assert policy.should_retry("query", "timeout", True, 2, 3)
    assert not policy.should_retry("query", "timeout", True, 3, 3)  # bounded
    assert not policy.should_retry("on", "auth", False, 1, 3)  # wrong password: never
    assert not policy.should_retry("cycle", "timeout", True, 1, 3)  # may have cycled already
    assert policy.should_retry("cycle", "unreachable", True, 1, 3)


def test_retry_delay_doubles_and_caps():
    assert [policy.retry_delay(a, S) for a in (1, 2, 3, 4)] == [1, 2, 3, 3]


def test_backoff_schedule():
    assert policy.backoff_delay(0, S) == 0
    assert [policy.backoff_delay(n, S) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]
    assert policy.backoff_delay(10_000, S) == 300  # no overflow
    jittery = PowerSettings(backoff_base=100, backoff_max=1000, backoff_jitter=0.1)
    assert policy.backoff_delay(1, jittery, rand=0.0) == pytest.approx(90)
    assert policy.backoff_delay(1, jittery, rand=0.999999) == pytest.approx(110, abs=0.01)
    assert policy.backoff_delay(20, jittery, rand=0.999999) == 1000  # capped after jitter


@given(st.integers(0, 200), st.floats(0, 0.999999))
def test_backoff_is_bounded_and_monotonic_without_jitter(n, rand):
    s = PowerSettings(backoff_base=5, backoff_max=600, backoff_jitter=0.2)
    d = policy.backoff_delay(n, s, rand)
    assert 0 <= d <= 600
    assert policy.backoff_delay(n, S) <= policy.backoff_delay(n + 1, S)


def test_health_failures_mark_failing_and_success_clears():
    h = BmcHealth("ipmi:10.0.0.5:623:admin", "10.0.0.5", "fp")
    h = policy.record_failure(h, 100.0, message="timeout 1", kind="timeout", persistent=False, settings=S)
    assert (h.failures, h.failing, h.retry_at) == (1, False, 110.0)
    assert not policy.background_allowed(h, 105.0) and policy.background_allowed(h, 110.0)
    assert policy.max_attempts(h, S) == 3
    h = policy.record_failure(h, 110.0, message="timeout 2", kind="timeout", persistent=False, settings=S)
    h = policy.record_failure(h, 130.0, message="timeout 3", kind="timeout", persistent=False, settings=S)
    assert h.failing and h.failures == 3 and h.last_error == "timeout 3" and h.retry_at == 170.0
    assert policy.max_attempts(h, S) == 1  # no retries while failing
    h = policy.record_success(h, 200.0)
    assert (h.failures, h.failing, h.last_error, h.retry_at, h.last_success) == (0, False, None, 0.0, 200.0)


def test_auth_failure_is_failing_at_once():
    h = BmcHealth("k")
    h = policy.record_failure(
        h, 0.0, message="authentication failed at BMC x", kind="auth", persistent=True, settings=S
    )
    assert h.failing and h.failures == 3 and h.retry_at == 40.0


def test_changed_parameters_reset_health():
    h = policy.record_failure(
        BmcHealth("k", fingerprint="a"), 0.0, message="m", kind="auth", persistent=True, settings=S
    )
    assert policy.refresh(h, "a") is h
    fresh = policy.refresh(h, "b")
    assert not fresh.failing and fresh.failures == 0 and fresh.fingerprint == "b"


def test_spread_evenly():
    phases = policy.spread_evenly([f"m{i}" for i in range(10)], 100.0)
    assert sorted(phases.values()) == [pytest.approx(10.0 * i) for i in range(10)]
    # hash order, not list order: neighbours are not adjacent in time
    assert [phases[f"m{i}"] for i in range(10)] != sorted(phases[f"m{i}"] for i in range(10))


def test_assign_phases_keeps_existing_and_fills_gaps():
    first = policy.assign_phases({}, ["a", "b", "c", "d"], 100.0)
    assert sorted(first.values()) == [0, 25, 50, 75]
    second = policy.assign_phases(first, ["a", "b", "c", "d", "e"], 100.0)
    assert all(second[k] == first[k] for k in "abcd")
    assert second["e"] % 25 == pytest.approx(12.5)
    third = policy.assign_phases(second, ["a", "e"], 100.0)
    assert third == {"a": first["a"], "e": second["e"]}


@hsettings(max_examples=60)
@given(st.integers(1, 60), st.integers(0, 60))
def test_assign_phases_gap_bound(n_first, n_more):
    interval = 60.0
    keys = [f"m{i}" for i in range(n_first + n_more)]
    phases = policy.assign_phases(policy.assign_phases({}, keys[:n_first], interval), keys, interval)
    assert set(phases) == set(keys)
    values = sorted(phases.values())
    assert all(0 <= v < interval for v in values)
    gaps = [b - a for a, b in itertools.pairwise(values)] + [values[0] + interval - values[-1]]
    # No gap is more than twice the even spacing of the initial set, and none collapses to zero.
    assert max(gaps) <= interval / n_first + 1e-9
    assert min(gaps) > 0


def test_next_occurrence():
    assert policy.next_occurrence(5.0, 10.0, 100.0, 100.0) == 105.0
    assert policy.next_occurrence(5.0, 10.0, 100.0, 105.0) == 105.0
    assert policy.next_occurrence(5.0, 10.0, 100.0, 105.1) == 115.0
    assert policy.next_occurrence(5.0, 10.0, 100.0, 50.0) == 55.0


def test_max_in_window():
    assert policy.max_in_window([], 1.0) == 0
    assert policy.max_in_window([0, 0.1, 0.2, 5, 5.05], 0.5) == 3
    assert policy.max_in_window([0, 1, 2, 3], 1.0) == 1
