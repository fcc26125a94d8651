"""Many machines at once, for scale tests and benches: rows written in two SQL
statements (generate_series), not through enlistment, so 10,000 take a second.

Machine n: hostname `PREFIX-NNNNN`, one interface eth0 with MAC `fleet_mac(n)`,
manual power, status cycling through STATUSES, every ZONE_EVERY-th in zone
`zone-b` (created if missing), the rest in `default`. What a test expects is
computed from the same functions.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

STATUSES = (0, 4, 4, 4, 6, 2)  # New, Ready x3, Deployed, Failed commissioning
ZONE_EVERY = 10
OTHER_ZONE = "zone-b"


def fleet_hostname(prefix: str, n: int) -> str:
    return f"{prefix}-{n:05d}"


def fleet_mac(base: int, n: int) -> str:
    """52:54:BB:xx:xx:xx with BB = `base` (one fleet per base) and n in the last three octets."""
    return f"52:54:{base:02x}:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}"


def fleet_status(n: int) -> int:
    return STATUSES[n % len(STATUSES)]


def fleet_zone(n: int) -> str:
    return OTHER_ZONE if n % ZONE_EVERY == 0 else "default"


async def add_machines(conn: AsyncConnection, count: int, prefix: str = "node", mac_base: int = 0xF0) -> None:
    """Machines 0..count-1 (see the module's doc); the default zone must exist."""
    await conn.execute(
        text("INSERT INTO zones (name, description) VALUES (:z, 'second zone') ON CONFLICT (name) DO NOTHING"),
        {"z": OTHER_ZONE},
    )
    statuses = "ARRAY[" + ",".join(str(s) for s in STATUSES) + "]"
    await conn.execute(
        text(f"""
        INSERT INTO nodes (system_id, hostname, node_type, status, architecture, cpu_count, memory,
                           instance_power_parameters, zone_id, power_state)
        SELECT :prefix || '-' || lpad(to_hex(n), 5, '0'), :prefix || '-' || lpad(n::text, 5, '0'), 0,
               ({statuses})[n % {len(STATUSES)} + 1], 'amd64/generic', 4 + n % 4, 8192 * (1 + n % 4),
               '{{"__type__": "manual"}}'::jsonb,
               CASE WHEN n % {ZONE_EVERY} = 0 THEN (SELECT id FROM zones WHERE name = :other)
                    ELSE (SELECT id FROM zones WHERE name = 'default') END,
               CASE WHEN n % 3 = 0 THEN 'on' ELSE 'off' END
        FROM generate_series(0, :count - 1) AS n"""),
        {"prefix": prefix, "count": count, "other": OTHER_ZONE},
    )
    await conn.execute(
        text("""
        INSERT INTO interfaces (node_id, name, mac, claims_mac)
        SELECT id, 'eth0', '52:54:' || lpad(to_hex(CAST(:base AS integer)), 2, '0') || ':' ||
               lpad(to_hex(n >> 16 & 255), 2, '0') || ':' || lpad(to_hex(n >> 8 & 255), 2, '0') || ':' ||
               lpad(to_hex(n & 255), 2, '0'), true
        FROM (SELECT id, substring(hostname from length(:prefix) + 2)::int AS n FROM nodes
              WHERE node_type = 0 AND hostname LIKE :prefix || '-%') AS fleet"""),
        {"base": mac_base, "prefix": prefix},
    )
