"""LISTEN, kept up through database failovers: the one way region processes hear NOTIFYs.

    await listen_forever(config, "metalplane-listen-0", [CHANNEL], on_note, on_connected)

A dedicated connection (autocommit) LISTENs on `channels`; `on_note(channel,
payload)` runs for each notification, in order. When the connection is lost
it comes back with backoff (0.1 s doubling to 2 s, from the first attempt
after a good connection), and `on_connected()` runs after each (re)connection,
since notifications sent meanwhile are lost: the caller catches up there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import psycopg

from metalplane.config.region import RegionConfig
from metalplane.region.db.engine import conninfo, remember_primary

log = logging.getLogger(__name__)

RETRY_FIRST = 0.1
RETRY_MAX = 2.0


async def listen_forever(
    config: RegionConfig,
    application_name: str,
    channels: Sequence[str],
    on_note: Callable[[str, str], Awaitable[None]],
    on_connected: Callable[[], None] | None = None,
) -> None:
    delay = RETRY_FIRST
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                conninfo(config, application_name), autocommit=True
            ) as conn:
                remember_primary(config, conn)
                for channel in channels:
                    await conn.execute(f"LISTEN {channel}")
                delay = RETRY_FIRST
                if on_connected is not None:
                    on_connected()
                async for note in conn.notifies():
                    await on_note(note.channel, note.payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s lost its database connection (retry in %.1fs): %s", application_name, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
