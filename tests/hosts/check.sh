#!/usr/bin/env bash
# shellcheck disable=SC2016  # single-quoted commands are expanded by the remote shell
# Check that the test hosts brought up by up.sh behave as documented in README.md.
# Prints one line per check and 'N passed, N failed'; exits non-zero on a failure.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -f "$SSH_CONFIG" ] || die "no $SSH_CONFIG: run tests/hosts/up.sh first"
[ -f "$STATE_DIR/env" ] || die "no $STATE_DIR/env: run tests/hosts/up.sh first"
# shellcheck disable=SC1091
. "$STATE_DIR/env"

passed=0 failed=0
ok() { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
bad() { failed=$((failed + 1)); printf 'FAIL  %s\n%s\n' "$1" "$(printf '%s\n' "$2" | sed 's/^/      | /')"; }

# run ALIAS CMD: stdout+stderr of the command, never fails
run() { ssh -F "$SSH_CONFIG" "$1" "$2" </dev/null 2>&1 || true; }

# expect NAME ALIAS CMD REGEX: the output of CMD on ALIAS matches the extended REGEX
expect() {
    local out
    out=$(run "$2" "$3")
    if printf '%s\n' "$out" | grep -Eq -- "$4"; then ok "$1"; else bad "$1" "$out"; fi
}
# expect_not NAME ALIAS CMD REGEX
expect_not() {
    local out
    out=$(run "$2" "$3")
    if printf '%s\n' "$out" | grep -Eq -- "$4"; then bad "$1" "$out"; else ok "$1"; fi
}

me=$(id -un)
expect "cs-local logs in as $me" cs-local 'id -un' "^$me\$"
expect "cs-local runs the controller's command form" cs-local "exec /bin/sh -c 'echo sh-ok'" '^sh-ok$'
expect "cs-many-7 logs in as $me" cs-many-7 'id -un' "^$me\$"
expect "cs-many-7 (the fleet port) starts bash without ~/.bashrc" cs-many-7 'echo "shlvl=$SHLVL"' '^shlvl=[12]$'
out=$(ssh -F "$SSH_CONFIG" cs-refused true </dev/null 2>&1 || true)
if printf '%s\n' "$out" | grep -q 'Connection refused'; then ok "cs-refused is refused"; else bad "cs-refused is refused" "$out"; fi
if command -v ss >/dev/null 2>&1; then
    out=$(ss -Hltn "sport = :$LOCAL_PORT")
    if printf '%s\n' "$out" | awk '{print $4}' | grep -qv '^127\.0\.0\.1:'; then
        bad "the loopback sshd listens on 127.0.0.1 only" "$out"
    else ok "the loopback sshd listens on 127.0.0.1 only"; fi
fi

if [ "${CHOPSTICKS_TEST_DOCKER:-1}" = 1 ]; then
    for pair in cs-deb12:root cs-deb12-deploy:deploy cs-deb12-pw:pwuser cs-deb12-noisy:noisy \
        cs-deb11:root cs-deb11-user:user cs-busybox:root cs-noexec:noexec cs-rohome:rohome; do
        expect "${pair%%:*} logs in as ${pair#*:}" "${pair%%:*}" 'id -un' "^${pair#*:}\$"
    done
    for a in cs-deb12 cs-deb11 cs-busybox cs-deb12-noisy; do
        expect "$a runs the controller's command form" "$a" "exec /bin/sh -c 'echo sh-ok'" '^sh-ok$'
    done
    expect "cs-deb12 has glibc 2.36" cs-deb12 'ldd --version | head -n1' '2\.36$'
    expect "cs-deb11 has glibc 2.31" cs-deb11 'ldd --version | head -n1' '2\.31$'
    expect "cs-deb12-deploy: sudo -n works" cs-deb12-deploy 'sudo -n true && echo sudo-ok' '^sudo-ok$'
    expect "cs-deb12-pw: sudo -n needs a password" cs-deb12-pw 'sudo -n true' 'a password is required'
    expect "cs-deb12-pw: sudo -S with the password works" cs-deb12-pw \
        "echo $CHOPSTICKS_TEST_PWUSER_PASSWORD | sudo -S -p '' id -u" '^0$'
    out=$(ssh -F "$SSH_CONFIG" cs-deb12-noisy 'echo MARK' </dev/null 2>/dev/null || true)
    if [ "$(printf '%s\n' "$out" | tail -n1)" = MARK ] && [ "$(printf '%s\n' "$out" | grep -c .)" -gt 1 ]; then
        ok "cs-deb12-noisy prints junk on stdout before the command's output"
    else bad "cs-deb12-noisy prints junk on stdout before the command's output" "$out"; fi
    out=$(ssh -F "$SSH_CONFIG" -o LogLevel=INFO cs-deb12 true </dev/null 2>&1 || true)
    if printf '%s\n' "$out" | grep -q 'sshd Banner'; then ok "cs-deb12 has an sshd Banner"; else bad "cs-deb12 has an sshd Banner" "$out"; fi
    expect "cs-busybox: head is busybox" cs-busybox 'readlink -f /bin/head; head --help 2>&1 | head -n1' 'BusyBox v'
    expect "cs-busybox: /bin/sh is busybox" cs-busybox 'readlink -f /bin/sh' '/busybox$'
    expect "cs-busybox: coreutils-type tools are busybox applets" cs-busybox \
        'for c in head sha256sum gzip gunzip mkdir chmod mv rm uname cat ls id stat mktemp tar sed grep find awk env; do
            [ "$(readlink -f "$(which $c)")" = /usr/bin/busybox ] || echo "not-busybox: $c"; done; echo checked' '^checked$'
    expect_not "cs-busybox: no coreutils-type tool outside busybox" cs-busybox \
        'for c in head sha256sum gzip gunzip mkdir chmod mv rm uname cat ls id stat mktemp tar sed grep find awk env; do
            [ "$(readlink -f "$(which $c)")" = /usr/bin/busybox ] || echo "not-busybox: $c"; done' 'not-busybox'
    expect "cs-busybox: no bash" cs-busybox 'command -v bash || echo no-bash' '^no-bash$'
    expect "cs-noexec: ~/.cache cannot exec" cs-noexec \
        'mkdir -p ~/.cache && cp /bin/true ~/.cache/t && ~/.cache/t; echo rc=$?' '^rc=126$'
    expect "cs-noexec: /dev/shm cannot exec" cs-noexec 'cp /bin/true /dev/shm/t && /dev/shm/t; echo rc=$?' '^rc=126$'
    expect "cs-noexec: /tmp and /var/tmp can exec" cs-noexec \
        'cp /bin/true /tmp/t.$$ && /tmp/t.$$ && cp /bin/true /var/tmp/t.$$ && /var/tmp/t.$$ && echo exec-ok; rm -f /tmp/t.$$ /var/tmp/t.$$' '^exec-ok$'
    expect "cs-rohome: ~/.cache cannot be created" cs-rohome 'mkdir -p ~/.cache' 'Read-only file system'
    expect "cs-rohome: /tmp is writable" cs-rohome 'touch /tmp/rohome.$$ && echo tmp-ok && rm /tmp/rohome.$$' '^tmp-ok$'
    expect "cs-systemd logs in as root" cs-systemd 'id -un' '^root$'
    expect "cs-fault logs in as root" cs-fault 'id -un' '^root$'
    expect "cs-jump logs in as root" cs-jump 'id -un' '^root$'
    if ssh -F "$SSH_CONFIG" -o ConnectTimeout=3 cs-deb12-pwlogin true </dev/null >/dev/null 2>&1; then
        bad "cs-deb12-pwlogin refuses key logins" "it let the key in"
    else ok "cs-deb12-pwlogin refuses key logins"; fi
    expect "cs-memonly: /tmp is noexec" cs-memonly 'grep " /tmp " /proc/mounts' 'noexec'
    expect "cs-arm says it is an aarch64 machine" cs-arm 'uname -s -m' '^Linux aarch64$'
    expect "cs-inner is reached through cs-jump" cs-inner 'cat /etc/cs-role' '^cs-inner$'
    if ssh -F "$SSH_CONFIG" -o ConnectTimeout=3 cs-inner-nojump true </dev/null >/dev/null 2>&1; then
        bad "cs-inner-nojump is unreachable without a jump host" "it answered"
    else ok "cs-inner-nojump is unreachable without a jump host"; fi
    expect "cs-systemd: systemd is PID 1 and the system is running" cs-systemd \
        'cat /proc/1/comm; systemctl is-system-running' '^running$'
    expect "cs-openrc: OpenRC has reached its default runlevel (sshd is PID 1)" cs-openrc \
        'echo "$(cat /proc/1/comm) $(cat /run/openrc/softlevel) $(rc-status -r)"' '^sshd default default$'
    for a in cs-deb12 cs-systemd; do
        expect "$a: apt offers cs-hello 1.1 from the local repository" "$a" \
            'apt-cache policy cs-hello | grep Candidate' 'Candidate: 1\.1$'
        expect "$a: apt knows cs-hello 1.0 and cs-tool too" "$a" \
            'apt-cache show cs-hello=1.0 cs-tool | grep -c ^Package:' '^2$'
        expect "$a: /srv/cs-signed is signed by its key (key.gpg), and no source names it" "$a" \
            'gpgv --keyring /srv/cs-signed/key.gpg /srv/cs-signed/InRelease 2>&1 && ! grep -rq cs-signed /etc/apt/sources.list* && echo unlisted' '^unlisted$'
    done
    expect "cs-dnf: dnf offers cs-hello 1.0, 1.1 and cs-tool from its cache" cs-dnf \
        'dnf -C -q --showduplicates list --available "cs-*" | grep -c "cs-rpms"' '^3$'
    expect_not "cs-dnf: apt is not there (a dnf host)" cs-dnf 'command -v apt-get' 'apt-get'

    # a binary linked here (Debian 12) needs GLIBC_2.34: deb11 must refuse it
    cc=$(command -v cc || command -v gcc || true)
    if [ -n "$cc" ]; then
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        printf '#include <stdio.h>\nint main(void){puts("hello");return 0;}\n' >"$tmp/h.c"
        "$cc" -o "$tmp/h" "$tmp/h.c"
        if objdump -T "$tmp/h" 2>/dev/null | grep -q GLIBC_2.34 || ! command -v objdump >/dev/null; then
            for a in cs-deb12 cs-deb11; do
                out=$(ssh -F "$SSH_CONFIG" "$a" 'f=$(mktemp) && cat >"$f" && chmod +x "$f" && "$f"; rm -f "$f"' <"$tmp/h" 2>&1 || true)
                case $a in
                cs-deb12) if [ "$out" = hello ]; then ok "cs-deb12 runs a binary linked here"; else bad "cs-deb12 runs a binary linked here" "$out"; fi ;;
                cs-deb11) if printf '%s\n' "$out" | grep -q "version \`GLIBC_2.34' not found"; then
                    ok "cs-deb11 refuses a binary linked here (GLIBC_2.34)"
                else bad "cs-deb11 refuses a binary linked here (GLIBC_2.34)" "$out"; fi ;;
                esac
            done
        fi
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
