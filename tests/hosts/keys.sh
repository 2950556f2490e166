# shellcheck shell=bash
# Part of tests/hosts/up.sh, which sources it (don't run it): the client key and the one
# throwaway host key every test host uses, kept in the state dir across runs.

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
