#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR  # the files sourced below, from any working directory
# Bring up chopsticks' real ssh test hosts (idempotent; a few seconds when already up).
#
#   tests/hosts/up.sh            # then: ssh -F target/testhosts/ssh_config cs-deb12 id
#
# See tests/hosts/README.md for the hosts, the aliases, the settings and the caching.
set -euo pipefail

# This file holds the settings, small helpers, main and the argument dispatch; the
# rest is in the files it sources below, one per part, in the order main gets to them.

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SELF=$CS_HOSTS_DIR/up.sh

# Bump to force a rebuild of every image (a change to a customize_* function in
# customize.sh rebuilds the images it feeds by itself: its text is part of the tag).
IMAGE_VERSION=1
BASE_VERSION=1

# base rootfs -> the Debian suite debootstrap makes it from, and its --include list
declare -A BASE_SUITE=([bookworm]=bookworm [bookworm-git]=bookworm [bullseye]=bullseye [bookworm-systemd]=bookworm [bookworm-openrc]=bookworm [bookworm-dnf]=bookworm)
# shellcheck disable=SC2054
declare -A BASE_PACKAGES=(
    [bookworm]=openssh-server,sudo,procps,busybox-static
    # deb12 runs ops::git; busybox (the plain bookworm base) shows its absence
    [bookworm-git]=openssh-server,sudo,procps,busybox-static,git
    [bullseye]=openssh-server,sudo,procps
    [bookworm-systemd]=openssh-server,sudo,procps,systemd,systemd-sysv,dbus
    [bookworm-openrc]=openssh-server,sudo,procps,openrc
    # cs-dnf: Debian's dnf and rpm (its apt goes in customize_dnf)
    [bookworm-dnf]=openssh-server,sudo,procps,dnf,rpm
)
# image -> base rootfs it is built from
declare -A IMAGE_BASE=([deb12]=bookworm-git [deb11]=bullseye [busybox]=bookworm [systemd]=bookworm-systemd [openrc]=bookworm-openrc [dnf]=bookworm-dnf)
IMAGES=(deb12 deb11 busybox systemd openrc dnf)
# image -> helper functions its customize_* uses (their text goes into the tag too)
declare -A IMAGE_HELPERS=(
    [deb12]="add_key_user local_apt_repo make_deb signed_apt_repo"
    [deb11]=add_key_user
    [busybox]=busybox_userland
    [systemd]="local_apt_repo make_deb signed_apt_repo"
    [openrc]=""
    [dnf]="local_rpm_repo make_rpm"
)
# container -> image it runs
declare -A CONTAINER_IMAGE=([deb12]=deb12 [deb11]=deb11 [busybox]=busybox [noexec]=deb12 [systemd]=systemd [fault]=deb12 [jump]=deb12 [arm]=deb12 [memonly]=deb12 [openrc]=openrc [dnf]=dnf)

PW_PASSWORD=chopsticks-pw   # pwuser's password (sudo asks for it)

# ---------------------------------------------------------------------------
# small helpers

CLEANUPS=()
cleanup() {
    local c
    for c in "${CLEANUPS[@]}"; do eval "$c" || true; done
}
trap cleanup EXIT

is_root() { [ "$(id -u)" = 0 ]; }

# Run a command as root: directly, or through passwordless sudo.
as_root() {
    if is_root; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "this step needs root (or passwordless sudo): $*"
    fi
}

short_hash() { sha256sum | cut -c1-12; }

# ---------------------------------------------------------------------------
# the parts, one file each (sourcing them defines functions, and WAIT_ERR; nothing runs)

# shellcheck source=host-tools.sh
. "$CS_HOSTS_DIR/host-tools.sh"     # host packages: apt installs, the Debian mirror
# shellcheck source=keys.sh
. "$CS_HOSTS_DIR/keys.sh"           # client key and the shared host key
# shellcheck source=local-sshd.sh
. "$CS_HOSTS_DIR/local-sshd.sh"     # the loopback sshd (cs-local, cs-many-*)
# shellcheck source=images.sh
. "$CS_HOSTS_DIR/images.sh"         # base tarballs, image tags, build and import
# shellcheck source=customize.sh
. "$CS_HOSTS_DIR/customize.sh"      # customize_*: what makes each image
# shellcheck source=apt-repo.sh
. "$CS_HOSTS_DIR/apt-repo.sh"       # the apt repository in the deb12/systemd images
# shellcheck source=rpm-repo.sh
. "$CS_HOSTS_DIR/rpm-repo.sh"       # the rpm repository in the dnf image
# shellcheck source=containers.sh
. "$CS_HOSTS_DIR/containers.sh"     # the docker network and the containers
# shellcheck source=client-files.sh
. "$CS_HOSTS_DIR/client-files.sh"   # ssh_config, known_hosts, env
# shellcheck source=readiness.sh
. "$CS_HOSTS_DIR/readiness.sh"      # wait until every host accepts ssh

# ---------------------------------------------------------------------------

main() {
    local t0=$SECONDS
    case $STATE_DIR in *[[:space:]]*) die "the state dir must not contain spaces: $STATE_DIR" ;; esac
    mkdir -p "$STATE_DIR"
    chmod 700 "$STATE_DIR"
    exec 9>"$STATE_DIR/lock"
    flock -w 900 9 || die "another up.sh holds $STATE_DIR/lock"

    ensure_host_tools
    ensure_keys
    ensure_local_sshd

    if [ "$USE_DOCKER" = 1 ]; then
        command -v docker >/dev/null 2>&1 ||
            die "docker is not installed (install and start Docker Engine, or set CHOPSTICKS_TESTHOSTS_DOCKER=0 for cs-local only)"
        docker_usable ||
            die "the Docker engine is not reachable ('docker version' fails: not running, or no permission). Start it, or set CHOPSTICKS_TESTHOSTS_DOCKER=0 for cs-local only"
        ensure_images
        ensure_network
        ensure_containers
    fi

    write_client_files
    wait_all
    [ "$USE_DOCKER" = 1 ] && prune_old_images

    echo "chopsticks test hosts are up ($((SECONDS - t0))s). ssh -F $SSH_CONFIG <alias>:"
    local alias host port user desc
    while IFS='|' read -r alias host port user desc; do
        printf '  %-16s %-26s %s\n' "$alias" "$user@$host:$port" "$desc"
    done < <(host_table)
    echo "env: $STATE_DIR/env   stop: tests/hosts/down.sh"
}

case ${1:-} in
__build-base) build_base "$2" ;;
__build-image) build_image "$2" ;;
"") main ;;
-h | --help) sed -n '3,7p' "$SELF" ;;
*) die "unknown argument: $1 (usage: tests/hosts/up.sh)" ;;
esac
