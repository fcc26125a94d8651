#!/bin/sh
# Memory, as the kernel sees it.
cat /proc/meminfo
