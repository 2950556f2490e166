# shellcheck shell=bash
# Part of tests/hosts/up.sh, which sources it (don't run it): wait until every host accepts
# ssh, giving a container that does not one more chance as a brand-new container.

ssh_ok() { ssh -F "$SSH_CONFIG" -o ConnectTimeout=3 "$1" true </dev/null >/dev/null 2>"$STATE_DIR/last-ssh.err"; }

# wait_host ALIAS [CONTAINER]: until `ssh ALIAS true` works; else WAIT_ERR says why, and 1.
WAIT_ERR=""
wait_host() {
    local alias=$1 container=${2:-} start=$SECONDS
    until ssh_ok "$alias"; do
        if [ -n "$container" ] && [ "$(docker inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" != true ]; then
            WAIT_ERR="container $container is not running. Its log:
$(docker logs --tail 15 "$container" 2>&1)"
            return 1
        fi
        if ((SECONDS - start >= WAIT_SECS)); then
            WAIT_ERR="'ssh -F $SSH_CONFIG $alias true' still fails after ${WAIT_SECS}s:
$(tail -n 3 "$STATE_DIR/last-ssh.err")"
            if [ -n "$container" ]; then
                WAIT_ERR="$WAIT_ERR
container log (docker logs $container):
$(docker logs --tail 15 "$container" 2>&1)"
            else
                WAIT_ERR="$WAIT_ERR
sshd log ($STATE_DIR/sshd.log):
$(tail -n 15 "$STATE_DIR/sshd.log" 2>/dev/null)"
            fi
            return 1
        fi
        sleep 0.3
    done
}

wait_all() {
    wait_host cs-local || die "host cs-local: $WAIT_ERR"
    if port_open "$REFUSED_PORT"; then
        die "something listens on 127.0.0.1:$REFUSED_PORT, which cs-refused needs closed; set CHOPSTICKS_TESTHOSTS_REFUSED_PORT"
    fi
    [ "$USE_DOCKER" = 1 ] || return 0
    local alias host port user desc c name
    # fast path: probe every host at once; wait below only for those that failed
    local -A probe=()
    while IFS='|' read -r alias host port user desc; do
        case $alias in cs-local | cs-refused | cs-inner-nojump | cs-deb12-pwlogin) continue ;; esac
        ssh -F "$SSH_CONFIG" -o ConnectTimeout=3 "$alias" true </dev/null >/dev/null 2>&1 &
        probe[$alias]=$!
    done < <(host_table)
    while IFS='|' read -r alias host port user desc; do
        case $alias in cs-local | cs-refused | cs-inner-nojump | cs-deb12-pwlogin) continue ;; esac
        wait "${probe[$alias]}" && continue
        name=""
        for c in "${CONTAINERS[@]}"; do
            [ "$host" = "$(container_ip "$c")" ] && name=$c
        done
        if [ "$alias" = cs-inner ]; then
            wait_host "$alias" "${CONTAINER_PREFIX}inner" && continue
            die "host $alias: $WAIT_ERR"
        fi
        wait_host "$alias" "$CONTAINER_PREFIX$name" && continue
        # one more chance with a brand-new container
        log "host $alias: $WAIT_ERR"
        log "host $alias: recreating container $CONTAINER_PREFIX$name and trying again"
        docker rm -f "$CONTAINER_PREFIX$name" >/dev/null 2>&1 || true
        ensure_named_container "$name"
        wait_host "$alias" "$CONTAINER_PREFIX$name" || die "host $alias: $WAIT_ERR"
    done < <(host_table)
}
