#!/bin/sh
# Interfaces, addresses and routes.
ip link show
ip addr show
ip route show
