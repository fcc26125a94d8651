"""The names of the sub-commands `metalplane` runs itself (init, region, rack, ...).

A first argument among them goes to the admin parser (`cli.main`); any other is
a profile for the describe/-driven API client, so a profile may not take one of
these names (`cli.api_session`).
"""

from __future__ import annotations

ADMIN_COMMANDS = frozenset(
    {
        "init",
        "status",
        "stop",
        "apikey",
        "createadmin",
        "region",
        "rack",
        "db",
        "version",
        "images",
        "install-units",
        "logs",
    }
)
