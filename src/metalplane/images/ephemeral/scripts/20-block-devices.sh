#!/bin/sh
# Every block device: name, size in bytes, model, serial, rotational, removable.
for path in /sys/block/*; do
    [ -e "$path" ] || continue
    name=${path##*/}
    sectors=$(cat "$path/size" 2>/dev/null || echo 0)
    model=$(cat "$path/device/model" 2>/dev/null)
    serial=$(cat "$path/serial" 2>/dev/null || cat "$path/device/serial" 2>/dev/null)
    echo "$name size=$((sectors * 512)) model='$(echo $model)' serial='$(echo $serial)'" \
         "rotational=$(cat "$path/queue/rotational" 2>/dev/null) removable=$(cat "$path/removable" 2>/dev/null)"
done
