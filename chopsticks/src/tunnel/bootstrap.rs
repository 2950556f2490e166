//! The bootstrap: one `sh` script, run by the remote login shell, that either
//! `exec`s the cached agent or asks for it, installs it and `exec`s it.
//! `docs/BOOTSTRAP.md` walks through it.

use super::image::Image;
use super::AGENT_ENTRY_ARGS;

/// Markers the script prints, each followed by the session nonce.
pub(crate) const UPLOAD_MARKER: &str = "chopsticks-upload";
pub(crate) const ERROR_MARKER: &str = "chopsticks-error";

/// The remote command: `exec /bin/sh -c '<script>'`, through `sudo -n` when
/// asked. The script contains no `'`, `!` or newline, so any login shell
/// passes it to `sh` intact.
pub(crate) fn remote_command(image: &Image, nonce: &str, sudo: Option<&str>) -> String {
    let script = script(image, nonce);
    debug_assert!(!script.contains(['\'', '!', '\n']), "{script}");
    match sudo {
        Some(user) => format!("exec sudo -n -u {user} -- /bin/sh -c '{script}'"),
        None => format!("exec /bin/sh -c '{script}'"),
    }
}

fn script(image: &Image, nonce: &str) -> String {
    let args = AGENT_ENTRY_ARGS.join(" ");
    let dirs = r#""${XDG_CACHE_HOME:-$HOME/.cache}" /dev/shm /tmp /var/tmp"#;
    [
        format!("H={} N={} T={nonce}", image.sha256, image.size),
        "u=$(id -u) || exit 1".into(),
        format!(
            "CHOPSTICKS_AGENT=$T CHOPSTICKS_AGENT_SHA256=$H CHOPSTICKS_LOG_LEVEL={}",
            super::log_level()
        ),
        "export CHOPSTICKS_AGENT CHOPSTICKS_AGENT_SHA256 CHOPSTICKS_LOG_LEVEL".into(),
        // Warm: a cached agent of the right size in a directory we own.
        format!(
            "for c in {dirs}; do p=$c/chopsticks-$u; [ -L \"$p\" ] && continue; \
             if [ -f \"$p/$H\" ] && [ -x \"$p/$H\" ] && [ -O \"$p\" ] \
             && [ $(wc -c <\"$p/$H\") -eq $N ]; then CHOPSTICKS_AGENT_CHECK=1; \
             export CHOPSTICKS_AGENT_CHECK; exec \"$p/$H\" {args}; fi; done"
        ),
        // Cold: the first directory we own, can write and can execute in.
        // The probe is an empty file: where exec works, sh runs it as an
        // empty script; on a noexec mount exec fails (busybox `test -x`
        // would not notice).
        "d=".into(),
        format!(
            "for c in {dirs}; do p=$c/chopsticks-$u; mkdir -p \"$c\" 2>/dev/null; \
             mkdir -m 700 \"$p\" 2>/dev/null; [ -L \"$p\" ] && continue; \
             [ -d \"$p\" ] && [ -O \"$p\" ] && [ -w \"$p\" ] || continue; \
             chmod 700 \"$p\" 2>/dev/null; f=$p/.probe; \
             {{ : >\"$f\" && chmod 700 \"$f\" && \"$f\"; }} 2>/dev/null || continue; \
             d=$p; break; done"
        ),
        format!(
            "[ -n \"$d\" ] || {{ echo \"{ERROR_MARKER} $T no cache directory that is ours, \
             writable and not mounted noexec: tried chopsticks-$u in ${{XDG_CACHE_HOME:-$HOME/.cache}}, \
             /dev/shm, /tmp and /var/tmp\"; exit 1; }}"
        ),
        format!("echo \"{UPLOAD_MARKER} $T $(uname -s) $(uname -m)\""),
        "read z || exit 1".into(),
        "t=$d/.$H.$$".into(),
        format!(
            "head -c \"$z\" | gzip -dc >\"$t\" || {{ rm -f \"$t\"; \
             echo \"{ERROR_MARKER} $T receiving the agent into $d failed\"; exit 1; }}"
        ),
        format!(
            "set -- $(sha256sum \"$t\" 2>/dev/null); [ \"$1\" = \"$H\" ] || {{ rm -f \"$t\"; \
             echo \"{ERROR_MARKER} $T the uploaded agent does not match: sha256 $1, expected $H \
             (is sha256sum installed?)\"; exit 1; }}"
        ),
        format!(
            "chmod 700 \"$t\" && mv -f \"$t\" \"$d/$H\" || {{ rm -f \"$t\"; \
             echo \"{ERROR_MARKER} $T cannot install the agent in $d\"; exit 1; }}"
        ),
        // Keep the three newest agents (dotfiles are not listed).
        "ls -t \"$d\" | tail -n +4 | while read o; do [ \"$o\" = \"$H\" ] || rm -f \"$d/$o\"; done"
            .into(),
        format!("exec \"$d/$H\" {args}"),
    ]
    .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_survives_any_login_shell() {
        let image = Image::of(&std::env::current_exe().unwrap()).unwrap();
        for sudo in [None, Some("root")] {
            let command = remote_command(&image, "0123456789abcdef", sudo);
            let script = command.split_once('\'').unwrap().1.trim_end_matches('\'');
            assert!(!script.contains(['\'', '!', '\n']), "{script}");
        }
    }

    #[test]
    fn the_script_is_valid_sh() {
        let image = Image::of(&std::env::current_exe().unwrap()).unwrap();
        let command = remote_command(&image, "0123456789abcdef", None);
        let script = command.split_once('\'').unwrap().1.trim_end_matches('\'');
        let status = std::process::Command::new("sh")
            .args(["-n", "-c", script])
            .status()
            .unwrap();
        assert!(status.success());
    }
}
