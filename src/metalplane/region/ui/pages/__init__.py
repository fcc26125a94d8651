"""One module per UI page (MAAS's names), each calling the region's services."""
