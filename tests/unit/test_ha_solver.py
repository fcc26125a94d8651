"""The HA planners' shared core (metalplane.ha.solver): caps, moves, canonical order."""

from __future__ import annotations

from fractions import Fraction

import pytest

from metalplane.ha import solver
from metalplane.ha.connections import Endpoint
from metalplane.ha.solver import moves


def test_cap_definition():
    assert solver.bounded_cap(Fraction(250), 1.25) == 312
    assert solver.bounded_cap(Fraction(1000, 3), 1.25) == 416
    assert solver.bounded_cap(Fraction(1, 2), 1.25) == 1  # integer feasibility wins
    assert solver.bounded_cap(Fraction(5), 1.2) == 6  # 1.2 is read as 6/5, not the binary float
    assert solver.bounded_cap(Fraction(5), 1.0) == 5
    with pytest.raises(ValueError):
        solver.bounded_cap(Fraction(5), 0.9)


def test_moves_counts_added_pairs_only():
    a, b, c = Endpoint("x", 0), Endpoint("y", 0), Endpoint("z", 0)
    assert moves({"r": frozenset({a, b})}, {"r": frozenset({a, c})}) == 1
    assert moves({"r": frozenset({a, b})}, {}) == 0
    assert moves({}, {"r": frozenset({a, b})}) == 2
    assert moves({"i": "o1"}, {"i": "o2", "j": "o1"}) == 2
    assert moves({"i": "o1"}, {"i": "o1"}) == 0


def test_canonical_order_keeps_endpoints_in_their_own_order():
    """Ordered dataclasses (endpoints) sort as themselves, not by their text:
    worker 10 comes after worker 9."""
    eps = [Endpoint("r", 10), Endpoint("r", 9), Endpoint("q", 1)]
    assert solver.canonical(eps) == [Endpoint("q", 1), Endpoint("r", 9), Endpoint("r", 10)]
    assert solver.canonical([3, 1, 2, 1]) == [1, 2, 3]
    assert solver.canonical(["b", "a"]) == ["a", "b"]
