"""The web UI: server-rendered pages under /MAAS/r/, sessions, live updates."""
