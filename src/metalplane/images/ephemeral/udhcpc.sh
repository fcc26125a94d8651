#!/bin/sh
# udhcpc event script of the metalplane ephemeral image: configure only the interface
# udhcpc runs on, and leave what the lease said in $MP_RUN/net.env for /init.
# Values from the DHCP server are reduced to safe characters: /init sources the file.
MP_RUN=${MP_RUN:-/run/metalplane}

clean() {
    printf '%s' "$1" | tr -cd 'A-Za-z0-9._: -'
}

case "$1" in
    deconfig)
        ip -4 addr flush dev "$interface" 2>/dev/null
        ip link set "$interface" up
        ;;
    bound|renew)
        ip -4 addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "${mtu:-}" ] && ip link set "$interface" mtu "$mtu"
        gateway=""
        if [ -n "${router:-}" ]; then
            set -- $router
            gateway=$1
            ip route replace default via "$gateway" dev "$interface"
        fi
        : > /etc/resolv.conf
        [ -n "${domain:-}" ] && echo "search $(clean "$domain")" >> /etc/resolv.conf
        for server in ${dns:-}; do
            echo "nameserver $(clean "$server")" >> /etc/resolv.conf
        done
        mkdir -p "$MP_RUN"
        {
            echo "NET_IFACE='$(clean "$interface")'"
            echo "NET_IP='$(clean "$ip")'"
            echo "NET_MASK='$(clean "${mask:-24}")'"
            echo "NET_ROUTER='$(clean "$gateway")'"
            echo "NET_DNS='$(clean "${dns:-}")'"
            echo "NET_SERVER='$(clean "${serverid:-}")'"
            echo "NET_NEXT_SERVER='$(clean "${siaddr:-}")'"
            echo "NET_HOSTNAME='$(clean "${hostname:-}")'"
            echo "NET_DOMAIN='$(clean "${domain:-}")'"
        } > "$MP_RUN/net.env"
        ;;
esac
exit 0
