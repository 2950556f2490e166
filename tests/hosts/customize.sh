# shellcheck shell=bash
# Part of tests/hosts/up.sh, which sources it (don't run it): what makes each image out of
# its base rootfs. build_image (images.sh) runs customize_common, then customize_IMAGE, as
# root on the unpacked tree; their text (and that of the image's IMAGE_HELPERS in up.sh) is
# part of the image's tag, so any edit here rebuilds the images it feeds.

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

customize_deb12() {
    local R=$1
    local_apt_repo "$R"
    signed_apt_repo "$R"
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
    signed_apt_repo "$R"
    sed -i 's#^exec /usr/sbin/sshd -D -e$#exec /lib/systemd/systemd#' "$R/usr/local/sbin/cs-entry"
    grep -q '^exec /lib/systemd/systemd$' "$R/usr/local/sbin/cs-entry"
    # units that have nothing to do in a container
    local unit
    for unit in getty@tty1.service systemd-udevd.service systemd-udev-trigger.service \
        systemd-remount-fs.service systemd-firstboot.service; do
        ln -sf /dev/null "$R/etc/systemd/system/$unit"
    done
}

# Debian 12 with OpenRC (Debian's openrc package) that is not PID 1 (sshd is): the
# entrypoint brings OpenRC up to its default runlevel first (so /run/openrc/softlevel says it
# runs, and rc-service and rc-update work), then execs sshd as on every host.
customize_openrc() {
    local R=$1
    # a container: OpenRC leaves out what has the -docker keyword (clock, cgroups, ...)
    sed -i 's/^#rc_sys=""$/rc_sys="docker"/' "$R/etc/rc.conf"
    grep -q '^rc_sys="docker"$' "$R/etc/rc.conf"
    # sshd is the container's own (cs-entry execs it), not OpenRC's; the clock and the
    # kernel settings are the container engine's (their scripts need what it does not mount)
    rm -f "$R/etc/runlevels/default/ssh" "$R/etc/runlevels/sysinit/hwclock.sh" \
        "$R/etc/runlevels/sysinit/procps"
    # one runlevel a line, so that the entry's set -e stops at one that fails
    sed -i 's#^ssh-keygen -A$#openrc sysinit\nopenrc boot\nopenrc default\n&#' "$R/usr/local/sbin/cs-entry"
    grep -q '^openrc default$' "$R/usr/local/sbin/cs-entry"
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

# Debian 12 whose package manager is dnf, with the local rpm repository (rpm-repo.sh): the
# package operation's dnf host. apt's programs go, so that the host is honestly a dnf host
# (dpkg stays: Debian's dnf and rpm are its packages).
customize_dnf() {
    local R=$1
    local_rpm_repo "$R"
    rm -f "$R"/usr/bin/apt "$R"/usr/bin/apt-get "$R"/usr/bin/apt-cache "$R"/usr/bin/apt-mark \
        "$R"/usr/bin/apt-config "$R"/usr/bin/apt-cdrom
}
