# metalplane ephemeral image: the erase and rescue modes (POSIX sh, busybox).
# Sourced by /init (init.sh) for mp_mode=erase and mp_mode=rescue; it uses init.sh's say,
# get, post, json_str, read_attr and enrol. docs/boot.md ("Disk erasing", "Rescue mode")
# is the same contract, for the region's side.
#
# erase (enrol= or token= required):
#   GET  erase/config            application/json: {"system_id": "...", "mode": MODE}
#                                MODE (MAAS's wipe-disks):
#                                  quick         zero the first and last 2 MiB of each disk
#                                  full          zero each whole disk
#                                  secure        ATA secure erase where the disk supports it
#                                                (hdparm: supported, not enabled, not locked,
#                                                not frozen), else full
#                                  secure-quick  the same, else quick
#   POST erase/output?exit_status=N&runtime=SECONDS
#                                text/plain: the wipe's whole output (the last 4 MiB)
#   POST erase/done              application/json: {"result": "ok" | "failed", "message": "..."}
#   then powers off (mp_after=poweroff); the region releases the machine.
#   Every disk of /sys/block is wiped (no loop, ram, zram, fd, dm-, md, nbd, sr devices).
#
# rescue (enrol= or token= required):
#   POST rescue/booted           application/json: {"result": "ok"}
#   then stays up with a shell on the console. The image has no SSH server: rescue mode
#   is the console's (serial or BMC's) shell, with the disks untouched.

MP_DEV=${MP_DEV:-/dev}
QUICK_BYTES=2097152  # MAAS's quick wipe: 2 MiB at each end
MIB=1048576

erase_disk_names() {
    for _path in "$MP_SYS"/block/*; do
        [ -e "$_path" ] || continue
        _d=${_path##*/}
        case "$_d" in loop*|ram*|zram*|fd*|dm-*|md*|nbd*|sr*) continue ;; esac
        echo "$_d"
    done
}

# zero_range DEVICE FIRST_SECTOR SECTORS: zero 512-byte sectors, in MiB blocks where aligned.
zero_range() {
    _dev=$1
    _at=$2
    _left=$3
    # The unaligned head, sector by sector, up to the next MiB boundary.
    _head=$(( (2048 - _at % 2048) % 2048 ))
    [ "$_head" -gt "$_left" ] && _head=$_left
    if [ "$_head" -gt 0 ]; then
        dd if=/dev/zero of="$_dev" bs=512 seek="$_at" count="$_head" conv=notrunc 2>/dev/null || return 1
        _at=$((_at + _head))
        _left=$((_left - _head))
    fi
    _mibs=$((_left / 2048))
    if [ "$_mibs" -gt 0 ]; then
        dd if=/dev/zero of="$_dev" bs="$MIB" seek=$((_at / 2048)) count="$_mibs" conv=notrunc 2>/dev/null || return 1
        _at=$((_at + _mibs * 2048))
        _left=$((_left - _mibs * 2048))
    fi
    if [ "$_left" -gt 0 ]; then
        dd if=/dev/zero of="$_dev" bs=512 seek="$_at" count="$_left" conv=notrunc 2>/dev/null || return 1
    fi
}

# wipe_quick DEVICE SECTORS: the first and last 2 MiB (the whole disk when it is smaller).
wipe_quick() {
    _ends=$((QUICK_BYTES / 512))
    if [ "$2" -le $((2 * _ends)) ]; then
        zero_range "$1" 0 "$2"
        return
    fi
    zero_range "$1" 0 "$_ends" && zero_range "$1" $(($2 - _ends)) "$_ends"
}

wipe_full() {
    zero_range "$1" 0 "$2"
}

# secure_erase DEVICE NAME: ATA secure erase through hdparm; non-zero when the disk cannot.
secure_erase() {
    if ! command -v hdparm >/dev/null 2>&1; then
        echo "$2: not using secure erase; this image has no hdparm"
        return 1
    fi
    _info=$(hdparm -I "$1" 2>/dev/null | sed -n '/^Security:/,/^[^[:space:]]/p')
    if ! printf '%s\n' "$_info" | grep -Eq '^[[:space:]]+supported$'; then
        echo "$2: drive does not support secure erase."
        return 1
    fi
    for _state in enabled locked frozen; do
        if printf '%s\n' "$_info" | grep -Eq "^[[:space:]]+$_state\$"; then
            echo "$2: not using secure erase; drive is currently $_state."
            return 1
        fi
    done
    echo "$2: performing secure erase process."
    if hdparm --user-master u --security-set-pass maas "$1" >/dev/null 2>&1 \
        && hdparm --user-master u --security-erase maas "$1" >/dev/null 2>&1; then
        echo "$2: successfully securely erased."
        return 0
    fi
    echo "$2: failed to be securely erased."
    return 1
}

# erase_disks MODE: wipe every disk; prints what it does, non-zero when a disk failed.
erase_disks() {
    _failed=""
    _names=$(erase_disk_names)
    echo "disks to be wiped ($1):" $_names
    for _d in $_names; do
        _sectors=$(read_attr "$MP_SYS/block/$_d/size")
        case "$_sectors" in ''|*[!0-9]*) _sectors=0 ;; esac
        _dev="$MP_DEV/$_d"
        if [ "$_sectors" = 0 ] || [ ! -e "$_dev" ]; then
            echo "$_d: no size or no device node: skipped"
            continue
        fi
        _how=$1
        case "$1" in
            secure|secure-quick)
                if secure_erase "$_dev" "$_d"; then continue; fi
                if [ "$1" = secure-quick ]; then _how=quick; else _how=full; fi
                ;;
        esac
        echo "$_d: starting $_how wipe of $((_sectors * 512)) bytes."
        if [ "$_how" = quick ]; then wipe_quick "$_dev" "$_sectors"; else wipe_full "$_dev" "$_sectors"; fi
        if [ $? = 0 ]; then
            sync
            echo "$_d: successfully wiped ($_how)."
        else
            echo "$_d: failed to be wiped ($_how)."
            _failed="$_failed $_d"
        fi
    done
    [ -z "$_failed" ] || { echo "failed:$_failed"; return 1; }
}

need_token() {
    if [ -z "$TOKEN" ] && [ -n "$ENROL" ]; then
        enrol || return 1
    fi
    [ -n "$TOKEN" ] || { say "$MODE needs enrol= (or token=) on the kernel command line"; return 1; }
}

do_erase() {
    need_token || return 1
    if ! get erase/config; then
        say "no erase/config from the region: not wiping anything"
        return 1
    fi
    _mode=$(sed -n 's/.*"mode": *"\([a-z-]*\)".*/\1/p' "$MP_RUN/response")
    case "$_mode" in quick|full|secure|secure-quick) ;; *) say "unknown erase mode '$_mode'"; return 1 ;; esac
    _start=$(cut -d. -f1 "$MP_PROC/uptime")
    erase_disks "$_mode" > "$MP_RUN/erase.log" 2>&1
    _rc=$?
    _runtime=$(( $(cut -d. -f1 "$MP_PROC/uptime") - _start ))
    sed 's/^/metalplane: erase: /' "$MP_RUN/erase.log"
    tail -c 4194304 "$MP_RUN/erase.log" > "$MP_RUN/erase.post"
    post "erase/output?exit_status=$_rc&runtime=$_runtime" "text/plain; charset=utf-8" "$MP_RUN/erase.post"
    if [ "$_rc" = 0 ]; then _result=ok; _message=""; else _result=failed; _message=$(tail -n 1 "$MP_RUN/erase.log"); fi
    printf '{"result": %s, "message": %s}\n' "$(json_str "$_result")" "$(json_str "$_message")" > "$MP_RUN/done.json"
    post erase/done application/json "$MP_RUN/done.json" || return 1
    [ "$_result" = ok ]
}

do_rescue() {
    need_token || return 1
    printf '{"result": "ok"}\n' > "$MP_RUN/booted.json"
    post rescue/booted application/json "$MP_RUN/booted.json" || return 1
    say "rescue mode: up; this image has no SSH server: a shell on the console (exit_rescue_mode ends it)"
    while :; do
        setsid cttyhack sh
        sleep 1
    done
}
