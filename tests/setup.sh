#!/usr/bin/env bash
# Everything the test suite needs, on a fresh machine: the SSH test hosts
# (tests/hosts/up.sh) and a fixture agent that runs on hosts whose glibc is
# older than this machine's, at target/testhosts/agents/fixture:
# - a static x86_64-unknown-linux-musl build (rustup target add), or, when
#   that target cannot be had,
# - a glibc build linked against glibc 2.28 symbols with cargo-zigbuild and
#   zig from PyPI;
# and an aarch64 build of the same fixture, at target/testhosts/agents/fixture-aarch64,
# with qemu-user registered in binfmt_misc so that it runs on cs-arm (whose uname says
# aarch64): the per-architecture agent tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/hosts/up.sh

state=${CHOPSTICKS_TESTHOSTS_DIR:-$PWD/target/testhosts}
agents=$state/agents
mkdir -p "$agents"
musl=x86_64-unknown-linux-musl

have_musl() {
    [ -z "${CHOPSTICKS_SETUP_NO_MUSL:-}" ] || return 1
    rustup target list --installed 2>/dev/null | grep -qx "$musl" && return 0
    echo "setup: adding the $musl target (a static agent for old-glibc hosts)"
    rustup target add "$musl"
}

if have_musl; then
    cargo build --quiet -p chopsticks-tests --bin fixture --target "$musl"
    cp -f "target/$musl/debug/fixture" "$agents/fixture"
    echo "setup: test hosts up, musl fixture agent built"
else
    echo "setup: no $musl target; building the fixture against glibc 2.28 with cargo-zigbuild"
    venv=$state/zig-venv
    if [ ! -x "$venv/bin/cargo-zigbuild" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet 'cargo-zigbuild>=0.19' ziglang
    fi
    PATH="$venv/bin:$PATH" cargo zigbuild --quiet -p chopsticks-tests --bin fixture \
        --target x86_64-unknown-linux-gnu.2.28
    cp -f target/x86_64-unknown-linux-gnu/debug/fixture "$agents/fixture"
    echo "setup: test hosts up, glibc-2.28 fixture agent built"
fi

# The aarch64 agent: rust-std for aarch64-unknown-linux-musl (rustup), linked by the
# toolchain's own rust-lld (no cross C toolchain needed), run by qemu-user-static
# through binfmt_misc. Without any of it the per-architecture tests fail and say why.
arm=aarch64-unknown-linux-musl
setup_arm() {
    local conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        if [ ! -e "$conf" ]; then
            apt-get -o DPkg::Lock::Timeout=300 install -y -q qemu-user-static >/dev/null ||
                { apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null && apt-get -o DPkg::Lock::Timeout=300 install -y -q qemu-user-static >/dev/null; }
        fi
        [ -e /proc/sys/fs/binfmt_misc/register ] ||
            mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
        # Debian's entry has the F flag: the interpreter is opened now, so
        # containers run aarch64 programs too.
        cat "$conf" >/proc/sys/fs/binfmt_misc/register
    fi
    rustup target list --installed 2>/dev/null | grep -qx "$arm" || rustup target add "$arm"
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
        cargo build --quiet -p chopsticks-tests --bin fixture --target "$arm"
    cp -f "target/$arm/debug/fixture" "$agents/fixture-aarch64"
}
if setup_arm; then
    echo "setup: aarch64 fixture agent built, qemu-user registered for aarch64"
else
    rm -f "$agents/fixture-aarch64"
    echo "setup: WARNING: no aarch64 agent or no qemu-user for it; the per-architecture tests will fail and say why" >&2
fi

# ansible-core, for tests/tests/ansible (the kit's inventories and patterns,
# ops::line and ops::block, against Ansible's own), in a virtual environment of
# its own at target/testhosts/ansible, pinned (as the test's ANSIBLE is): a new
# release is a deliberate change.
ansible_version=2.19.14
setup_ansible() {
    local venv=$state/ansible have
    have=$("$venv/bin/ansible-inventory" --version 2>/dev/null || true)
    [[ $have == *"[core $ansible_version]"* ]] && return 0
    rm -rf "$venv"
    python3 -m venv "$venv" 2>/dev/null || {
        rm -rf "$venv"
        apt-get -o DPkg::Lock::Timeout=300 install -y -q python3-venv >/dev/null ||
            { apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null && apt-get -o DPkg::Lock::Timeout=300 install -y -q python3-venv >/dev/null; }
        python3 -m venv "$venv"
    }
    timeout 600 "$venv/bin/pip" install --quiet --disable-pip-version-check "ansible-core==$ansible_version"
}
if setup_ansible; then
    echo "setup: ansible-core $ansible_version in $state/ansible"
else
    echo "setup: WARNING: could not install ansible-core $ansible_version; tests/tests/ansible will fail and say why" >&2
fi
