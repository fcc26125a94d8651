"""Files of the deployable Debian image: the first-boot agent (firstboot.sh)."""
