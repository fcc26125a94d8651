#!/bin/sh
# PCI devices: address, class, vendor:device, driver.
for dev in /sys/bus/pci/devices/*; do
    [ -e "$dev" ] || continue
    driver=""
    [ -e "$dev/driver" ] && driver=$(basename "$(readlink "$dev/driver")")
    echo "${dev##*/} class=$(cat "$dev/class") id=$(cat "$dev/vendor"):$(cat "$dev/device") driver=$driver"
done
