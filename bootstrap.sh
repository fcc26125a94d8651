#!/usr/bin/env bash
# metalplane's two set-up commands on a fresh Debian 12 machine, as root:
#   ./bootstrap.sh init [metalplane init options]   install, then run the embedded default
#   ./bootstrap.sh test [pytest options]            install, then run the whole test suite
# Both install only what is missing: Debian packages, then the pinned virtualenv.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

# Daemons and tools metalplane drives (runtime) and the real peers tests and bench/ use.
RUNTIME_DEBS=(postgresql-15 python3 python3-venv ca-certificates iproute2 util-linux ipxe pxelinux syslinux-common
              kea-dhcp4-server kea-dhcp6-server chrony bind9 bind9-utils haproxy ipmitool freeipmi-tools busybox-static jq debootstrap)
TEST_DEBS=(kea-admin udhcpc isc-dhcp-client tftpd-hpa tftp-hpa openipmi curl
           ntpsec-ntpdate sntp nginx-light qemu-system-x86 ipxe-qemu radvd procps wget wrk systemd
           bind9-dnsutils dnsperf iputils-arping openssh-client
           chromium)  # tests/browser: Playwright drives Debian's chromium, never a downloaded one

install_debs() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        echo "bootstrap: installing ${missing[*]}" >&2
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

install_venv() {
    if [[ ! -x .venv/bin/python ]]; then
        python3 -m venv .venv
    fi
    # The lock pins every dependency; the stamp skips pip when nothing changed.
    local stamp=.venv/.installed
    if [[ ! -f $stamp ]] || ! cmp -s requirements.lock "$stamp" || [[ pyproject.toml -nt $stamp ]]; then
        .venv/bin/pip install -q --disable-pip-version-check -r requirements.lock
        .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
        cp requirements.lock "$stamp"
    fi
}

cmd=${1:-}
shift || true
case "$cmd" in
    init)
        install_debs "${RUNTIME_DEBS[@]}"
        install_venv
        ln -sf "$PWD/.venv/bin/metalplane" /usr/local/bin/metalplane
        exec .venv/bin/metalplane init "$@"
        ;;
    test)
        install_debs "${RUNTIME_DEBS[@]}" "${TEST_DEBS[@]}"
        install_venv
        exec .venv/bin/python -m pytest "$@"
        ;;
    *)
        echo "usage: $0 init [metalplane init options] | $0 test [pytest options]" >&2
        exit 2
        ;;
esac
