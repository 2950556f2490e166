# shellcheck shell=bash disable=SC2034

# Settings shared by up.sh, down.sh and check.sh: source it, don't run it.
# Every setting can be overridden from the environment (see README.md).

CS_HOSTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CS_REPO_ROOT=$(cd "$CS_HOSTS_DIR/../.." && pwd)

if [ -z "${HOME:-}" ]; then
    HOME=$(getent passwd "$(id -u)" | cut -d: -f6)
    export HOME
fi

STATE_DIR=${CHOPSTICKS_TESTHOSTS_DIR:-$CS_REPO_ROOT/target/testhosts}
case $STATE_DIR in /*) ;; *) STATE_DIR=$PWD/$STATE_DIR ;; esac
CACHE_DIR=${CHOPSTICKS_TESTHOSTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chopsticks-testhosts}
case $CACHE_DIR in /*) ;; *) CACHE_DIR=$PWD/$CACHE_DIR ;; esac

# Loopback sshd (cs-local) and a loopback port on which nothing listens (cs-refused).
LOCAL_PORT=${CHOPSTICKS_TESTHOSTS_PORT:-22022}
# The same sshd for the fleet aliases (cs-many-*), whose login shell skips
# ~/.bashrc: a group of 200 should not time this machine's rc files 200 times.
FLEET_PORT=${CHOPSTICKS_TESTHOSTS_FLEET_PORT:-22023}
REFUSED_PORT=${CHOPSTICKS_TESTHOSTS_REFUSED_PORT:-22021}

# Docker hosts. CHOPSTICKS_TESTHOSTS_DOCKER=0 sets up cs-local/cs-refused only.
USE_DOCKER=${CHOPSTICKS_TESTHOSTS_DOCKER:-1}
NET_NAME=${CHOPSTICKS_TESTHOSTS_NETWORK:-chopsticks-test}
NET_PREFIX=${CHOPSTICKS_TESTHOSTS_NET_PREFIX:-172.29.155}   # a /24
# A second fleet beside the first (another worktree) takes its own prefix and image
# repository, besides its own state dir, network, net prefix and ports.
CONTAINER_PREFIX=${CHOPSTICKS_TESTHOSTS_PREFIX:-chopsticks-test-}
IMAGE_REPO=${CHOPSTICKS_TESTHOSTS_IMAGE_REPO:-chopsticks-testhosts}
# container name (after the prefix) -> last octet of its IP
CONTAINERS=(deb12 deb11 busybox noexec systemd fault jump arm memonly openrc dnf)
declare -A CONTAINER_OCTET=([deb12]=11 [deb11]=12 [busybox]=13 [noexec]=14 [systemd]=15 [fault]=16 [jump]=17 [arm]=18 [memonly]=19 [openrc]=20 [dnf]=21)
# Containers in another's network namespace: `inner` lives in `jump`'s, its sshd on
# 127.0.0.1:2222 there, so only cs-jump reaches it.
SIDECARS=(inner)
INNER_PORT=2222

# How long to wait for one host to accept ssh.
WAIT_SECS=${CHOPSTICKS_TESTHOSTS_WAIT:-30}

SSH_CONFIG=$STATE_DIR/ssh_config
SSHD_PIDFILE=$STATE_DIR/sshd.pid

log() { printf '[testhosts] %s\n' "$*" >&2; }
die() {
    printf '[testhosts] ERROR: %s\n' "$*" >&2
    exit 1
}

# True when $1 is the PID of the loopback sshd started from this state dir
# (guards against a recycled PID).
is_our_sshd() {
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE_DIR/sshd_config"
}

docker_usable() {
    command -v docker >/dev/null 2>&1 && timeout 20 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}
