# shellcheck shell=bash
# Part of tests/hosts/up.sh, which sources it (don't run it): the internal Docker network
# and the containers on it (cs-inner lives in cs-jump's network namespace). Each container
# carries a hash of its configuration and is recreated only when that changes.

container_ip() { echo "$NET_PREFIX.${CONTAINER_OCTET[$1]}"; }

ensure_network() {
    local want="$NET_PREFIX.0/24" cur c
    cur=$(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Internal}}' "$NET_NAME" 2>/dev/null || true)
    [ "$cur" = "$want true" ] && return 0
    if [ -n "$cur" ]; then
        log "network $NET_NAME is '$cur', want '$want true': recreating it"
        for c in "${CONTAINERS[@]}"; do docker rm -f "$CONTAINER_PREFIX$c" >/dev/null 2>&1 || true; done
        docker network rm "$NET_NAME" >/dev/null
    fi
    log "creating docker network $NET_NAME ($want, internal)"
    docker network create --driver bridge --internal --subnet "$want" --gateway "$NET_PREFIX.1" \
        --label chopsticks.testhosts=1 "$NET_NAME" >/dev/null ||
        die "could not create docker network $NET_NAME with subnet $want (does it overlap another network? set CHOPSTICKS_TESTHOSTS_NET_PREFIX)"
}

# ensure_container NAME [extra docker run args...]: running, with this exact configuration.
ensure_container() {
    local name=$1
    shift
    local cname=$CONTAINER_PREFIX$name image image_id cfg cur
    image=$(image_tag "${CONTAINER_IMAGE[$name]}")
    image_id=$(docker image inspect -f '{{.Id}}' "$image")
    local args=(
        --name "$cname" --hostname "cs-$name"
        --network "$NET_NAME" --ip "$(container_ip "$name")"
        --label chopsticks.testhosts=1
        -e "CS_AUTHORIZED_KEYS=$(cat "$STATE_DIR/id_ed25519.pub")"
        -e "CS_HOST_KEY=$(cat "$STATE_DIR/ssh_host_ed25519_key")"
        "$@"
    )
    cfg=$(printf '%s\n' "${args[@]}" "$image_id" | short_hash)
    # label, running, and still attached to our network with its address
    cur=$(docker inspect -f '{{index .Config.Labels "chopsticks.cfg"}} {{.State.Running}} {{with index .NetworkSettings.Networks "'"$NET_NAME"'"}}{{.IPAMConfig.IPv4Address}}{{end}}' "$cname" 2>/dev/null || true)
    case $cur in
    "$cfg true $(container_ip "$name")") return 0 ;;
    "$cfg false $(container_ip "$name")")
        log "starting container $cname"
        docker start "$cname" >/dev/null 2>&1 && return 0
        log "docker start $cname failed: recreating it"
        docker rm -f "$cname" >/dev/null
        ;;
    "") ;;
    *)
        log "container $cname is out of date: recreating it"
        docker rm -f "$cname" >/dev/null
        ;;
    esac
    log "running container $cname ($(container_ip "$name"), $image)"
    docker run -d "${args[@]}" --label "chopsticks.cfg=$cfg" "$image" >/dev/null ||
        die "docker run $cname failed"
}

# the containers, and how each one runs
ensure_named_container() {
    case $1 in
    noexec)
        # the noexec user's home (so ~/.cache) is a noexec tmpfs, /dev/shm is noexec (Docker's
        # default /dev/shm is too, but say so); rohome's home is a read-only bind mount.
        mkdir -p "$STATE_DIR/rohome"
        if is_root; then chown 1005:1005 "$STATE_DIR/rohome"; fi
        ensure_container noexec \
            --tmpfs /home/noexec:rw,noexec,nosuid,nodev,size=64m,mode=0755 \
            --tmpfs /dev/shm:rw,noexec,nosuid,nodev,size=64m,mode=1777 \
            -v "$STATE_DIR/rohome:/home/rohome:ro" \
            -e CS_FRESH_HOMES=noexec
        ;;
    deb12)
        # a 1 MiB tmpfs anyone may write: the full disk of the file-transfer tests
        ensure_container deb12 --tmpfs /mnt/small:rw,nosuid,nodev,size=1m,mode=1777
        ;;
    systemd)
        # systemd as PID 1 needs a cgroup hierarchy of its own that it may write: a private
        # cgroup namespace and CAP_SYS_ADMIN (this engine refuses --privileged)
        ensure_container systemd --cgroupns=private --cap-add SYS_ADMIN -e container=docker \
            --tmpfs /run:rw,nosuid,nodev,mode=755 --tmpfs /run/lock:rw,nosuid,nodev \
            --stop-signal SIGRTMIN+3
        ;;
    openrc)
        # OpenRC's state (/run/openrc) starts afresh with the container
        ensure_container openrc --tmpfs /run:rw,nosuid,nodev,mode=755
        ;;
    memonly)
        # nothing the noexec user can write may hold a program: home, /tmp, /var/tmp and
        # /dev/shm are noexec tmpfs mounts, so the agent can only run from memory
        ensure_container memonly \
            --tmpfs /home/noexec:rw,noexec,nosuid,nodev,size=64m,mode=0755 \
            --tmpfs /tmp:rw,noexec,nosuid,nodev,size=64m,mode=1777 \
            --tmpfs /var/tmp:rw,noexec,nosuid,nodev,size=64m,mode=1777 \
            --tmpfs /dev/shm:rw,noexec,nosuid,nodev,size=64m,mode=1777 \
            -e CS_FRESH_HOMES=noexec
        ;;
    arm)
        # says it is an aarch64 machine: its `uname` turns x86_64 into aarch64. The
        # aarch64 agents shipped to it run under qemu-user, through the binfmt_misc
        # entry tests/setup.sh registers on this machine (its F flag makes it work in
        # containers too).
        printf '%s\n' '#!/bin/sh' \
            '# cs-arm (tests/hosts/up.sh): an aarch64 machine, as far as uname says' \
            '/usr/bin/uname "$@" | sed s/x86_64/aarch64/g' >"$STATE_DIR/arm-uname"
        chmod 755 "$STATE_DIR/arm-uname"
        ensure_container arm -v "$STATE_DIR/arm-uname:/usr/local/bin/uname:ro"
        ;;
    jump)
        # the bastion of the via tests: it reaches cs-inner as `inner` (and `inner-N`, any
        # number of names for it) with the test key, by its own ssh config
        printf '%s\n' 'Host inner inner-*' '    HostName 127.0.0.1' "    Port $INNER_PORT" \
            '    User root' '    IdentityFile /root/.ssh/cs_test_key' '    StrictHostKeyChecking no' \
            '    UserKnownHostsFile /dev/null' '    LogLevel ERROR' >"$STATE_DIR/jump-ssh_config"
        chmod 644 "$STATE_DIR/jump-ssh_config"
        ensure_container jump \
            -v "$STATE_DIR/jump-ssh_config:/root/.ssh/config:ro" \
            -v "$STATE_DIR/id_ed25519:/root/.ssh/cs_test_key:ro"
        ;;
    *) ensure_container "$1" ;;
    esac
}

ensure_containers() {
    local c
    for c in "${CONTAINERS[@]}"; do ensure_named_container "$c"; done
    ensure_inner
}

# cs-inner: a Debian 12 container in cs-jump's network namespace whose sshd listens on
# 127.0.0.1:$INNER_PORT only, so that only cs-jump reaches it (ProxyJump tests). It is
# remade whenever cs-jump is.
ensure_inner() {
    local cname=${CONTAINER_PREFIX}inner jump=${CONTAINER_PREFIX}jump image jump_id conf cfg cur
    image=$(image_tag deb12)
    jump_id=$(docker inspect -f '{{.Id}}' "$jump")
    conf=$STATE_DIR/inner-sshd.conf
    # many inner hosts at once through one bastion (MaxStartups: sshd's default drops
    # unauthenticated connections beyond 10)
    printf 'Port %s\nListenAddress 127.0.0.1\nMaxStartups 256\n' "$INNER_PORT" >"$conf"
    # what the tests read to tell it from cs-jump, whose hostname it shares
    echo cs-inner >"$STATE_DIR/inner-role"
    local args=(
        --name "$cname" --network "container:$jump"
        --label chopsticks.testhosts=1
        -v "$conf:/etc/ssh/sshd_config.d/00-inner.conf:ro"
        -v "$STATE_DIR/inner-role:/etc/cs-role:ro"
        -e "CS_AUTHORIZED_KEYS=$(cat "$STATE_DIR/id_ed25519.pub")"
        -e "CS_HOST_KEY=$(cat "$STATE_DIR/ssh_host_ed25519_key")"
    )
    cfg=$(printf '%s\n' "${args[@]}" "$(docker image inspect -f '{{.Id}}' "$image")" "$jump_id" \
        "$(cat "$conf")" | short_hash)
    cur=$(docker inspect -f '{{index .Config.Labels "chopsticks.cfg"}} {{.State.Running}}' "$cname" 2>/dev/null || true)
    [ "$cur" = "$cfg true" ] && return 0
    [ -z "$cur" ] || docker rm -f "$cname" >/dev/null
    log "running container $cname (in $jump's network, sshd on 127.0.0.1:$INNER_PORT)"
    docker run -d "${args[@]}" --label "chopsticks.cfg=$cfg" "$image" >/dev/null ||
        die "docker run $cname failed"
}
