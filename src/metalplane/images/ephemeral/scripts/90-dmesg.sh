#!/bin/sh
# The kernel log of this boot.
dmesg
