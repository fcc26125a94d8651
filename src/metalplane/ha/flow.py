"""A small exact min-cost flow solver (integer capacities and costs), stdlib only.

Used by :mod:`metalplane.ha.solver` to pick the assignment that moves the fewest
connections (or BMC owners) while respecting load caps.  The graphs it sees are
small: one node per *group* of interchangeable racks/items, not one per rack.

Algorithm: primal-dual.  Dijkstra on reduced costs (Johnson potentials) finds the
current shortest-path length; a Dinic blocking flow then pushes as much flow as
fits along all shortest paths at once.  The number of Dijkstra rounds is the
number of distinct path lengths, which for the balance graphs is a handful.
Costs must be non-negative on the initial graph.
"""

from __future__ import annotations

import heapq

_INF = float("inf")


class MinCostFlow:
    """Directed graph with capacities and costs; ``run`` computes a min-cost flow."""

    def __init__(self) -> None:
        self._to: list[int] = []
        self._cap: list[int] = []
        self._cost: list[int] = []
        self._orig: list[int] = []
        self._adj: list[list[int]] = []

    def node(self) -> int:
        self._adj.append([])
        return len(self._adj) - 1

    def edge(self, u: int, v: int, cap: int, cost: int = 0) -> int:
        """Add an edge ``u -> v``; returns its id (for :meth:`flow`)."""
        if cap < 0 or cost < 0:
            raise ValueError("capacities and costs must be non-negative")
        idx = len(self._to)
        self._to += (v, u)
        self._cap += (cap, 0)
        self._cost += (cost, -cost)
        self._orig += (cap, 0)
        self._adj[u].append(idx)
        self._adj[v].append(idx + 1)
        return idx

    def flow(self, edge: int) -> int:
        """Flow currently on edge ``edge`` (an id returned by :meth:`edge`)."""
        return self._orig[edge] - self._cap[edge]

    def run(self, s: int, t: int, need: int) -> int:
        """Push up to ``need`` units from ``s`` to ``t`` at minimum cost; returns units pushed."""
        n = len(self._adj)
        to, cap, cost, adj = self._to, self._cap, self._cost, self._adj
        pot: list[float] = [0] * n  # ints in practice; float only for the type of _INF
        flow = 0
        while flow < need:
            dist = [_INF] * n
            dist[s] = 0
            heap: list[tuple[float, int]] = [(0, s)]
            while heap:
                d, u = heapq.heappop(heap)
                if d > dist[u]:
                    continue
                pu = pot[u]
                for e in adj[u]:
                    if cap[e] > 0:
                        v = to[e]
                        nd = d + cost[e] + pu - pot[v]
                        if nd < dist[v]:
                            dist[v] = nd
                            heapq.heappush(heap, (nd, v))
            big = dist[t]
            if big == _INF:
                break
            for v in range(n):
                dv = dist[v]
                pot[v] += big if dv > big else dv
            pushed = self._blocking(s, t, pot, need - flow)
            if pushed == 0:  # pragma: no cover - cannot happen with consistent potentials
                break
            flow += pushed
        return flow

    def _blocking(self, s: int, t: int, pot: list[float], limit: int) -> int:
        """Dinic on the admissible subgraph (residual edges of reduced cost 0)."""
        to, cap, cost, adj = self._to, self._cap, self._cost, self._adj
        n = len(adj)
        total = 0
        while total < limit:
            level = [-1] * n
            level[s] = 0
            queue = [s]
            for u in queue:
                for e in adj[u]:
                    v = to[e]
                    if cap[e] > 0 and level[v] < 0 and cost[e] + pot[u] - pot[v] == 0:
                        level[v] = level[u] + 1
                        queue.append(v)
            if level[t] < 0:
                break
            it = [0] * n
            while total < limit:
                path: list[int] = []
                u = s
                while u != t:
                    edges = adj[u]
                    i = it[u]
                    while i < len(edges):
                        e = edges[i]
                        v = to[e]
                        if cap[e] > 0 and level[v] == level[u] + 1 and cost[e] + pot[u] - pot[v] == 0:
                            break
                        i += 1
                    it[u] = i
                    if i < len(edges):
                        path.append(edges[i])
                        u = to[edges[i]]
                    elif u == s:
                        break
                    else:
                        level[u] = -1  # dead end
                        e = path.pop()
                        u = to[e ^ 1]
                        it[u] += 1
                if u != t:
                    break
                push = limit - total
                for e in path:
                    if cap[e] < push:
                        push = cap[e]
                for e in path:
                    cap[e] -= push
                    cap[e ^ 1] += push
                total += push
        return total

    def reaches(self, t: int) -> list[bool]:
        """Which nodes can still reach ``t`` through residual edges (for min cuts)."""
        n = len(self._adj)
        seen = [False] * n
        seen[t] = True
        stack = [t]
        while stack:
            v = stack.pop()
            for e in self._adj[v]:
                # e is v -> u; its partner e ^ 1 is u -> v with residual cap[e ^ 1]
                u = self._to[e]
                if not seen[u] and self._cap[e ^ 1] > 0:
                    seen[u] = True
                    stack.append(u)
        return seen
