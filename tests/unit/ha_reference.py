"""Independent references for the HA planners' tests: written here, not taken from ha/.

A plain one-unit-at-a-time min-cost flow (successive shortest paths over
individual racks/items) and the cap formula, against which the planners'
aggregated solver is checked.
"""

from __future__ import annotations

import math
from fractions import Fraction

THRESHOLDS = [1.0, 1.1, 1.25, 1.5, 2.0]


def ref_min_cost(n_nodes: int, edges: list[tuple[int, int, int, int]], s: int, t: int, need: int) -> int | None:
    """Successive shortest paths, one unit at a time, Bellman-Ford (SPFA). None if infeasible."""
    to, cap, cost, adj = [], [], [], [[] for _ in range(n_nodes)]
    for u, v, c, w in edges:
        adj[u].append(len(to))
        to.append(v), cap.append(c), cost.append(w)
        adj[v].append(len(to))
        to.append(u), cap.append(0), cost.append(-w)
    total = 0
    for _ in range(need):
        dist = [math.inf] * n_nodes
        back = [-1] * n_nodes
        dist[s] = 0
        queue, inq = [s], [False] * n_nodes
        while queue:
            u = queue.pop(0)
            inq[u] = False
            for e in adj[u]:
                if cap[e] > 0 and dist[u] + cost[e] < dist[to[e]]:
                    dist[to[e]] = dist[u] + cost[e]
                    back[to[e]] = e
                    if not inq[to[e]]:
                        inq[to[e]] = True
                        queue.append(to[e])
        if dist[t] == math.inf:
            return None
        v = t
        while v != s:
            e = back[v]
            cap[e] -= 1
            cap[e ^ 1] += 1
            v = to[e ^ 1]
        total += dist[t]
    return total


def cap(share: Fraction, threshold: float) -> int:
    """``max(ceil(share), floor(threshold * share))`` with the threshold read as written."""
    return max(math.ceil(share), math.floor(Fraction(str(threshold)) * share))
