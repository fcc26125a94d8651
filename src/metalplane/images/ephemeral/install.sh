# metalplane installer: the ephemeral image's deploy mode (POSIX sh, busybox).
# Sourced by /init (init.sh) for mp_mode=deploy, which needs token= and metadata_url=
# on the kernel command line; it uses init.sh's say, request, get, post, json_str,
# firmware and read_attr. docs/boot.md ("Deploying") is the same contract, for the
# region's side.
#
# REQUESTS (relative to metadata_url, with "Authorization: Token TOKEN"; retried as
# in init.sh; any 2xx is success):
#   GET  deploy/config           application/json: what to install where (below)
#   GET  deploy/user-data        optional: the user_data bytes (404 or empty: none)
#   POST deploy/events           application/json, at the start and end of each step:
#                                {"step": "disk", "status": "started" | "ok" | "failed",
#                                 "message": "...", "runtime": 0.42}
#                                (best effort: the install goes on if one is lost)
#   POST deploy/installation?exit_status=N&runtime=SECONDS
#                                text/plain: the installer's whole output (the last 4 MiB)
#   POST deploy/done             application/json:
#                                {"result": "ok" | "failed", "step": "<the step that failed>",
#                                 "message": "<why>"}
#
# deploy/config (only "image" is required):
#   {"system_id": "abc123", "hostname": "node1", "domain": "maas",
#    "disk": {"name": "vda", "serial": "MPDISK1"},      the boot disk: serial first, then the
#                                                       name; absent: the first disk
#    "layout": "flat",                                  MAAS's flat layout (the only one)
#    "image": {"urls": ["http://RACK:5248/images/by-sha256/SHA", ...],   tried in order
#              "sha256": "SHA", "size": 164064257, "filetype": "root-tgz"},
#    "interfaces": [{"mac": "52:54:00:..", "name": "eth0", "mode": "static" | "dhcp" | "link_up",
#                    "address": "10.0.0.5/24", "gateway": "10.0.0.1", "mtu": 1500}],
#    "dns": {"servers": ["10.0.0.2"], "search": ["maas"]},
#    "ssh_keys": ["ssh-ed25519 AAAA... user@host"],
#    "kernel_params": "extra kernel command line for the installed system"}
#
# STEPS (the step names of the events): config, disk, partition, format, image,
# configure, bootloader. The layout (GPT, sizes aligned to 4 MiB, 1 MiB left free at
# the end, as MAAS): BIOS: 1 bios_grub (1 MiB at 1 MiB), 2 root ext4 "root" from 4 MiB;
# UEFI: 1 EFI system partition FAT32 "efi" (512 MiB at 4 MiB, /boot/efi), 2 root.
# The root tarball is fetched, checked and unpacked in one pass (wget | tee to
# sha256sum | tar -xz); a wrong sha256 fails the step (and the next URL is tried on
# a fresh file system). GRUB is installed from the image itself (chroot with /dev,
# /proc and /sys bound). The installed system gets /etc/fstab, hostname, systemd-networkd
# files matched by MAC, resolv.conf, the SSH keys of its default user, user_data and
# the first-boot agent's /etc/metalplane/agent.conf (metadata_url, token, system_id).

MP_TARGET=${MP_TARGET:-/target}
MP_DEV=${MP_DEV:-/dev}
LAYOUT_ALIGN_MIB=4
LAYOUT_END_GAP_MIB=1
EFI_MIB=512
MIN_ROOT_MIB=1024
GPT_BIOS_GRUB=21686148-6449-6E6F-744E-656564454649
GPT_ESP=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
GPT_LINUX=0FC63DAF-8483-4772-8E79-3D69D8477DE4

# -- JSON in ---------------------------------------------------------------------------------

# json_flatten < JSON: one "PATH<TAB>VALUE" line per scalar, PATH like interfaces.0.mac.
# Strings are unescaped (\n and \r stay escaped, so every value is one line); null is left out.
json_flatten() {
    awk '
    function fail(msg) { printf "invalid JSON: %s at byte %d\n", msg, i > "/dev/stderr"; exit 1 }
    function skip(   c) {
        while (i <= n) { c = substr(s, i, 1); if (c != " " && c != "\t" && c != "\n" && c != "\r") break; i++ }
    }
    function hexval(h,   v, k) {
        v = 0
        for (k = 1; k <= 4; k++) v = v * 16 + index("0123456789abcdef", tolower(substr(h, k, 1))) - 1
        return v
    }
    function utf8(c) {
        if (c < 128) return sprintf("%c", c)
        if (c < 2048) return sprintf("%c%c", 192 + int(c / 64), 128 + c % 64)
        return sprintf("%c%c%c", 224 + int(c / 4096), 128 + int(c / 64) % 64, 128 + c % 64)
    }
    function str(   out, c) {
        i++
        out = ""
        while (i <= n) {
            c = substr(s, i, 1)
            if (c == "\"") { i++; return out }
            if (c == "\\") {
                c = substr(s, i + 1, 1)
                i += 2
                if (c == "n") out = out "\\n"
                else if (c == "r") out = out "\\r"
                else if (c == "t") out = out "\t"
                else if (c == "u") { out = out utf8(hexval(substr(s, i, 4))); i += 4 }
                else if (c != "b" && c != "f") out = out c
                continue
            }
            out = out c
            i++
        }
        fail("unterminated string")
    }
    function value(path,   c, k, idx) {
        skip()
        c = substr(s, i, 1)
        if (c == "{") {
            i++
            skip()
            if (substr(s, i, 1) == "}") { i++; return }
            while (1) {
                skip()
                if (substr(s, i, 1) != "\"") fail("expected a key")
                k = str()
                skip()
                if (substr(s, i, 1) != ":") fail("expected :")
                i++
                value(path == "" ? k : path "." k)
                skip()
                c = substr(s, i, 1)
                i++
                if (c == "}") return
                if (c != ",") fail("expected , or }")
            }
        }
        if (c == "[") {
            i++
            skip()
            idx = 0
            if (substr(s, i, 1) == "]") { i++; return }
            while (1) {
                value(path == "" ? idx : path "." idx)
                idx++
                skip()
                c = substr(s, i, 1)
                i++
                if (c == "]") return
                if (c != ",") fail("expected , or ]")
            }
        }
        if (c == "\"") { k = str(); print path "\t" k; return }
        k = ""
        while (i <= n && index("+-.0123456789eEtrufalsn", substr(s, i, 1))) { k = k substr(s, i, 1); i++ }
        if (k == "") fail("unexpected character")
        if (k != "null") print path "\t" k
    }
    { s = s $0 "\n" }
    END { n = length(s); i = 1; value(""); skip(); if (i <= n) fail("trailing data") }
    '
}

# cfg KEY: the value at KEY of the flattened config (empty if absent).
cfg() {
    awk -F '\t' -v k="$1" '$1 == k { print substr($0, length(k) + 2); exit }' "$MP_RUN/config.flat"
}

# cfg_list KEY: the scalar items of the list at KEY, one per line, in order.
cfg_list() {
    awk -F '\t' -v p="$1." 'index($1, p) == 1 && substr($1, length(p) + 1) ~ /^[0-9]+$/ {
        print substr($0, length($1) + 2) }' "$MP_RUN/config.flat"
}

# cfg_indices KEY: the indices of the list of objects at KEY (0 1 2 ...).
cfg_indices() {
    awk -F '\t' -v p="$1." 'index($1, p) == 1 { rest = substr($1, length(p) + 1); sub(/\..*/, "", rest)
        if (rest ~ /^[0-9]+$/ && !(rest in seen)) { seen[rest] = 1; print rest } }' "$MP_RUN/config.flat"
}

# -- pure decisions --------------------------------------------------------------------------

# flat_layout FIRMWARE DISK_BYTES: the sfdisk script of MAAS's flat layout (fails if too small).
flat_layout() {
    _mib=$(( $2 / 1048576 ))
    if [ "$1" = uefi ]; then _root_start=$((4 + EFI_MIB)); else _root_start=4; fi
    _root=$(( (_mib - LAYOUT_END_GAP_MIB - _root_start) / LAYOUT_ALIGN_MIB * LAYOUT_ALIGN_MIB ))
    if [ "$_root" -lt "$MIN_ROOT_MIB" ]; then
        echo "the disk is too small: ${_mib} MiB leaves ${_root} MiB for the root partition (at least ${MIN_ROOT_MIB} MiB)" >&2
        return 1
    fi
    echo "label: gpt"
    if [ "$1" = uefi ]; then
        echo "start=4MiB, size=${EFI_MIB}MiB, type=$GPT_ESP, name=\"efi\""
    else
        echo "start=1MiB, size=1MiB, type=$GPT_BIOS_GRUB, name=\"bios_grub\""
    fi
    echo "start=${_root_start}MiB, size=${_root}MiB, type=$GPT_LINUX, name=\"root\""
}

# partition_name DISK N: vda 2 -> vda2, nvme0n1 2 -> nvme0n1p2.
partition_name() {
    case "$1" in
        *[0-9]) echo "${1}p$2" ;;
        *) echo "$1$2" ;;
    esac
}

# Installable disks of /sys/block, as commissioning reports them (no loop, ram, cd...).
install_disks() {
    for _path in "$MP_SYS"/block/*; do
        [ -e "$_path" ] || continue
        _d=${_path##*/}
        case "$_d" in loop*|ram*|zram*|fd*|dm-*|md*|nbd*|sr*) continue ;; esac
        [ "$(read_attr "$_path/removable")" = 1 ] && continue
        echo "$_d"
    done
}

disk_serial() {
    _s=$(read_attr "$MP_SYS/block/$1/serial")
    [ -n "$_s" ] || _s=$(read_attr "$MP_SYS/block/$1/device/serial")
    echo $_s
}

# pick_disk SERIAL NAME: the disk with that serial, else that name; with neither, the
# first disk. Nothing when a disk was asked for and is not here (never another one).
pick_disk() {
    _disks=$(install_disks)
    if [ -n "$1" ]; then
        for _d in $_disks; do
            [ "$(disk_serial "$_d")" = "$1" ] && { echo "$_d"; return 0; }
        done
    fi
    if [ -n "$2" ]; then
        for _d in $_disks; do
            [ "$_d" = "$2" ] && { echo "$_d"; return 0; }
        done
    fi
    [ -z "$1$2" ] || return 1
    set -- $_disks
    [ -n "${1:-}" ] && echo "$1"
}

# The systemd-networkd file for interface index $1 of the config.
network_file() {
    _p="interfaces.$1"
    _mode=$(cfg "$_p.mode")
    echo "# written by the metalplane installer"
    echo "[Match]"
    echo "MACAddress=$(cfg "$_p.mac")"
    _mtu=$(cfg "$_p.mtu")
    if [ -n "$_mtu" ]; then printf '\n[Link]\nMTUBytes=%s\n' "$_mtu"; fi
    [ "$_mode" = link_up ] && printf '\n[Link]\nRequiredForOnline=no\n'
    printf '\n[Network]\n'
    case "$_mode" in
        dhcp) echo "DHCP=ipv4" ;;
        link_up) echo "LinkLocalAddressing=no" ;;
        *)
            echo "Address=$(cfg "$_p.address")"
            _gw=$(cfg "$_p.gateway")
            [ -n "$_gw" ] && echo "Gateway=$_gw"
            ;;
    esac
    for _dns in $(cfg_list dns.servers); do echo "DNS=$_dns"; done
    _search=$(cfg_list dns.search | tr '\n' ' ')
    [ -n "${_search% }" ] && echo "Domains=${_search% }"
    return 0
}

resolv_conf() {
    echo "# written by the metalplane installer"
    _search=$(cfg_list dns.search | tr '\n' ' ')
    [ -n "${_search% }" ] && echo "search ${_search% }"
    for _dns in $(cfg_list dns.servers); do echo "nameserver $_dns"; done
    return 0
}

fstab() {
    echo "# written by the metalplane installer: MAAS's flat layout"
    echo "UUID=$1 / ext4 errors=remount-ro 0 1"
    [ -n "${2:-}" ] && echo "UUID=$2 /boot/efi vfat umask=0077 0 1"
    return 0
}

centis() {
    awk '{ printf "%d", $1 * 100 }' "$MP_PROC/uptime"
}

# seconds_since CENTIS: elapsed seconds, two decimals.
seconds_since() {
    _now=$(centis)
    _d=$((_now - $1))
    printf '%d.%02d' $((_d / 100)) $((_d % 100))
}

new_uuid() {
    cat "$MP_PROC/sys/kernel/random/uuid"
}

# -- the steps -------------------------------------------------------------------------------

# note MESSAGE: into the install log and onto the console.
note() {
    echo "$*"
    echo "metalplane: $*" >&3
}

fail() {
    FAIL_MESSAGE=$*
    note "FAILED: $*"
    return 1
}

# run COMMAND...: echo it, run it, say how long it took; its exit status.
run() {
    echo "+ $*"
    _run_t=$(centis)
    "$@"
    _run_rc=$?
    echo "  (exit $_run_rc after $(seconds_since "$_run_t")s)"
    return $_run_rc
}

step_config() {
    get deploy/config || { fail "GET deploy/config failed: $(tr '\n' ' ' < "$MP_RUN/wget.err")"; return 1; }
    cp "$MP_RUN/response" "$MP_RUN/config.json"
    json_flatten < "$MP_RUN/config.json" > "$MP_RUN/config.flat" 2>"$MP_RUN/json.err" \
        || { fail "deploy/config: $(cat "$MP_RUN/json.err")"; return 1; }
    _layout=$(cfg layout)
    case "${_layout:-flat}" in flat) ;; *) fail "storage layout '$_layout' is not supported (flat only)"; return 1 ;; esac
    _type=$(cfg image.filetype)
    case "${_type:-root-tgz}" in root-tgz) ;; *) fail "image file type '$_type' is not supported (root-tgz only)"; return 1 ;; esac
    IMAGE_URLS=$(cfg_list image.urls)
    [ -n "$IMAGE_URLS" ] || IMAGE_URLS=$(cfg image.url)
    IMAGE_SHA256=$(cfg image.sha256)
    IMAGE_SIZE=$(cfg image.size)
    [ -n "$IMAGE_URLS" ] || { fail "deploy/config has no image.urls"; return 1; }
    case "$IMAGE_SHA256" in
        [0-9a-f]*) [ ${#IMAGE_SHA256} = 64 ] || { fail "image.sha256 is not 64 hex digits"; return 1; } ;;
        *) fail "deploy/config has no image.sha256"; return 1 ;;
    esac
    if get deploy/user-data 2>/dev/null && [ -s "$MP_RUN/response" ]; then
        cp "$MP_RUN/response" "$MP_RUN/user_data"
        note "user_data: $(wc -c < "$MP_RUN/user_data") bytes"
    else
        rm -f "$MP_RUN/user_data"
        note "no user_data"
    fi
    note "image $(cfg image.name) sha256 $IMAGE_SHA256 (${IMAGE_SIZE:-?} bytes) from $(echo $IMAGE_URLS)"
}

step_disk() {
    _serial=$(cfg disk.serial)
    _name=$(cfg disk.name)
    DISK=$(pick_disk "$_serial" "$_name")
    if [ -z "$DISK" ]; then
        _all=$(install_disks | tr '\n' ' ')
        if [ -z "$_all" ]; then
            fail "no disk to install to: /sys/block has no disk (loop, ram, cd-rom and removable devices do not count)"
        else
            fail "the boot disk (serial '${_serial}', name '${_name}') is not here; disks: ${_all% }"
        fi
        return 1
    fi
    DISK_BYTES=$(( $(read_attr "$MP_SYS/block/$DISK/size") * 512 ))
    FIRMWARE=$(firmware)
    note "installing to $DISK ($DISK_BYTES bytes, serial '$(disk_serial "$DISK")'), firmware $FIRMWARE"
}

wait_for_device() {
    _i=0
    while [ ! -b "$1" ] && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
    [ -b "$1" ]
}

step_partition() {
    flat_layout "$FIRMWARE" "$DISK_BYTES" > "$MP_RUN/layout.sfdisk" 2>"$MP_RUN/layout.err" \
        || { fail "$(cat "$MP_RUN/layout.err")"; return 1; }
    cat "$MP_RUN/layout.sfdisk"
    _dev="$MP_DEV/$DISK"
    # Old signatures at both ends (partition tables, a RAID or LVM label) go first.
    run dd if=/dev/zero of="$_dev" bs=1M count=1 conv=fsync 2>&1 || { fail "cannot write to $_dev"; return 1; }
    _mib=$((DISK_BYTES / 1048576))
    run dd if=/dev/zero of="$_dev" bs=1M seek=$((_mib - 1)) count=1 conv=fsync 2>&1
    run sfdisk --wipe always --wipe-partitions always "$_dev" < "$MP_RUN/layout.sfdisk" 2>&1 \
        || { fail "sfdisk could not partition $_dev"; return 1; }
    if [ "$FIRMWARE" = uefi ]; then EFI_DEV="$MP_DEV/$(partition_name "$DISK" 1)"; else EFI_DEV=""; fi
    ROOT_DEV="$MP_DEV/$(partition_name "$DISK" 2)"
    wait_for_device "$ROOT_DEV" || { fail "$ROOT_DEV did not appear after partitioning"; return 1; }
}

make_root_fs() {
    run mkfs.ext4 -F -q -L root -U "$ROOT_UUID" "$ROOT_DEV" 2>&1 || { fail "mkfs.ext4 $ROOT_DEV failed"; return 1; }
}

step_format() {
    ROOT_UUID=$(new_uuid)
    make_root_fs || return 1
    EFI_UUID=""
    if [ -n "$EFI_DEV" ]; then
        _serial=$(new_uuid | tr -d '-' | cut -c1-8 | tr 'a-f' 'A-F')
        run mkfs.fat -F 32 -n EFI -i "$_serial" "$EFI_DEV" 2>&1 || { fail "mkfs.fat $EFI_DEV failed"; return 1; }
        EFI_UUID="$(echo "$_serial" | cut -c1-4)-$(echo "$_serial" | cut -c5-8)"
    fi
    # No udev here: the links it would make, so that update-grub names the root by UUID.
    mkdir -p "$MP_DEV/disk/by-uuid"
    ln -sf "../../${ROOT_DEV##*/}" "$MP_DEV/disk/by-uuid/$ROOT_UUID"
    [ -n "$EFI_DEV" ] && ln -sf "../../${EFI_DEV##*/}" "$MP_DEV/disk/by-uuid/$EFI_UUID"
    note "root $ROOT_DEV ext4 UUID $ROOT_UUID${EFI_DEV:+; EFI $EFI_DEV vfat $EFI_UUID}"
}

# fetch_extract URL: stream URL through sha256sum into tar on the mounted root.
fetch_extract() {
    rm -f "$MP_RUN/image.fifo" "$MP_RUN/image.sha256"
    mkfifo "$MP_RUN/image.fifo"
    sha256sum < "$MP_RUN/image.fifo" > "$MP_RUN/image.sha256" &
    _sum_pid=$!
    _start=$(centis)
    (
        set -o pipefail
        wget -q -O - "$1" | tee "$MP_RUN/image.fifo" | tar -xzf - -C "$MP_TARGET"
    ) 2>&1
    _rc=$?
    wait $_sum_pid
    _took=$(seconds_since "$_start")
    _got=$(cut -d' ' -f1 "$MP_RUN/image.sha256")
    if [ "$_rc" != 0 ]; then
        note "fetching or unpacking $1 failed (exit $_rc) after ${_took}s"
        return 1
    fi
    if [ "$_got" != "$IMAGE_SHA256" ]; then
        note "$1: sha256 $_got, expected $IMAGE_SHA256"
        SHA_MISMATCH=1
        return 1
    fi
    _rate=""
    if [ -n "$IMAGE_SIZE" ]; then
        _rate=$(awk -v b="$IMAGE_SIZE" -v t="$_took" 'BEGIN { if (t > 0) printf " (%.1f MB/s)", b / t / 1000000 }')
    fi
    note "image written: ${IMAGE_SIZE:-?} bytes fetched, checked and unpacked in ${_took}s$_rate"
    IMAGE_SECONDS=$_took
}

step_image() {
    _first=1
    SHA_MISMATCH=0
    for _url in $IMAGE_URLS; do
        if [ $_first = 0 ]; then
            umount "$MP_TARGET" 2>/dev/null
            note "trying the next URL on a fresh file system"
            make_root_fs || return 1
        fi
        _first=0
        mkdir -p "$MP_TARGET"
        # No barriers and no data journalling while unpacking: a crash here fails the
        # install anyway, and everything is synced before GRUB goes in.
        run mount -t ext4 -o noatime,barrier=0,data=writeback "$ROOT_DEV" "$MP_TARGET" 2>&1 \
            || { fail "cannot mount $ROOT_DEV"; return 1; }
        note "fetching $_url"
        fetch_extract "$_url" && return 0
    done
    if [ "$SHA_MISMATCH" = 1 ]; then
        fail "the image does not match its sha256 $IMAGE_SHA256"
    else
        fail "could not fetch and unpack the image from $(echo $IMAGE_URLS)"
    fi
}

# write_file PATH MODE: stdin into the target's PATH.
write_file() {
    mkdir -p "$MP_TARGET$(dirname "$1")"
    cat > "$MP_TARGET$1" && chmod "$2" "$MP_TARGET$1"
}

image_conf() {
    sed -n "s/^$1=//p" "$MP_TARGET/etc/metalplane/image.conf" 2>/dev/null | head -n 1
}

step_configure() {
    _host=$(cfg hostname)
    _domain=$(cfg domain)
    fstab "$ROOT_UUID" "$EFI_UUID" | write_file /etc/fstab 0644 || { fail "cannot write /etc/fstab"; return 1; }
    if [ -n "$_host" ]; then
        echo "$_host" | write_file /etc/hostname 0644
        printf '127.0.1.1\t%s%s\n' "${_domain:+$_host.$_domain }" "$_host" >> "$MP_TARGET/etc/hosts"
    fi
    rm -f "$MP_TARGET"/etc/systemd/network/50-metalplane-*.network
    for _i in $(cfg_indices interfaces); do
        network_file "$_i" | write_file "/etc/systemd/network/50-metalplane-$_i.network" 0644
        note "network: $(cfg "interfaces.$_i.mac") $(cfg "interfaces.$_i.mode") $(cfg "interfaces.$_i.address")"
    done
    rm -f "$MP_TARGET/etc/resolv.conf"
    resolv_conf | write_file /etc/resolv.conf 0644
    _user=$(image_conf default_user)
    _keys=$(cfg_list ssh_keys)
    if [ -n "$_user" ]; then
        _entry=$(awk -F: -v u="$_user" '$1 == u { print $3 ":" $4 ":" $6 }' "$MP_TARGET/etc/passwd")
        [ -n "$_entry" ] || { fail "the image's default user $_user is not in its /etc/passwd"; return 1; }
        _home=${_entry#*:*:}
        mkdir -p "$MP_TARGET$_home/.ssh"
        cfg_list ssh_keys | write_file "$_home/.ssh/authorized_keys" 0600
        chmod 0700 "$MP_TARGET$_home/.ssh"
        chown -R "${_entry%:*}" "$MP_TARGET$_home/.ssh"
        note "ssh keys for $_user: $(cfg_list ssh_keys | grep -c .)"
    elif [ -n "$_keys" ]; then
        fail "the image names no default user (etc/metalplane/image.conf) for the SSH keys"
        return 1
    fi
    mkdir -p "$MP_TARGET/var/lib/metalplane"
    chmod 0700 "$MP_TARGET/var/lib/metalplane"
    if [ -f "$MP_RUN/user_data" ]; then
        write_file /var/lib/metalplane/user_data 0600 < "$MP_RUN/user_data"
    fi
    printf 'metadata_url=%s\ntoken=%s\nsystem_id=%s\n' "$METADATA_URL" "$TOKEN" "$(cfg system_id)" \
        | write_file /etc/metalplane/agent.conf 0600
    _params=$(cfg kernel_params | tr -d '"\\$`')
    if [ -n "$_params" ]; then
        printf 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX %s"\n' "$_params" \
            | write_file /etc/default/grub.d/90-metalplane-deploy.cfg 0644
    fi
    note "configured ${_host:-(no hostname)}: fstab, network, resolv.conf, keys, agent"
}

in_target() {
    run chroot "$MP_TARGET" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@" 2>&1
}

bind_mounts() {
    for _d in dev proc sys; do
        mkdir -p "$MP_TARGET/$_d"
        mount -o bind "/$_d" "$MP_TARGET/$_d" || return 1
    done
}

unmount_target() {
    for _m in boot/efi sys proc dev ""; do
        umount "$MP_TARGET/$_m" 2>/dev/null
    done
    sync
}

step_bootloader() {
    bind_mounts || { fail "cannot bind /dev, /proc and /sys into $MP_TARGET"; return 1; }
    if [ "$FIRMWARE" = uefi ]; then
        mkdir -p "$MP_TARGET/boot/efi"
        mount -t vfat "$EFI_DEV" "$MP_TARGET/boot/efi" || { fail "cannot mount $EFI_DEV"; return 1; }
        in_target grub-install --target=x86_64-efi --efi-directory=/boot/efi --bootloader-id=debian \
            --removable --no-nvram || { fail "grub-install (UEFI) failed"; return 1; }
    else
        in_target grub-install --target=i386-pc "$MP_DEV/$DISK" || { fail "grub-install $MP_DEV/$DISK failed"; return 1; }
        echo "grub-pc grub-pc/install_devices multiselect $MP_DEV/$DISK" | in_target debconf-set-selections
    fi
    in_target update-grub || { fail "update-grub failed"; return 1; }
    note "GRUB installed ($FIRMWARE) on $DISK"
}

# event STEP STATUS MESSAGE [RUNTIME]
event() {
    printf '{"step": %s, "status": %s, "message": %s, "runtime": %s}\n' "$(json_str "$1")" "$(json_str "$2")" \
        "$(json_str "$3")" "${4:-0}" > "$MP_RUN/event.json"
    post deploy/events application/json "$MP_RUN/event.json" >/dev/null 2>&1 || say "could not report the event"
}

# step NAME: run step_NAME with its output in the install log; events before and after.
step() {
    event "$1" started ""
    _t=$(centis)
    FAIL_MESSAGE=""
    say "step $1"
    echo "== step $1" >> "$INSTALL_LOG"
    "step_$1" 3>&1 >> "$INSTALL_LOG" 2>&1
    _rc=$?
    _took=$(seconds_since "$_t")
    echo "== step $1: $([ $_rc = 0 ] && echo ok || echo failed) after ${_took}s" >> "$INSTALL_LOG"
    if [ $_rc != 0 ]; then
        FAILED_STEP=$1
        [ -n "$FAIL_MESSAGE" ] || FAIL_MESSAGE="step $1 failed (exit $_rc)"
        event "$1" failed "$FAIL_MESSAGE" "$_took"
        return 1
    fi
    event "$1" ok "" "$_took"
}

do_deploy() {
    INSTALL_LOG="$MP_RUN/install.log"
    : > "$INSTALL_LOG"
    FAILED_STEP=""
    FAIL_MESSAGE=""
    _started=$(centis)
    if [ -z "$TOKEN" ] && [ -n "$ENROL" ]; then
        enrol || return 1
    fi
    if [ -z "$TOKEN" ]; then
        say "deploying needs enrol= (or token=) on the kernel command line"
        return 1
    fi
    _ok=1
    for _s in config disk partition format image configure bootloader; do
        step "$_s" || { _ok=0; break; }
    done
    unmount_target
    _runtime=$(seconds_since "$_started")
    if [ $_ok = 1 ]; then _rc=0; _result=ok; else _rc=1; _result=failed; fi
    echo "== installation $_result after ${_runtime}s" >> "$INSTALL_LOG"
    tail -c 4194304 "$INSTALL_LOG" > "$MP_RUN/install.post"
    post "deploy/installation?exit_status=$_rc&runtime=${_runtime%.*}" "text/plain; charset=utf-8" \
        "$MP_RUN/install.post" || _result=failed
    printf '{"result": %s, "step": %s, "message": %s}\n' "$(json_str "$_result")" "$(json_str "$FAILED_STEP")" \
        "$(json_str "$FAIL_MESSAGE")" > "$MP_RUN/done.json"
    post deploy/done application/json "$MP_RUN/done.json" || _result=failed
    say "installation $_result after ${_runtime}s${FAIL_MESSAGE:+: $FAIL_MESSAGE}"
    [ "$_result" = ok ]
}
