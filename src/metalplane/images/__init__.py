"""Boot images: the ephemeral image builder and the simplestreams layout (shared with the region)."""
