#!/usr/bin/env bash
# Stop chopsticks' test hosts: the loopback sshd (by its recorded PID), the
# containers and the docker network. Images and cached rootfs tarballs stay.
#
#   tests/hosts/down.sh            # stop
#   tests/hosts/down.sh --purge    # also remove the images, the rootfs cache and the state dir
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=0
case ${1:-} in
"") ;;
--purge) purge=1 ;;
*) die "unknown argument: $1 (usage: tests/hosts/down.sh [--purge])" ;;
esac

# the loopback sshd
if [ -f "$SSHD_PIDFILE" ]; then
    pid=$(cat "$SSHD_PIDFILE" 2>/dev/null || true)
    if is_our_sshd "$pid"; then
        log "stopping the loopback sshd (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$SSHD_PIDFILE"
fi

# containers and network
if command -v docker >/dev/null 2>&1; then
    if docker_usable; then
        names=()
        for c in "${SIDECARS[@]}" "${CONTAINERS[@]}"; do
            if docker container inspect "$CONTAINER_PREFIX$c" >/dev/null 2>&1; then names+=("$CONTAINER_PREFIX$c"); fi
        done
        if [ ${#names[@]} -gt 0 ]; then
            log "removing containers: ${names[*]}"
            docker rm -f "${names[@]}" >/dev/null
        fi
        if docker network inspect "$NET_NAME" >/dev/null 2>&1; then
            log "removing network $NET_NAME"
            docker network rm "$NET_NAME" >/dev/null
        fi
        if [ "$purge" = 1 ]; then
            mapfile -t imgs < <(docker images --format '{{.Repository}}:{{.Tag}}' --filter label=chopsticks.testhosts=1)
            if [ ${#imgs[@]} -gt 0 ]; then
                log "removing images: ${imgs[*]}"
                docker image rm "${imgs[@]}" >/dev/null
            fi
        fi
    else
        log "docker is not reachable: left any containers alone"
    fi
fi

if [ "$purge" = 1 ]; then
    log "removing $CACHE_DIR and $STATE_DIR"
    rm -rf "$CACHE_DIR" "$STATE_DIR"
fi
log "down"
