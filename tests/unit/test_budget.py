from metalplane.region.budget import RegionNeed, compute_budget
from metalplane.region.supervisor import API_SEND_BUFFER, bind_api_socket, restart_delay, worker_count_warnings


def test_budget_fits():
    budget = compute_budget([RegionNeed("a", 37), RegionNeed("b", 37)], max_connections=100, reserved=3)
    assert budget.ok
    assert budget.needed == 74 and budget.allowed == 97
    assert "budget OK" in budget.message()


def test_budget_exceeded_says_what_to_change():
    budget = compute_budget([RegionNeed("a", 37), RegionNeed("b", 37), RegionNeed("c", 37)], 100, 3)
    assert not budget.ok
    message = budget.message()
    assert "need up to 111 connections" in message
    assert "allows only 97" in message
    assert "max_connections to at least 114" in message
    assert "num_workers" in message


def test_num_workers_warnings_follow_the_seeds():
    assert worker_count_warnings(2, 2) == []
    assert len(worker_count_warnings(4, 2)) == 1
    assert len(worker_count_warnings(9, 16)) == 1
    assert len(worker_count_warnings(12, 4)) == 2


def test_restart_is_immediate_then_backs_off():
    assert restart_delay(1) == 0.0
    delays = [restart_delay(n) for n in range(2, 10)]
    assert delays == sorted(delays)
    assert max(delays) <= 4.0


def test_api_connections_can_queue_a_whole_response_in_the_kernel():
    """A worker killed just after writing a response still delivers it (see API_SEND_BUFFER)."""
    import socket
    from pathlib import Path

    wmem_max = int(Path("/proc/sys/net/core/wmem_max").read_text())
    with bind_api_socket("127.0.0.1", 0) as listener, socket.create_connection(listener.getsockname()):
        accepted, _ = listener.accept()
        with accepted:
            # Linux doubles the value it is given (for its bookkeeping), capped at wmem_max.
            assert accepted.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * min(API_SEND_BUFFER, wmem_max)
