"""`ha.admission.Admission`: FIFO admission with a cap, cancel, expiry; fake clock."""

from __future__ import annotations

import pytest

from metalplane.ha.admission import Admission


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def line(cap: int, hold_max: float, clock: Clock, *tickets: str) -> Admission:
    """An Admission with `tickets` entered in order (the first `cap` admitted)."""
    adm = Admission(cap, hold_max, clock=clock)
    for ticket in tickets:
        adm.try_enter(ticket)
    return adm


def test_admits_up_to_the_cap_then_queues_in_arrival_order():
    clock = Clock()
    adm = Admission(2, 30.0, clock=clock)
    assert adm.try_enter("a") and adm.try_enter("b")
    assert [adm.try_enter(t) for t in "cde"] == [False, False, False]
    assert adm.waiting == 3 and len(adm) == 2 and adm.max_queue == 3 and adm.held == 3
    assert adm.position("c") == 1 and adm.position("e") == 3 and adm.position("a") == 0
    clock.now += 2.0
    assert adm.leave("b") == "c"
    clock.now += 1.0
    assert adm.leave("a") == "d"
    assert adm.leave("c") == "e"
    assert adm.leave("d") is None and adm.leave("e") is None
    assert len(adm) == 0 and adm.admitted == 5
    assert sorted(adm.held_seconds) == [2.0, 3.0, 3.0]
    assert adm.percentile(0.5) == 3.0 and adm.percentile(0.0) == 2.0


def test_leave_is_idempotent_and_only_for_admitted_tickets():
    adm = Admission(1, 30.0, clock=Clock())
    assert adm.try_enter("a") and not adm.try_enter("b")
    assert adm.leave("b") is None  # a waiter leaving is not a release
    assert adm.leave("x") is None
    assert adm.leave("a") == "b"
    assert adm.leave("a") is None  # twice: nothing more
    assert len(adm) == 1 and adm.waiting == 0


def test_a_retransmitted_ticket_keeps_its_place():
    adm = Admission(1, 30.0, clock=Clock())
    assert adm.try_enter("a")
    assert adm.try_enter("a")  # already admitted
    assert not adm.try_enter("b") and not adm.try_enter("c") and not adm.try_enter("b")
    assert list(adm.queue) == ["b", "c"] and adm.held == 2


def test_a_newcomer_does_not_overtake_waiters():
    adm = Admission(2, 30.0, clock=Clock())
    assert adm.try_enter("a") and adm.try_enter("b")
    assert not adm.try_enter("c")
    adm.active.discard("a")  # (as if a slot freed without leave's hand-over)
    assert not adm.try_enter("d")  # "c" is older: "d" waits behind it
    assert list(adm.queue) == ["c", "d"]


def test_cancel_frees_the_place_in_the_queue():
    adm = Admission(1, 30.0, clock=Clock())
    adm.try_enter("a")
    adm.try_enter("b")
    adm.try_enter("c")
    assert adm.cancel("b") and not adm.cancel("b") and not adm.cancel("a")
    assert adm.cancelled == 1
    assert adm.leave("a") == "c"


def test_expired_waiters_are_removed_oldest_first():
    clock = Clock()
    adm = line(1, 5.0, clock, "a", "b")
    clock.now += 3.0
    adm.try_enter("c")
    clock.now += 2.5
    assert adm.expired() == ["b"]
    assert adm.expired() == []
    clock.now += 3.0
    assert adm.expired() == ["c"] and adm.expired_count == 2
    assert adm.leave("a") is None and len(adm) == 0


def test_drop_oldest_bounds_the_queue():
    adm = Admission(1, 5.0, clock=Clock())
    adm.try_enter("a")
    adm.try_enter("b")
    adm.try_enter("c")
    assert adm.drop_oldest() == "b" and adm.expired_count == 1
    assert adm.drop_oldest() == "c" and adm.drop_oldest() is None


def test_cap_zero_is_unlimited():
    adm = Admission(0, 5.0, clock=Clock())
    assert all(adm.try_enter(i) for i in range(10_000))
    assert adm.waiting == 0 and adm.held == 0 and len(adm) == 10_000
    assert adm.leave(3) is None and len(adm) == 9_999


def test_summary_and_bad_arguments():
    adm = Admission(1, 5.0, clock=Clock())
    adm.try_enter("a")
    assert adm.summary() == "1 active of 1, 0 waiting"
    adm.try_enter("b")
    adm.leave("a")
    assert "1 held since start (longest queue 1" in adm.summary()
    assert Admission(0, 1.0).summary().startswith("0 active of unlimited")
    with pytest.raises(ValueError):
        Admission(-1, 1.0)


async def test_boot_config_calls_to_the_region_are_bounded_and_fifo(tmp_path):
    """BootService's gate on GetBootConfig: at most `rpc` calls out, the rest wait in
    arrival order (a cancelled waiter gives its place up), every machine gets its answer."""
    import asyncio

    from metalplane.rack.boot.service import BootLimits, BootService
    from metalplane.rpc.messages import BootConfig

    out: list[str] = []
    order: list[str] = []
    peak = 0
    release = asyncio.Event()

    async def region(message, timeout):
        nonlocal peak
        out.append(message.mac)
        order.append(message.mac)
        peak = max(peak, len(out))
        await release.wait()
        await asyncio.sleep(0.01)
        out.remove(message.mac)
        return BootConfig("enlist")

    boot = BootService(tmp_path, "127.0.0.1", 0, 0, region, limits=BootLimits(rpc=2))
    macs = [f"52:54:00:00:00:{i:02x}" for i in range(6)]
    tasks = []
    for i, mac in enumerate(macs):
        tasks.append(asyncio.ensure_future(boot._ask((mac, f"10.0.0.{i + 1}"))))
        await asyncio.sleep(0.01)
    assert boot.rpc.waiting == 4 and len(out) == 2
    tasks[3].cancel()  # that call was abandoned (the coalescer shields calls others share)
    await asyncio.sleep(0.01)
    assert boot.rpc.waiting == 3 and boot.rpc.cancelled == 1
    release.set()
    answers = await asyncio.gather(*tasks[:3], *tasks[4:])
    assert all(a.purpose == "enlist" for a in answers)
    assert peak == 2 and order == [macs[i] for i in (0, 1, 2, 4, 5)]
    assert len(boot.rpc) == 0 and "boot config calls: 0 active of 2" in boot.status("tftp")[1]


def test_admission_metrics_families():
    from metalplane.rack.metrics import admission_families

    clock = Clock()
    gate = line(1, 5.0, clock, "a", "b")
    clock.now += 2.0
    gate.leave("a")
    gate.try_enter("c")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in admission_families({"http": gate})
        for s in family.samples
    }
    assert samples[("maas_rack_boot_admission_active", (("kind", "http"),))] == 1
    assert samples[("maas_rack_boot_admission_waiting", (("kind", "http"),))] == 1
    assert samples[("maas_rack_boot_admission_held_total", (("kind", "http"),))] == 2
    assert samples[("maas_rack_boot_admission_wait_seconds", (("kind", "http"), ("quantile", "0.99")))] == 2.0
