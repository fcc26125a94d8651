"""The ephemeral image's own files: /init, the udhcpc script, built-in commissioning scripts."""
