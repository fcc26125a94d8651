#!/bin/sh
# metalplane first-boot agent of the deployable Debian image (POSIX sh; GNU wget, iproute2).
#
# metalplane-firstboot.service runs it once, on the first boot from the disk, after
# the network and sshd are up. The installer (the ephemeral image in deploy mode)
# wrote what it needs:
#   /etc/metalplane/agent.conf     (0600) metadata_url=URL, token=TOKEN, system_id=ID
#   /var/lib/metalplane/user_data  (0600, optional) the user_data given to deploy
#
# It runs user_data when it is a script (it starts with "#!"; anything else, e.g.
# "#cloud-config", needs cloud-init and is reported as not run), then reports:
#
#   POST <metadata_url>deploy/booted   Content-Type: application/json
#                                      Authorization: Token TOKEN
#     {"result": "ok", "system_id": "...", "hostname": "...", "kernel": "<uname -r>",
#      "interfaces": [{"name": "enp0s3", "mac": "52:54:00:..", "addresses": ["10.0.0.5/24", ...]}],
#      "user_data": {"ran": true, "exit_status": 0, "runtime": 3, "output": "<last 64 KiB>",
#                    "message": ""}}
#
# A request that fails without a 4xx answer is retried (5 s, 10 s, ... up to 60 s
# apart, for about 30 minutes); a 4xx answer is final. Once the region took it,
# /var/lib/metalplane/booted marks the first boot done and the unit never runs again.
# user_data runs once even if the report has to be retried on a later boot.

CONF=${MP_AGENT_CONF:-/etc/metalplane/agent.conf}
STATE=${MP_STATE:-/var/lib/metalplane}
SYS=${MP_SYS:-/sys}
OUTPUT_LIMIT=65536

say() {
    echo "metalplane-firstboot: $*"
}

conf_get() {
    sed -n "s/^$1=//p" "$CONF" 2>/dev/null | head -n 1
}

# A JSON string of stdin: backslashes, quotes and control characters escaped, lines joined by \n.
json_text() {
    tr -d '\000-\010\013-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' \
        | awk 'BEGIN { printf "\"" } NR > 1 { printf "\\n" } { printf "%s", $0 } END { printf "\"" }'
}

json_str() {
    printf '%s' "$1" | json_text
}

interfaces_json() {
    _sep=""
    printf '['
    for _path in "$SYS"/class/net/*; do
        _n=${_path##*/}
        [ "$_n" = lo ] && continue
        [ -e "$_path/device" ] || continue  # physical NICs only (no bridges, bonds' slaves stay)
        _addrs=$(ip -o addr show dev "$_n" scope global 2>/dev/null | awk '{ print $4 }')
        _list=""
        for _a in $_addrs; do
            _list="${_list:+$_list, }$(json_str "$_a")"
        done
        printf '%s{"name": %s, "mac": %s, "addresses": [%s]}' "$_sep" "$(json_str "$_n")" \
            "$(json_str "$(cat "$_path/address" 2>/dev/null)")" "$_list"
        _sep=", "
    done
    printf ']'
}

# Run user_data once; leave {"ran": ..} in $STATE/user_data.json.
run_user_data() {
    [ -f "$STATE/user_data.json" ] && return 0
    _ud="$STATE/user_data"
    if [ ! -s "$_ud" ]; then
        echo '{"ran": false, "exit_status": null, "runtime": 0, "output": "", "message": "no user_data"}' \
            > "$STATE/user_data.json"
        return 0
    fi
    if [ "$(head -c 2 "$_ud")" != "#!" ]; then
        say "user_data is not a script (it does not start with #!): not run"
        printf '{"ran": false, "exit_status": null, "runtime": 0, "output": "", "message": %s}\n' \
            "$(json_str "user_data is not a script (no #! line; #cloud-config needs cloud-init): not run")" \
            > "$STATE/user_data.json"
        return 0
    fi
    say "running user_data"
    chmod 0700 "$_ud"
    _start=$(cut -d. -f1 /proc/uptime)
    (cd / && "$_ud") > "$STATE/user_data.log" 2>&1 < /dev/null
    _rc=$?
    _runtime=$(( $(cut -d. -f1 /proc/uptime) - _start ))
    say "user_data exited $_rc after ${_runtime}s"
    printf '{"ran": true, "exit_status": %s, "runtime": %s, "output": %s, "message": ""}\n' "$_rc" "$_runtime" \
        "$(tail -c "$OUTPUT_LIMIT" "$STATE/user_data.log" | json_text)" > "$STATE/user_data.json"
}

report_json() {
    printf '{"result": "ok", "system_id": %s, "hostname": %s, "kernel": %s, "interfaces": %s, "user_data": %s}\n' \
        "$(json_str "$(conf_get system_id)")" "$(json_str "$(hostname)")" "$(json_str "$(uname -r)")" \
        "$(interfaces_json)" "$(cat "$STATE/user_data.json")"
}

# post PATH FILE: 0 when the region took it, 1 on a 4xx, 2 when it could not be reached.
post() {
    wget -q -S -O "$STATE/response" --tries=1 --timeout=60 --header "Authorization: Token $TOKEN" \
        --header "Content-Type: application/json" --post-file "$2" "$METADATA_URL$1" 2>"$STATE/wget.err" && return 0
    say "POST $METADATA_URL$1 failed: $(grep -m 1 'HTTP/' "$STATE/wget.err" || tail -n 1 "$STATE/wget.err")"
    grep -q '^ *HTTP/[0-9.]* 4' "$STATE/wget.err" && return 1
    return 2
}

report() {
    report_json > "$STATE/booted.json"
    _pause=5
    _waited=0
    while :; do
        post deploy/booted "$STATE/booted.json"
        case $? in
            0) say "reported to $METADATA_URL: deployed"; return 0 ;;
            1) say "the region refused the report: giving up"; return 1 ;;
        esac
        [ "$_waited" -ge 1800 ] && { say "the region did not answer for 30 minutes: giving up"; return 1; }
        sleep "$_pause"
        _waited=$((_waited + _pause))
        _pause=$((_pause * 2))
        [ "$_pause" -gt 60 ] && _pause=60
    done
}

main() {
    METADATA_URL=$(conf_get metadata_url)
    TOKEN=$(conf_get token)
    case "$METADATA_URL" in ''|*/) ;; *) METADATA_URL="$METADATA_URL/" ;; esac
    if [ -z "$METADATA_URL" ] || [ -z "$TOKEN" ]; then
        say "$CONF has no metadata_url= or token=: nothing to report to"
        exit 1
    fi
    mkdir -p "$STATE"
    chmod 0700 "$STATE"
    run_user_data
    if report; then
        : > "$STATE/booted"
        exit 0
    fi
    exit 1
}

if [ "${MP_SOURCE_ONLY:-0}" != 1 ]; then
    main "$@"
fi
