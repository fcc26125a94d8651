#!/bin/sh
# metalplane ephemeral image: /init of the initramfs (POSIX sh, run by busybox).
#
# It enlists or commissions the machine it boots on, reports to the region's
# metadata API, then powers off (or reboots). docs/boot.md, section "Ephemeral
# image <-> metadata API contract", is the same contract, for the endpoint side.
#
# KERNEL COMMAND LINE (from the boot config the rack hands out):
#   metadata_url=URL   base URL of the metadata API, e.g.
#                      http://10.0.0.2:5240/MAAS/metadata/ (a trailing "/" is added)
#   enrol=CREDENTIAL   (commission, deploy) a one-use enrolment credential, bound to the
#                      address that fetched the boot config: exchanged once for the token
#   token=TOKEN        this machine's metadata token itself (debugging; the region's boot
#                      configs never carry it)
#   mp_mode=MODE       enlist | commission | deploy (install.sh: partition the disk, write
#                      the root image, install GRUB; then mp_after=reboot boots the disk)
#                      | erase (erase.sh: wipe every disk) | rescue (erase.sh: report, stay up)
#                      | poweroff (power off at once: no network, no metadata_url needed,
#                      mp_after= ignored; what a Ready, Allocated, Broken... machine boots)
#   mp_after=ACTION    poweroff (default) | reboot | shell (debugging: a shell on the console)
#   mp_boot_method=M   how it booted, reported as is (e.g. pxe, ipxe, uefi-http);
#                      default: "uefi" if /sys/firmware/efi exists, else "pxe"
#   BOOTIF=01-aa-bb-cc-dd-ee-ff   (pxelinux/iPXE) the boot NIC: tried first for DHCP
#   mp_script_timeout=SECONDS     per commissioning script (default 600)
#
# REQUESTS (busybox wget, HTTP/1.1; URLs relative to metadata_url; every request
# carries "User-Agent: Wget" and, once the token is known, "Authorization: Token TOKEN").
# Any 2xx answer is success (busybox wget takes 200-299 with a body; a 204 must
# have no body). A request that fails without a 4xx answer is retried twice (after 2 s,
# then 5 s); a 4xx answer is final.
#
#   enlist mode:
#     POST enlist                          Content-Type: application/json
#       {"architecture": "amd64/generic", "boot_method": "pxe", "boot_mac": "52:54:00:12:34:56",
#        "mac_addresses": ["52:54:00:12:34:56", ...],
#        "interfaces": [{"name": "eth0", "mac": "52:54:00:12:34:56", "driver": "virtio_net"}, ...],
#        "hostname": "<DHCP host name or empty>", "ip": "<leased address>",
#        "image": {"version": "<image version>", "kernel": "<uname -r>"}}
#
#   commission mode (enrol= or token= required):
#     POST enrol                           (with enrol=) "Authorization: Enrol CREDENTIAL", empty
#                                          body; the answer (text/plain) is the token. Once,
#                                          from the address the boot config was served to.
#     POST commission/facts               Content-Type: application/json
#       {"architecture": "amd64/generic", "boot_method": "pxe", "boot_mac": "...",
#        "firmware": "bios" | "uefi", "kernel": "<uname -r>",
#        "cpu_count": 4, "cpu_model": "<first 'model name' of /proc/cpuinfo>",
#        "memory_mib": 7953,                                  (MemTotal of /proc/meminfo)
#        "memory_physical_mib": 8192,                         (online memory blocks; 0 if unknown)
#        "disks": [{"name": "vda", "size_bytes": 17179869184, "model": "", "serial": "",
#                   "rotational": false, "removable": false,
#                   "partitions": [{"name": "vda1", "number": 1, "size_bytes": 536870912}, ...]},
#                  ...],                                       (/sys/block; no
#                   loop, ram, zram, fd, dm-, md, nbd, sr devices)
#        "interfaces": [{"name": "eth0", "mac": "...", "driver": "virtio_net",
#                        "link_up": true, "speed_mbps": -1}, ...],     (/sys/class/net)
#        "image": {"version": "...", "kernel": "..."}}
#     GET  commission/scripts              optional: text/plain, one script name per line,
#                                          the region's own scripts; any error = none
#     GET  commission/scripts/NAME         the script (sh), for each name listed
#     POST commission/scripts/NAME?exit_status=N&runtime=SECONDS
#                                          Content-Type: text/plain; charset=utf-8
#                                          body: the script's stdout+stderr (at most 4 MiB);
#                                          sent for the image's built-in scripts
#                                          (00-cpuinfo, 10-meminfo, 20-block-devices,
#                                          30-network, 40-pci-devices, 90-dmesg) and then
#                                          the region's; exit_status 143 = killed after
#                                          mp_script_timeout seconds
#     POST commission/done                 Content-Type: application/json
#       {"result": "ok" | "failed", "failed_scripts": ["NAME", ...], "message": "..."}
#                                          failed: the facts were refused or a script
#                                          exited non-zero
#
#   deploy mode (enrol= or token= required; enrolled as commissioning is): see install.sh,
#   sourced from $MP_ETC/install.sh. erase and rescue modes: see erase.sh.
#
# Everything it does is also printed on the console as "metalplane: ..." lines.
# With no network (no NIC, or no DHCP answer on any NIC) it says so, and why,
# and powers off as told.

MP_PROC=${MP_PROC:-/proc}
MP_SYS=${MP_SYS:-/sys}
MP_CMDLINE=${MP_CMDLINE:-$MP_PROC/cmdline}
MP_ETC=${MP_ETC:-/etc/metalplane}
MP_RUN=${MP_RUN:-/run/metalplane}
MP_MODULES=${MP_MODULES:-/lib/modules}

say() {
    echo "metalplane: $*"
}

# The value of NAME=... on the kernel command line (the last one wins); $2 if absent.
cmdline_arg() {
    _value=$2
    set -f
    for _word in $(cat "$MP_CMDLINE" 2>/dev/null); do
        case "$_word" in
            "$1="*) _value=${_word#*=} ;;
        esac
    done
    set +f
    printf '%s' "$_value"
}

# A JSON string: quotes and backslashes escaped, control characters dropped.
json_str() {
    printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

json_bool() {
    if [ "$1" = 1 ]; then printf true; else printf false; fi
}

read_attr() {
    if [ -r "$1" ]; then
        head -n 1 "$1" 2>/dev/null | tr -d '\000-\037'
    fi
}

machine_arch() {
    case "$(uname -m)" in
        x86_64) echo amd64 ;;
        aarch64) echo arm64 ;;
        i?86) echo i386 ;;
        ppc64le) echo ppc64el ;;
        s390x) echo s390x ;;
        *) uname -m ;;
    esac
}

firmware() {
    if [ -d "$MP_SYS/firmware/efi" ]; then echo uefi; else echo bios; fi
}

# Interfaces other than lo, boot NIC (BOOTIF) first.
nic_names() {
    _boot=$(boot_mac_from_cmdline)
    _first=""
    _rest=""
    for _path in "$MP_SYS"/class/net/*; do
        [ -e "$_path" ] || continue
        _n=${_path##*/}
        [ "$_n" = lo ] && continue
        if [ -n "$_boot" ] && [ "$(read_attr "$_path/address")" = "$_boot" ]; then
            _first=$_n
        else
            _rest="$_rest $_n"
        fi
    done
    echo $_first $_rest
}

boot_mac_from_cmdline() {
    _bootif=$(cmdline_arg BOOTIF "")
    [ -n "$_bootif" ] || return 0
    # 01-aa-bb-cc-dd-ee-ff (ARP type 1 first)
    printf '%s' "${_bootif#01-}" | tr 'A-F-' 'a-f:'
}

nic_driver() {
    if [ -e "$MP_SYS/class/net/$1/device/driver" ]; then
        _d=$(readlink "$MP_SYS/class/net/$1/device/driver")
        echo "${_d##*/}"
    fi
}

interfaces_json() {
    _sep=""
    printf '['
    for _n in $(nic_names); do
        _p="$MP_SYS/class/net/$_n"
        _carrier=$(read_attr "$_p/carrier")
        _speed=$(read_attr "$_p/speed")
        case "$_speed" in ''|*[!0-9-]*) _speed=-1 ;; esac
        printf '%s{"name": %s, "mac": %s, "driver": %s, "link_up": %s, "speed_mbps": %s}' "$_sep" \
            "$(json_str "$_n")" "$(json_str "$(read_attr "$_p/address")")" "$(json_str "$(nic_driver "$_n")")" \
            "$(json_bool "${_carrier:-0}")" "$_speed"
        _sep=", "
    done
    printf ']'
}

macs_json() {
    _sep=""
    printf '['
    for _n in $(nic_names); do
        printf '%s%s' "$_sep" "$(json_str "$(read_attr "$MP_SYS/class/net/$_n/address")")"
        _sep=", "
    done
    printf ']'
}

disks_json() {
    _sep=""
    printf '['
    for _path in "$MP_SYS"/block/*; do
        [ -e "$_path" ] || continue
        _d=${_path##*/}
        case "$_d" in loop*|ram*|zram*|fd*|dm-*|md*|nbd*|sr*) continue ;; esac
        _sectors=$(read_attr "$_path/size")
        case "$_sectors" in ''|*[!0-9]*) _sectors=0 ;; esac
        _model=$(read_attr "$_path/device/model")
        _serial=$(read_attr "$_path/serial")
        [ -n "$_serial" ] || _serial=$(read_attr "$_path/device/serial")
        printf '%s{"name": %s, "size_bytes": %s, "model": %s, "serial": %s, "rotational": %s, "removable": %s, ' \
            "$_sep" "$(json_str "$_d")" "$((_sectors * 512))" "$(json_str "$(echo $_model)")" \
            "$(json_str "$(echo $_serial)")" "$(json_bool "$(read_attr "$_path/queue/rotational")")" \
            "$(json_bool "$(read_attr "$_path/removable")")"
        printf '"partitions": %s}' "$(partitions_json "$_path")"
        _sep=", "
    done
    printf ']'
}

# A disk's partitions (/sys/block/DISK/DISKn/partition holds the number).
partitions_json() {
    _psep=""
    printf '['
    for _ppath in "$1"/*/partition; do
        [ -e "$_ppath" ] || continue
        _pdir=${_ppath%/partition}
        _pnum=$(read_attr "$_ppath")
        _psectors=$(read_attr "$_pdir/size")
        case "$_pnum$_psectors" in ''|*[!0-9]*) continue ;; esac
        printf '%s{"name": %s, "number": %s, "size_bytes": %s}' "$_psep" "$(json_str "${_pdir##*/}")" "$_pnum" \
            "$((_psectors * 512))"
        _psep=", "
    done
    printf ']'
}

cpu_count() {
    _c=$(grep -c '^processor' "$MP_PROC/cpuinfo" 2>/dev/null)
    echo "${_c:-0}"
}

cpu_model() {
    grep -m 1 '^model name' "$MP_PROC/cpuinfo" 2>/dev/null | sed -e 's/^[^:]*: *//'
}

memory_mib() {
    _kib=$(awk '/^MemTotal:/ { print $2 }' "$MP_PROC/meminfo" 2>/dev/null)
    echo $(( ${_kib:-0} / 1024 ))
}

# Installed memory, as the sum of the kernel's online memory blocks (MemTotal
# leaves out what firmware and kernel reserve); 0 when /sys does not say.
memory_physical_mib() {
    _block=$(cat "$MP_SYS/devices/system/memory/block_size_bytes" 2>/dev/null)
    [ -n "$_block" ] || { echo 0; return; }
    _n=0
    for _f in "$MP_SYS"/devices/system/memory/memory*/online; do
        [ "$(cat "$_f" 2>/dev/null)" = 1 ] && _n=$((_n + 1))
    done
    echo $(( _n * 0x$_block / 1048576 ))
}

image_json() {
    printf '{"version": %s, "kernel": %s}' "$(json_str "$(read_attr "$MP_ETC/version")")" \
        "$(json_str "$(uname -r)")"
}

facts_json() {
    printf '{"architecture": %s, "boot_method": %s, "boot_mac": %s, "firmware": %s, "kernel": %s, ' \
        "$(json_str "$(machine_arch)/generic")" "$(json_str "$BOOT_METHOD")" "$(json_str "$BOOT_MAC")" \
        "$(json_str "$(firmware)")" "$(json_str "$(uname -r)")"
    printf '"cpu_count": %s, "cpu_model": %s, "memory_mib": %s, "memory_physical_mib": %s, ' \
        "$(cpu_count)" "$(json_str "$(cpu_model)")" "$(memory_mib)" "$(memory_physical_mib)"
    printf '"disks": %s, "interfaces": %s, "image": %s}\n' "$(disks_json)" "$(interfaces_json)" "$(image_json)"
}

enlist_json() {
    printf '{"architecture": %s, "boot_method": %s, "boot_mac": %s, "mac_addresses": %s, "interfaces": %s, ' \
        "$(json_str "$(machine_arch)/generic")" "$(json_str "$BOOT_METHOD")" "$(json_str "$BOOT_MAC")" \
        "$(macs_json)" "$(interfaces_json)"
    printf '"hostname": %s, "ip": %s, "image": %s}\n' "$(json_str "${NET_HOSTNAME:-}")" \
        "$(json_str "${NET_IP:-}")" "$(image_json)"
}

# -- HTTP ----------------------------------------------------------------------------------

# request METHOD PATH [CONTENT_TYPE BODY_FILE]: the answer goes to $MP_RUN/response.
request() {
    _method=$1
    _url="$METADATA_URL$2"
    _tries=0
    for _pause in 2 5 0; do
        _tries=$((_tries + 1))
        # (busybox 1.35's own "wget -T" crashes: the timeout applet bounds it instead.)
        set -- timeout 60 wget -q -O "$MP_RUN/response"
        [ -n "$AUTH" ] && set -- "$@" --header "Authorization: $AUTH"
        if [ "$_method" = POST ]; then
            set -- "$@" --header "Content-Type: $_ctype" --post-file "$_body"
        fi
        if "$@" "$_url" 2>"$MP_RUN/wget.err"; then
            say "$_method $_url: ok"
            return 0
        fi
        say "$_method $_url failed (try $_tries): $(tr '\n' ' ' < "$MP_RUN/wget.err")"
        # A 4xx answer will not change on a retry.
        grep -q 'returned error: HTTP/1.. 4' "$MP_RUN/wget.err" && return 1
        [ "$_pause" = 0 ] || sleep "$_pause"
    done
    return 1
}

post() {
    _ctype=$2
    _body=$3
    request POST "$1"
}

get() {
    request GET "$1"
}

# -- networking ----------------------------------------------------------------------------

net_up() {
    ip link set lo up 2>/dev/null
    _nics=$(nic_names)
    if [ -z "$_nics" ]; then
        say "NO NETWORK: this machine has no network interface the image has a driver for"
        say "  (modules loaded: $(lsmod 2>/dev/null | awk 'NR > 1 { printf "%s ", $1 }'))"
        return 1
    fi
    for _n in $_nics; do
        ip link set "$_n" up 2>/dev/null
        say "DHCP on $_n ($(read_attr "$MP_SYS/class/net/$_n/address"))..."
        rm -f "$MP_RUN/net.env"
        if udhcpc -i "$_n" -n -q -t 4 -T 2 -s "$MP_ETC/udhcpc.sh" -V metalplane-ephemeral \
                >"$MP_RUN/udhcpc.log" 2>&1 && [ -r "$MP_RUN/net.env" ]; then
            . "$MP_RUN/net.env"
            BOOT_MAC=$(read_attr "$MP_SYS/class/net/$_n/address")
            say "network up on $_n: $NET_IP/$NET_MASK router ${NET_ROUTER:-none} dns ${NET_DNS:-none}"
            return 0
        fi
        say "no DHCP answer on $_n"
        ip link set "$_n" down 2>/dev/null
    done
    say "NO NETWORK: no DHCP server answered on any interface (tried:$(printf ' %s' $_nics))"
    return 1
}

# -- modes -----------------------------------------------------------------------------------

do_enlist() {
    enlist_json > "$MP_RUN/enlist.json"
    say "enlisting: $(cat "$MP_RUN/enlist.json")"
    post enlist application/json "$MP_RUN/enlist.json"
}

run_script() {
    # run_script NAME FILE: run it, then POST its output and exit status.
    _name=$1
    _start=$(cut -d. -f1 "$MP_PROC/uptime")
    timeout "$SCRIPT_TIMEOUT" sh "$2" > "$MP_RUN/script.out" 2>&1 < /dev/null
    _rc=$?
    _runtime=$(( $(cut -d. -f1 "$MP_PROC/uptime") - _start ))
    head -c 4194304 "$MP_RUN/script.out" > "$MP_RUN/script.post"
    say "script $_name exited $_rc after ${_runtime}s"
    [ "$_rc" = 0 ] || FAILED="$FAILED $_name"
    post "commission/scripts/$_name?exit_status=$_rc&runtime=$_runtime" "text/plain; charset=utf-8" \
        "$MP_RUN/script.post" || FAILED="$FAILED $_name"
}

# The boot config carries a one-use enrolment credential, not the token: exchange
# it for the token (from this address: the one the boot config was served to).
enrol() {
    : > "$MP_RUN/empty"
    AUTH="Enrol $ENROL"
    if ! post enrol text/plain "$MP_RUN/empty"; then
        AUTH=""
        say "the region refused the enrolment credential: cannot go on"
        return 1
    fi
    TOKEN=$(tr -d '\r\n' < "$MP_RUN/response")
    AUTH="Token $TOKEN"
    say "enrolled: got this machine's metadata token"
}

do_commission() {
    FAILED=""
    if [ -z "$TOKEN" ] && [ -n "$ENROL" ]; then
        enrol || return 1
    fi
    if [ -z "$TOKEN" ]; then
        say "commissioning needs enrol= (or token=) on the kernel command line"
        return 1
    fi
    facts_json > "$MP_RUN/facts.json"
    say "facts: $(cat "$MP_RUN/facts.json")"
    _result=ok
    _message=""
    if ! post commission/facts application/json "$MP_RUN/facts.json"; then
        _result=failed
        _message="the metadata API did not take the hardware facts"
    fi
    for _script in "$MP_ETC"/scripts/*; do
        [ -f "$_script" ] || continue
        run_script "${_script##*/}" "$_script"
    done
    if get commission/scripts 2>/dev/null; then
        mkdir -p "$MP_RUN/region-scripts"
        for _name in $(cat "$MP_RUN/response"); do
            case "$_name" in */*|.*|*[!A-Za-z0-9._+-]*) say "skipping script name '$_name'"; continue ;; esac
            if get "commission/scripts/$_name"; then
                cp "$MP_RUN/response" "$MP_RUN/region-scripts/$_name"
                run_script "$_name" "$MP_RUN/region-scripts/$_name"
            else
                FAILED="$FAILED $_name"
            fi
        done
    else
        say "no scripts from the region (commission/scripts not served): built-in scripts only"
    fi
    if [ -n "$FAILED" ]; then
        _result=failed
        _message="${_message:+$_message; }scripts failed:$FAILED"
    fi
    _list=""
    for _name in $FAILED; do
        _list="${_list:+$_list, }$(json_str "$_name")"
    done
    printf '{"result": %s, "failed_scripts": [%s], "message": %s}\n' "$(json_str "$_result")" "$_list" \
        "$(json_str "$_message")" > "$MP_RUN/done.json"
    post commission/done application/json "$MP_RUN/done.json" || _result=failed
    say "commissioning $_result${_message:+: $_message}"
    [ "$_result" = ok ]
}

# -- boot ------------------------------------------------------------------------------------

load_modules() {
    [ -r "$MP_MODULES/load-order" ] || return 0
    _loaded=""
    while read -r _ko; do
        [ -n "$_ko" ] || continue
        if insmod "$MP_MODULES/$_ko" 2>"$MP_RUN/insmod.err"; then
            _loaded="$_loaded ${_ko##*/}"
        elif ! grep -q 'exists' "$MP_RUN/insmod.err"; then
            say "insmod $_ko: $(cat "$MP_RUN/insmod.err")"
        fi
    done < "$MP_MODULES/load-order"
    say "modules:${_loaded% }"
    # Give the drivers a moment to create their devices.
    _i=0
    while [ $_i -lt 20 ] && [ -z "$(nic_names)" ]; do
        sleep 0.1
        _i=$((_i + 1))
    done
}

finish() {
    # finish STATUS: report, then do what mp_after= says.
    if [ "$1" = 0 ]; then say "finished: success"; else say "finished: FAILED"; fi
    case "$AFTER" in
        reboot) say "rebooting"; sync; reboot -f ;;
        shell) say "mp_after=shell: starting a shell"; exec setsid cttyhack sh ;;
        *) say "powering off"; sync; poweroff -f ;;
    esac
    sleep 5
    exit "$1"
}

main() {
    export PATH=/bin:/sbin:/usr/bin:/usr/sbin
    mount -t proc proc /proc 2>/dev/null
    mount -t sysfs sysfs /sys 2>/dev/null
    mount -t devtmpfs devtmpfs /dev 2>/dev/null
    mkdir -p /run /tmp "$MP_RUN"
    [ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
    echo 3 > /proc/sys/kernel/printk 2>/dev/null  # only kernel errors on the console from here on
    say "ephemeral image $(read_attr "$MP_ETC/version") (kernel $(uname -r)) starting"
    run_orders
}

# The kernel command line's orders, then the mode's work; ends in finish (never returns).
run_orders() {
    MODE=$(cmdline_arg mp_mode "")
    METADATA_URL=$(cmdline_arg metadata_url "")
    TOKEN=$(cmdline_arg token "")
    ENROL=$(cmdline_arg enrol "")
    AUTH=""
    [ -n "$TOKEN" ] && AUTH="Token $TOKEN"
    AFTER=$(cmdline_arg mp_after poweroff)
    SCRIPT_TIMEOUT=$(cmdline_arg mp_script_timeout 600)
    BOOT_METHOD=$(cmdline_arg mp_boot_method "")
    [ -n "$BOOT_METHOD" ] || { [ "$(firmware)" = uefi ] && BOOT_METHOD=uefi || BOOT_METHOD=pxe; }
    BOOT_MAC=$(boot_mac_from_cmdline)
    case "$METADATA_URL" in ''|*/) ;; *) METADATA_URL="$METADATA_URL/" ;; esac
    say "mode=${MODE:-none} metadata_url=${METADATA_URL:-none} token=$([ -n "$TOKEN" ] && echo set || echo none) enrol=$([ -n "$ENROL" ] && echo set || echo none) after=$AFTER"
    case "$MODE" in
        poweroff)
            # The region has nothing for this machine to do (Ready, Allocated, Broken...): off at
            # once, whatever mp_after= says; no modules, no network, nothing reported.
            say "mp_mode=poweroff: this machine is to stay off"
            AFTER=poweroff
            finish 0 ;;
        enlist|commission|deploy|erase|rescue) ;;
        *) say "no mp_mode=enlist|commission|deploy|erase|rescue|poweroff on the kernel command line: nothing to do"; finish 1 ;;
    esac
    load_modules
    if [ -z "$METADATA_URL" ]; then
        say "no metadata_url= on the kernel command line: cannot report"
        finish 1
    fi
    if ! net_up; then
        say "cannot reach $METADATA_URL without a network: giving up"
        finish 1
    fi
    case "$MODE" in
        enlist) do_enlist ;;
        commission) do_commission ;;
        deploy) . "$MP_ETC/install.sh" && do_deploy ;;
        erase) . "$MP_ETC/erase.sh" && do_erase ;;
        rescue) . "$MP_ETC/erase.sh" && do_rescue ;;
    esac
    finish $?
}

if [ "${MP_SOURCE_ONLY:-0}" != 1 ]; then
    main "$@"
fi
