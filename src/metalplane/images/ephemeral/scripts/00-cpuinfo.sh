#!/bin/sh
# The processors, as the kernel sees them.
cat /proc/cpuinfo
