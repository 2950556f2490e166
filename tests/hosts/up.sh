#!/usr/bin/env bash
# Bring up chopsticks' real ssh test hosts (idempotent; a few seconds when already up).
#
#   tests/hosts/up.sh            # then: ssh -F target/testhosts/ssh_config cs-deb12 id
#
# See tests/hosts/README.md for the hosts, the aliases, the settings and the caching.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SELF=$CS_HOSTS_DIR/up.sh

# Bump to force a rebuild of every image (a change to a customize_* function
# below rebuilds the images it feeds by itself: its text is part of the tag).
IMAGE_VERSION=1
BASE_VERSION=1

# base rootfs -> the Debian suite debootstrap makes it from, and its --include list
declare -A BASE_SUITE=([bookworm]=bookworm [bullseye]=bullseye [bookworm-systemd]=bookworm)
# shellcheck disable=SC2054
declare -A BASE_PACKAGES=(
    [bookworm]=openssh-server,sudo,procps,busybox-static
    [bullseye]=openssh-server,sudo,procps
    [bookworm-systemd]=openssh-server,sudo,procps,systemd,systemd-sysv,dbus
)
# image -> base rootfs it is built from
declare -A IMAGE_BASE=([deb12]=bookworm [deb11]=bullseye [busybox]=bookworm [systemd]=bookworm-systemd)
IMAGES=(deb12 deb11 busybox systemd)
# image -> helper functions its customize_* uses (their text goes into the tag too)
declare -A IMAGE_HELPERS=(
    [deb12]="add_key_user local_apt_repo make_deb"
    [deb11]=add_key_user
    [busybox]=busybox_userland
    [systemd]="local_apt_repo make_deb"
)
# container -> image it runs
declare -A CONTAINER_IMAGE=([deb12]=deb12 [deb11]=deb11 [busybox]=busybox [noexec]=deb12 [systemd]=systemd [fault]=deb12 [jump]=deb12 [arm]=deb12 [memonly]=deb12)

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
# host packages

apt_lists_present() {
    compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
}

apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" \
        </dev/null >>"$STATE_DIR/apt.log" 2>&1
}

apt_update() {
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >>"$STATE_DIR/apt.log" 2>&1 ||
        die "apt-get update failed (see $STATE_DIR/apt.log)"
}

# install_pkgs PKG... : apt-get install, with 'apt-get update' first only when
# there are no package lists, or when the install fails with the lists we have.
install_pkgs() {
    [ $# -gt 0 ] || return 0
    command -v apt-get >/dev/null 2>&1 || die "missing packages: $* (and no apt-get here to install them)"
    log "installing with apt-get: $*"
    # Never let a package's postinst start a system service (e.g. the system
    # sshd on 0.0.0.0:22): a policy-rc.d that says no, unless one exists.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        as_root sh -c 'printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
        CLEANUPS+=("as_root rm -f /usr/sbin/policy-rc.d")
    fi
    apt_lists_present || apt_update
    if ! apt_install "$@"; then
        apt_update
        apt_install "$@" || die "apt-get install $* failed (see $STATE_DIR/apt.log)"
    fi
}

ensure_host_tools() {
    local need=()
    command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
    command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
    [ -x /usr/sbin/sshd ] || need+=(openssh-server)
    command -v flock >/dev/null 2>&1 || need+=(util-linux)
    command -v sha256sum >/dev/null 2>&1 || need+=(coreutils)
    # shellcheck disable=SC2207
    need=($(printf '%s\n' "${need[@]}" | sort -u))
    install_pkgs "${need[@]}"
}

ensure_build_tools() {
    local need=()
    command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
    command -v gpgv >/dev/null 2>&1 || need+=(gpgv)
    command -v wget >/dev/null 2>&1 || need+=(wget)
    [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
    install_pkgs "${need[@]}"
}

# The Debian mirror this machine's apt uses (debootstrap needs one).
detect_mirror() {
    if [ -n "${CHOPSTICKS_TESTHOSTS_MIRROR:-}" ]; then
        echo "$CHOPSTICKS_TESTHOSTS_MIRROR"
        return
    fi
    local m
    m=$({
        cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }'
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i !~ /=/) { print $i; break } }'
    } | grep -E '^(https?|file)://.*/debian/?$' | head -n1 || true)
    if [ -z "$m" ]; then
        echo "[testhosts] no Debian mirror in /etc/apt/sources.list*: set CHOPSTICKS_TESTHOSTS_MIRROR to one" >&2
        return 1
    fi
    echo "$m"
}

# ---------------------------------------------------------------------------
# keys

ensure_keys() {
    if [ ! -s "$STATE_DIR/id_ed25519" ] || [ ! -s "$STATE_DIR/id_ed25519.pub" ]; then
        rm -f "$STATE_DIR/id_ed25519" "$STATE_DIR/id_ed25519.pub"
        ssh-keygen -q -t ed25519 -N '' -C chopsticks-test-client -f "$STATE_DIR/id_ed25519" </dev/null
    fi
    if [ ! -s "$STATE_DIR/ssh_host_ed25519_key" ] || [ ! -s "$STATE_DIR/ssh_host_ed25519_key.pub" ]; then
        rm -f "$STATE_DIR/ssh_host_ed25519_key" "$STATE_DIR/ssh_host_ed25519_key.pub"
        ssh-keygen -q -t ed25519 -N '' -C chopsticks-test-host -f "$STATE_DIR/ssh_host_ed25519_key" </dev/null
    fi
    chmod 600 "$STATE_DIR/id_ed25519" "$STATE_DIR/ssh_host_ed25519_key"
    cmp -s "$STATE_DIR/id_ed25519.pub" "$STATE_DIR/authorized_keys" 2>/dev/null ||
        cp "$STATE_DIR/id_ed25519.pub" "$STATE_DIR/authorized_keys"
    chmod 644 "$STATE_DIR/authorized_keys"
}

# ---------------------------------------------------------------------------
# the loopback sshd (cs-local)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# An sshd of this state dir that lost its pidfile (e.g. `cargo clean` removed
# target/testhosts under it) still holds the port: stop it, by its PID.
kill_orphan_sshd() {
    local d pid
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [ "$(readlink "$d/exe" 2>/dev/null)" = /usr/sbin/sshd ] || continue
        tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -qF -- "-f $STATE_DIR/sshd_config " || continue
        log "stopping an orphaned loopback sshd of $STATE_DIR (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
}

ensure_local_sshd() {
    local me permit pam cfg pid=""
    me=$(id -un)
    if is_root; then permit=prohibit-password pam=yes; else permit=no pam=no; fi
    cfg=$(
        cat <<EOF
# Generated by tests/hosts/up.sh: a private sshd for the chopsticks tests.
Port $LOCAL_PORT
Port $FLEET_PORT
ListenAddress 127.0.0.1
AddressFamily inet
HostKey $STATE_DIR/ssh_host_ed25519_key
PidFile $SSHD_PIDFILE
AuthorizedKeysFile $STATE_DIR/authorized_keys
AllowUsers $me
PermitRootLogin $permit
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM $pam
StrictModes no
PrintMotd no
UseDNS no
X11Forwarding no
LogLevel INFO
# group tests open hundreds of sessions at once
MaxStartups 256:30:512
MaxSessions 256
Subsystem sftp /usr/lib/openssh/sftp-server
# The fleet port (cs-many-*): bash sources ~/.bashrc when sshd starts it,
# unless SHLVL says it is nested. A real fleet's rc files cost what they
# cost; this machine's (pyenv init: ~0.4 s a login here) would only blur
# what group tests and benchmarks measure.
Match LocalPort $FLEET_PORT
    SetEnv SHLVL=1
EOF
    )
    [ -f "$SSHD_PIDFILE" ] && pid=$(cat "$SSHD_PIDFILE" 2>/dev/null || true)
    if is_our_sshd "$pid"; then
        if [ "$cfg" = "$(cat "$STATE_DIR/sshd_config" 2>/dev/null)" ]; then
            return 0
        fi
        log "sshd_config changed: restarting the loopback sshd (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$SSHD_PIDFILE"
    kill_orphan_sshd
    printf '%s\n' "$cfg" >"$STATE_DIR/sshd_config"
    if port_open "$LOCAL_PORT"; then
        die "127.0.0.1:$LOCAL_PORT is already taken by another program; set CHOPSTICKS_TESTHOSTS_PORT to a free port"
    fi
    if port_open "$FLEET_PORT"; then
        die "127.0.0.1:$FLEET_PORT is already taken by another program; set CHOPSTICKS_TESTHOSTS_FLEET_PORT to a free port"
    fi
    if is_root; then mkdir -p /run/sshd && chmod 755 /run/sshd; fi
    /usr/sbin/sshd -t -f "$STATE_DIR/sshd_config" || die "sshd rejects $STATE_DIR/sshd_config"
    log "starting the loopback sshd on 127.0.0.1:$LOCAL_PORT"
    # sshd daemonizes; keep none of our fds (the lock, a caller's pipes) open in it.
    /usr/sbin/sshd -f "$STATE_DIR/sshd_config" -E "$STATE_DIR/sshd.log" </dev/null >/dev/null 2>&1 9>&- ||
        die "sshd failed to start: $(tail -n 3 "$STATE_DIR/sshd.log" 2>/dev/null)"
    for _ in $(seq 50); do
        [ -s "$SSHD_PIDFILE" ] && break
        sleep 0.1
    done
    pid=$(cat "$SSHD_PIDFILE" 2>/dev/null || true)
    is_our_sshd "$pid" || die "the loopback sshd did not stay up: $(tail -n 3 "$STATE_DIR/sshd.log" 2>/dev/null)"
}

# ---------------------------------------------------------------------------
# images: debootstrap -> rootfs tarball (cached) -> customize -> docker import

# Trim a fresh debootstrap tree (runs as root).
trim_rootfs() {
    local R=$1
    rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/* \
        "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/usr/share/info/* "$R"/usr/share/locale/*
    # host keys come from the state dir (ed25519) and from `ssh-keygen -A` at start
    rm -f "$R"/etc/ssh/ssh_host_*
}

base_key() { # base
    { echo "$BASE_VERSION $1 ${BASE_PACKAGES[$1]}"; declare -f trim_rootfs; } | short_hash
}
base_tarball() { echo "$CACHE_DIR/base-$1-$(base_key "$1").tar"; }

# The whole text of what builds an image goes into its tag.
image_tag() { # image
    local h
    h=$({
        echo "$IMAGE_VERSION $(base_key "${IMAGE_BASE[$1]}") $PW_PASSWORD"
        # shellcheck disable=SC2086
        declare -f customize_common "customize_$1" ${IMAGE_HELPERS[$1]}
    } | short_hash)
    echo "$IMAGE_REPO/$1:v$IMAGE_VERSION-$h"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# Internal: `up.sh __build-base BASE` (as root). Writes the cached tarball.
build_base() {
    local base=$1 suite=${BASE_SUITE[$1]} out tmp mirror
    out=$(base_tarball "$base")
    [ -s "$out" ] && return 0
    mirror=$(detect_mirror)
    mkdir -p "$CACHE_DIR"
    tmp=$(mktemp -d "$CACHE_DIR/debootstrap-$base.XXXXXX")
    CLEANUPS+=("rm -rf --one-file-system '$tmp'")
    log "debootstrap $suite from $mirror (--include=${BASE_PACKAGES[$base]})"
    if ! debootstrap --variant=minbase --include="${BASE_PACKAGES[$base]}" \
        "$suite" "$tmp/root" "$mirror" </dev/null >"$tmp/log" 2>&1; then
        tail -n 20 "$tmp/log" >&2
        cp "$tmp/log" "$CACHE_DIR/debootstrap-$base.failed.log" 2>/dev/null || true
        die "debootstrap $suite from $mirror failed (log: $CACHE_DIR/debootstrap-$base.failed.log; set CHOPSTICKS_TESTHOSTS_MIRROR to another mirror)"
    fi
    trim_rootfs "$tmp/root"
    tar -C "$tmp/root" --numeric-owner -cf "$tmp/base.tar" \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' .
    mv "$tmp/base.tar" "$out"
    # older tarballs of this base
    find "$CACHE_DIR" -maxdepth 1 -name "base-$base-*.tar" ! -path "$out" -delete
    log "cached $out ($(du -h "$out" | cut -f1))"
}

# Common to every image: the entrypoint and the sshd settings (runs as root on the tree $1).
customize_common() {
    local R=$1
    install -d -m 755 "$R/usr/local/sbin"
    cat >"$R/usr/local/sbin/cs-entry" <<'EOF'
#!/bin/sh
# Container entrypoint of the chopsticks test hosts (from tests/hosts/up.sh).
set -e
mkdir -p /run/sshd
chmod 755 /run/sshd
umask 022
if [ -n "${CS_AUTHORIZED_KEYS:-}" ]; then
    printf '%s\n' "$CS_AUTHORIZED_KEYS" >/etc/ssh/chopsticks_authorized_keys
fi
if [ -n "${CS_HOST_KEY:-}" ]; then
    (umask 077 && printf '%s\n' "$CS_HOST_KEY" >/etc/ssh/ssh_host_ed25519_key)
    ssh-keygen -y -f /etc/ssh/ssh_host_ed25519_key >/etc/ssh/ssh_host_ed25519_key.pub
fi
# homes that are fresh (tmpfs) mounts: give them to their user
for u in ${CS_FRESH_HOMES:-}; do
    home=$(getent passwd "$u" | cut -d: -f6)
    chown "$u:$u" "$home"
    chmod 755 "$home"
done
unset CS_HOST_KEY CS_AUTHORIZED_KEYS CS_FRESH_HOMES
ssh-keygen -A
exec /usr/sbin/sshd -D -e
EOF
    chmod 755 "$R/usr/local/sbin/cs-entry"
    cat >"$R/etc/ssh/sshd_config.d/chopsticks.conf" <<'EOF'
# chopsticks test host
HostKey /etc/ssh/ssh_host_ed25519_key
AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/chopsticks_authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
PrintMotd no
EOF
    # Without CAP_AUDIT_CONTROL a container cannot set the loginuid: don't fail the session on it.
    sed -i -E 's/^(session[[:space:]]+)required([[:space:]]+pam_loginuid\.so)/\1optional\2/' "$R/etc/pam.d/sshd"
}

# users with key login only: a '*' password (usable account, no password)
add_key_user() { # root uid name [useradd args...]
    local R=$1 uid=$2 name=$3
    shift 3
    chroot "$R" useradd -m -u "$uid" -U -s /bin/bash "$@" "$name"
    chroot "$R" usermod -p '*' "$name"
}

# make_deb ROOT NAME VERSION DEPENDS: a tiny package into ROOT/srv/cs-repo, built with
# this machine's dpkg-deb. cs-hello is a daemon with a systemd unit that logs each start
# (and reload) with its config to /var/log/cs-hello.log; cs-tool is a command that needs it.
make_deb() {
    local R=$1 name=$2 version=$3 depends=$4 tree
    tree=$(mktemp -d)
    install -d -m 755 "$tree/DEBIAN" "$tree/usr/bin"
    {
        echo "Package: $name"
        echo "Version: $version"
        echo "Architecture: all"
        echo "Maintainer: chopsticks tests <tests@localhost>"
        [ -z "$depends" ] || echo "Depends: $depends"
        echo "Description: chopsticks test package $name"
        echo " Made by tests/hosts/up.sh for the package and service operations."
    } >"$tree/DEBIAN/control"
    case $name in
    cs-hello)
        install -d -m 755 "$tree/lib/systemd/system"
        cat >"$tree/usr/bin/cs-hello" <<EOF
#!/bin/sh
# cs-hello $version: logs each start and reload with its config, then waits.
log() { echo "\$(date +%s) \$1 version=$version config=\$(tr '\\n' ' ' </etc/cs-hello.conf 2>/dev/null)" >>/var/log/cs-hello.log; }
trap 'log reload' HUP
trap 'exit 0' TERM
log start
while :; do sleep 1 & wait \$!; done
EOF
        cat >"$tree/lib/systemd/system/cs-hello.service" <<'EOF'
[Unit]
Description=chopsticks test daemon

[Service]
ExecStart=/usr/bin/cs-hello
ExecReload=/bin/kill -HUP $MAINPID

[Install]
WantedBy=multi-user.target
EOF
        ;;
    *)
        printf '#!/bin/sh\necho "%s %s"\n' "$name" "$version" >"$tree/usr/bin/$name"
        ;;
    esac
    chmod 755 "$tree/usr/bin/$name"
    dpkg-deb -Zgzip --root-owner-group --build "$tree" "$R/srv/cs-repo/${name}_${version}_all.deb" >/dev/null
    rm -rf "$tree"
}

# An apt repository in the image, /srv/cs-repo, as its only source (the test network
# reaches no mirror): cs-hello 1.0 and 1.1, cs-tool 1.0 (depends on cs-hello). The
# package lists are fetched at build time, so apt knows them without `apt-get update`.
local_apt_repo() {
    local R=$1 deb
    install -d -m 755 "$R/srv/cs-repo"
    make_deb "$R" cs-hello 1.0 ""
    make_deb "$R" cs-hello 1.1 ""
    make_deb "$R" cs-tool 1.0 cs-hello
    for deb in "$R"/srv/cs-repo/*.deb; do
        dpkg-deb -f "$deb"
        echo "Filename: ./${deb##*/}"
        echo "Size: $(stat -c %s "$deb")"
        echo "SHA256: $(sha256sum <"$deb" | cut -d' ' -f1)"
        echo
    done >"$R/srv/cs-repo/Packages"
    rm -f "$R/etc/apt/sources.list" "$R"/etc/apt/sources.list.d/*
    echo 'deb [trusted=yes] file:/srv/cs-repo ./' >"$R/etc/apt/sources.list.d/cs-repo.list"
    chroot "$R" apt-get update -q </dev/null >/dev/null
}

customize_deb12() {
    local R=$1
    local_apt_repo "$R"
    add_key_user "$R" 1001 deploy
    printf 'deploy ALL=(ALL:ALL) NOPASSWD: ALL\n' >"$R/etc/sudoers.d/deploy"
    chmod 440 "$R/etc/sudoers.d/deploy"
    # pwuser: sudo works but asks for the password
    add_key_user "$R" 1002 pwuser -G sudo
    printf 'pwuser:%s\n' "$PW_PASSWORD" | chroot "$R" chpasswd
    # noisy: bash prints junk on stdout (and stderr) even for `ssh host cmd`
    add_key_user "$R" 1003 noisy
    {
        echo '# chopsticks test: junk before the interactive check, so non-interactive ssh commands print it too'
        echo 'echo "Welcome to cs-deb12, noisy user!"'
        echo 'echo "*** this banner comes from ~/.bashrc on stdout ***"'
        echo 'echo ""'
        echo 'echo "noisy: stderr junk from ~/.bashrc" >&2'
        cat "$R/etc/skel/.bashrc"
    } >"$R/home/noisy/.bashrc"
    chroot "$R" chown noisy:noisy /home/noisy/.bashrc
    # noexec: home is a noexec tmpfs in the `noexec` container; rohome: home read-only there
    add_key_user "$R" 1004 noexec
    add_key_user "$R" 1005 rohome
    # an sshd banner too (shown by ssh before authentication, on stderr, at LogLevel INFO and up)
    printf 'chopsticks test host: authorized use only (sshd Banner)\n' >"$R/etc/ssh/banner"
    printf 'Banner /etc/ssh/banner\n' >>"$R/etc/ssh/sshd_config.d/chopsticks.conf"
    # pwlogin: logs in with its password only (no key is accepted for it)
    chroot "$R" useradd -m -u 1006 -U -s /bin/bash pwlogin
    printf 'pwlogin:%s\n' "$PW_PASSWORD" | chroot "$R" chpasswd
    printf '%s\n' 'Match User pwlogin' '    PasswordAuthentication yes' \
        '    PubkeyAuthentication no' >>"$R/etc/ssh/sshd_config.d/chopsticks.conf"
}

# Debian 12 with systemd as PID 1 (the container has CAP_SYS_ADMIN) and the local apt
# repository: the service operations' host. sshd runs as systemd's ssh.service.
customize_systemd() {
    local R=$1
    local_apt_repo "$R"
    sed -i 's#^exec /usr/sbin/sshd -D -e$#exec /lib/systemd/systemd#' "$R/usr/local/sbin/cs-entry"
    grep -q '^exec /lib/systemd/systemd$' "$R/usr/local/sbin/cs-entry"
    # units that have nothing to do in a container
    local unit
    for unit in getty@tty1.service systemd-udevd.service systemd-udev-trigger.service \
        systemd-remount-fs.service systemd-firstboot.service; do
        ln -sf /dev/null "$R/etc/systemd/system/$unit"
    done
}

customize_deb11() {
    local R=$1
    add_key_user "$R" 1000 user
}

# Make busybox the userland: every applet becomes a symlink to busybox,
# replacing Debian's coreutils, dash, gzip, findutils, grep, sed, tar, ...;
# bash (and ldd, a bash script) go away. sshd, PAM and libc stay Debian's.
busybox_userland() {
    local R=$1 p
    [ -x "$R/usr/bin/busybox" ] || { echo "busybox missing in the rootfs" >&2; return 1; }
    chroot "$R" /usr/bin/busybox --list-full >"$R/tmp/applets"
    while read -r p; do
        case $p in
        */busybox | */dpkg | */dpkg-deb | */init | */linuxrc | "") continue ;;
        esac
        rm -f "${R:?}/$p"
        ln -s /bin/busybox "$R/$p"
    done <"$R/tmp/applets"
    rm -f "$R/tmp/applets"
    # what busybox lacks from those packages goes too (b2sum, csplit, bash, ...)
    local pkg f
    for pkg in coreutils dash bash gzip findutils grep sed tar diffutils; do
        [ -f "$R/var/lib/dpkg/info/$pkg.list" ] || continue
        grep -E '^/(usr/)?s?bin/[^/]+$' "$R/var/lib/dpkg/info/$pkg.list" | while read -r f; do
            if [ -L "$R$f" ] && [ "$(readlink "$R$f")" = /bin/busybox ]; then continue; fi
            rm -f "${R:?}$f"
        done
    done
    rm -f "$R/usr/bin/ldd"
    # pam_motd runs `run-parts --lsbsysinit`, which busybox's run-parts rejects (log noise)
    sed -i -E 's/^(session[[:space:]]+optional[[:space:]]+pam_motd\.so.*)/# \1/' "$R/etc/pam.d/sshd"
    sed -i -E 's#:/bin/(ba|da)sh$#:/bin/sh#' "$R/etc/passwd"
    printf '/bin/sh\n/bin/ash\n' >"$R/etc/shells"
}

customize_busybox() {
    local R=$1
    busybox_userland "$R"
}

# Internal: `up.sh __build-image IMAGE` (as root). Imports the image.
build_image() {
    local name=$1 tag tmp R
    tag=$(image_tag "$name")
    image_exists "$tag" && return 0
    local base
    base=$(base_tarball "${IMAGE_BASE[$name]}")
    [ -s "$base" ] || build_base "${IMAGE_BASE[$name]}"
    mkdir -p "$CACHE_DIR"
    tmp=$(mktemp -d "$CACHE_DIR/image-$name.XXXXXX")
    CLEANUPS+=("rm -rf --one-file-system '$tmp'")
    R=$tmp/root
    mkdir "$R"
    tar -C "$R" --numeric-owner -xpf "$base"
    customize_common "$R"
    "customize_$name" "$R"
    log "docker import $tag"
    tar -C "$R" --numeric-owner -cf - . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/usr/local/sbin/cs-entry"]' \
        --change 'LABEL chopsticks.testhosts=1' \
        --message "chopsticks test host $name" - "$tag" >/dev/null
}

run_internal() { # how to run `up.sh __xxx ARG` as root
    if is_root; then
        bash "$SELF" "$@"
    else
        as_root env CHOPSTICKS_TESTHOSTS_CACHE="$CACHE_DIR" CHOPSTICKS_TESTHOSTS_DIR="$STATE_DIR" \
            CHOPSTICKS_TESTHOSTS_MIRROR="${CHOPSTICKS_TESTHOSTS_MIRROR:-}" bash "$SELF" "$@"
    fi
}

ensure_images() {
    local missing=() img base
    for img in "${IMAGES[@]}"; do
        image_exists "$(image_tag "$img")" || missing+=("$img")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    log "building images: ${missing[*]}"
    if ! is_root && ! { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; then
        die "building the test images (${missing[*]}) needs root for debootstrap and chroot: run tests/hosts/up.sh once as root or with passwordless sudo (later runs reuse the images), or set CHOPSTICKS_TESTHOSTS_DOCKER=0 for cs-local only"
    fi
    ensure_build_tools
    # debootstrap the missing bases in parallel (network bound)
    local -A want_base=()
    for img in "${missing[@]}"; do
        base=${IMAGE_BASE[$img]}
        [ -s "$(base_tarball "$base")" ] || want_base[$base]=1
    done
    local -A pids=()
    for base in "${!want_base[@]}"; do
        run_internal __build-base "$base" &
        pids[$base]=$!
    done
    for base in "${!pids[@]}"; do
        wait "${pids[$base]}" || die "building the $base base failed"
    done
    for img in "${missing[@]}"; do
        run_internal __build-image "$img" || die "building image $img failed"
    done
}

# Remove our images that no current tag points at (after the containers moved on).
prune_old_images() {
    local keep=() img ref
    for img in "${IMAGES[@]}"; do keep+=("$(image_tag "$img")"); done
    docker images --format '{{.Repository}}:{{.Tag}}' --filter "label=chopsticks.testhosts=1" 2>/dev/null |
        while read -r ref; do
            case " ${keep[*]} " in *" $ref "*) ;; *) docker image rm "$ref" >/dev/null 2>&1 || true ;; esac
        done
}

# ---------------------------------------------------------------------------
# network and containers

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

# ---------------------------------------------------------------------------
# ssh_config, known_hosts, env

# alias|hostname|port|user|description
host_table() {
    local me
    me=$(id -un)
    echo "cs-local|127.0.0.1|$LOCAL_PORT|$me|this machine through the private loopback sshd, as $me"
    echo "cs-refused|127.0.0.1|$REFUSED_PORT|$me|a loopback port nothing listens on (connection refused)"
    [ "$USE_DOCKER" = 1 ] || return 0
    local ip12 ip11 ipbb ipnx
    ip12=$(container_ip deb12) ip11=$(container_ip deb11) ipbb=$(container_ip busybox) ipnx=$(container_ip noexec)
    echo "cs-deb12|$ip12|22|root|Debian 12 (glibc 2.36), root"
    echo "cs-deb12-deploy|$ip12|22|deploy|Debian 12, bash, sudo NOPASSWD"
    echo "cs-deb12-pw|$ip12|22|pwuser|Debian 12, sudo asks for a password ($PW_PASSWORD)"
    echo "cs-deb12-noisy|$ip12|22|noisy|Debian 12, ~/.bashrc prints junk on stdout/stderr"
    echo "cs-deb12-pwlogin|$ip12|22|pwlogin|Debian 12, password login only ($PW_PASSWORD), no key accepted"
    echo "cs-deb11|$ip11|22|root|Debian 11 (glibc 2.31: no GLIBC_2.34), root"
    echo "cs-deb11-user|$ip11|22|user|Debian 11, a normal user"
    echo "cs-busybox|$ipbb|22|root|busybox userland (sh, coreutils, gzip... are applets), no bash"
    echo "cs-noexec|$ipnx|22|noexec|Debian 12, home and ~/.cache on noexec tmpfs, /dev/shm noexec"
    echo "cs-rohome|$ipnx|22|rohome|Debian 12, read-only home (~/.cache cannot be created)"
    echo "cs-systemd|$(container_ip systemd)|22|root|Debian 12, systemd as PID 1, local apt repository"
    echo "cs-fault|$(container_ip fault)|22|root|Debian 12, for the fault tests: they cut its network and restart it"
    echo "cs-jump|$(container_ip jump)|22|root|Debian 12, the jump host in front of cs-inner"
    echo "cs-memonly|$(container_ip memonly)|22|noexec|Debian 12 where home, /tmp, /var/tmp and /dev/shm are all noexec: the agent runs from memory"
    echo "cs-arm|$(container_ip arm)|22|root|Debian 12 whose uname -m says aarch64: aarch64 agents run there under qemu-user"
    echo "cs-inner|127.0.0.1|$INNER_PORT|root|Debian 12 that only cs-jump reaches (ProxyJump cs-jump)"
    echo "cs-inner-nojump|127.0.0.1|$INNER_PORT|root|cs-inner's address without ProxyJump: unreachable unless a jump host is given"
}

# one Host block of the generated ssh_config
stanza() { # alias host port user description
    cat <<EOF

# $5
Host $1
    HostName $2
    Port $3
    User $4
    IdentityFile $STATE_DIR/id_ed25519
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile $STATE_DIR/known_hosts
    HashKnownHosts no
    LogLevel ERROR
    ConnectTimeout 5
    BatchMode yes
EOF
}

write_client_files() {
    local hostkey alias host port user desc tmp
    hostkey=$(cut -d' ' -f1,2 "$STATE_DIR/ssh_host_ed25519_key.pub")
    tmp=$STATE_DIR/ssh_config.tmp
    {
        echo "# Generated by tests/hosts/up.sh. Use: ssh -F $SSH_CONFIG cs-deb12"
        while IFS='|' read -r alias host port user desc; do
            stanza "$alias" "$host" "$port" "$user" "$desc"
            [ "$alias" != cs-inner ] || echo "    ProxyJump cs-jump"
        done < <(host_table)
        stanza 'cs-many-*' 127.0.0.1 "$FLEET_PORT" "$(id -un)" \
            "any number of names for the loopback sshd's fleet port (cs-many-1, cs-many-2 ...): group tests"
    } >"$tmp"
    mv "$tmp" "$SSH_CONFIG"
    # every host has the same throwaway host key: know it up front
    {
        while IFS='|' read -r alias host port user desc; do
            if [ "$port" = 22 ]; then echo "$host $hostkey"; else echo "[$host]:$port $hostkey"; fi
        done < <(host_table)
        echo "[127.0.0.1]:$FLEET_PORT $hostkey"
    } | sort -u >"$STATE_DIR/known_hosts"

    local aliases
    aliases=$(host_table | cut -d'|' -f1 | tr '\n' ' ')
    {
        echo "# Generated by tests/hosts/up.sh. Shell: set -a; . $STATE_DIR/env; set +a"
        echo "CHOPSTICKS_TEST_SSH_CONFIG=\"$SSH_CONFIG\""
        echo "CHOPSTICKS_TESTHOSTS_DIR=\"$STATE_DIR\""
        echo "CHOPSTICKS_TEST_SSH_KEY=\"$STATE_DIR/id_ed25519\""
        echo "CHOPSTICKS_TEST_KNOWN_HOSTS=\"$STATE_DIR/known_hosts\""
        echo "CHOPSTICKS_TEST_HOSTS=\"${aliases% }\""
        echo "CHOPSTICKS_TEST_DOCKER=\"$USE_DOCKER\""
        echo "CHOPSTICKS_TEST_LOCAL_USER=\"$(id -un)\""
        echo "CHOPSTICKS_TEST_LOCAL_PORT=\"$LOCAL_PORT\""
        echo "CHOPSTICKS_TEST_FLEET_PORT=\"$FLEET_PORT\""
        echo "CHOPSTICKS_TEST_REFUSED_PORT=\"$REFUSED_PORT\""
        if [ "$USE_DOCKER" = 1 ]; then
            local c
            for c in "${CONTAINERS[@]}"; do
                echo "CHOPSTICKS_TEST_$(echo "$c" | tr '[:lower:]' '[:upper:]')_IP=\"$(container_ip "$c")\""
            done
            echo "CHOPSTICKS_TEST_PWUSER_PASSWORD=\"$PW_PASSWORD\""
            echo "CHOPSTICKS_TEST_NETWORK=\"$NET_NAME\""
            echo "CHOPSTICKS_TEST_FAULT_CONTAINER=\"${CONTAINER_PREFIX}fault\""
        fi
    } >"$STATE_DIR/env.tmp"
    mv "$STATE_DIR/env.tmp" "$STATE_DIR/env"
}

# ---------------------------------------------------------------------------
# readiness

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
-h | --help) sed -n '2,6p' "$SELF" ;;
*) die "unknown argument: $1 (usage: tests/hosts/up.sh)" ;;
esac
