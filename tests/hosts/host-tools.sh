# shellcheck shell=bash
# Part of tests/hosts/up.sh, which sources it (don't run it): the packages up.sh needs
# on this machine, installed with apt when missing, and the Debian mirror debootstrap uses.

apt_lists_present() {
    compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
}

apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" \
        </dev/null >>"$STATE_DIR/apt.log" 2>&1
}

apt_update() {
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q </dev/null >>"$STATE_DIR/apt.log" 2>&1 ||
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
    # signed_apt_repo signs with gpg, and stops its agent with gpgconf.
    command -v gpg >/dev/null 2>&1 || need+=(gpg)
    command -v gpg-agent >/dev/null 2>&1 || need+=(gpg-agent)
    command -v gpgconf >/dev/null 2>&1 || need+=(gpgconf)
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
