"""The rack's boot service: TFTP loaders and per-machine configs, HTTP iPXE scripts, images."""
