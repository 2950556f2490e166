//! The bootstrap: one `sh` script that either `exec`s the cached agent or
//! asks for it, installs it and `exec`s it. Every kind of tunnel but the
//! local one runs it on the host: ssh through the login shell, docker and
//! commands as an argument of `sh -c`. `docs/BOOTSTRAP.md` walks through it.

use std::sync::Arc;

use super::image::Image;
use super::Limits;
use crate::contract::{
    AGENT_ENTRY_ARGS, ENV_AGENT, ENV_AGENT_SHA256, ENV_LOG_LEVEL, ERROR_MARKER, SUDO_PROMPT,
    UPLOAD_MARKER,
};
use crate::tunnel::arch::uname_pattern;

/// The first line: which agent (its hash `H` and size `N`) the host runs,
/// by its `uname -m` when there are agents for other machines.
fn which_agent(image: &Image, others: &[(String, Arc<Image>)], nonce: &str) -> String {
    if others.is_empty() {
        return format!("H={} N={} T={nonce}", image.sha256, image.size);
    }
    let cases: String = others
        .iter()
        .map(|(arch, other)| {
            let pattern = uname_pattern(arch);
            format!("{pattern}) H={} N={};; ", other.sha256, other.size)
        })
        .collect();
    format!(
        "T={nonce}; case $(uname -m) in {cases}*) H={} N={};; esac",
        image.sha256, image.size
    )
}

/// How the agent runs as another user: `sudo -u user`, non-interactive
/// (`-n`), or answering sudo's password prompt from the tunnel's password
/// source (`-S`, the prompt [`SUDO_PROMPT`] on stderr, the password once on
/// the agent's stdin).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sudo<'a> {
    pub user: &'a str,
    pub password: bool,
}

impl Sudo<'_> {
    fn args(self) -> Vec<&'static str> {
        match self.password {
            true => vec!["sudo", "-S", "-p", SUDO_PROMPT],
            false => vec!["sudo", "-n"],
        }
    }
}

/// The command for a login shell (ssh): `exec /bin/sh -c '<script>'`,
/// through sudo when asked. The script contains no `'`, `!` or newline,
/// so any login shell passes it to `sh` intact.
pub(crate) fn login_command(script: &str, sudo: Option<Sudo<'_>>) -> String {
    debug_assert!(!script.contains(['\'', '!', '\n']), "{script}");
    match sudo {
        Some(sudo) => format!(
            "exec {} -u {} -- /bin/sh -c '{script}'",
            sudo.args().join(" "),
            sudo.user
        ),
        None => format!("exec /bin/sh -c '{script}'"),
    }
}

/// The same as argument vector, for what runs a program directly
/// (`docker exec`, a user's command): `sh -c <script>`, through sudo when
/// asked.
pub(crate) fn sh_argv(script: String, sudo: Option<Sudo<'_>>) -> Vec<String> {
    let sh = ["sh".to_owned(), "-c".to_owned(), script];
    match sudo {
        Some(sudo) => sudo
            .args()
            .into_iter()
            .chain(["-u", sudo.user, "--"])
            .map(str::to_owned)
            .chain(sh)
            .collect(),
        None => sh.into(),
    }
}

/// Where no cache directory can hold the agent (every candidate is
/// noexec or read-only), the bootstrap receives it into a `memfd_create`
/// file and runs it from there. A shell cannot make such a file, so perl
/// does (perl-base is part of every Debian and Ubuntu and of most other
/// distributions): it asks the kernel for the file (by the system call's
/// number for the host's machine), writes the unpacked upload into it,
/// checks its SHA-256 with `sha256sum`, and `exec`s it with the
/// session's input, which it gets on fd 3. Each session uploads the agent
/// again: there is nowhere to keep it. `vm.memfd_noexec=2` forbids this,
/// and is said so. ([`MEMORY`] is the template: `%UPLOAD%` and `%ERROR%`
/// the markers, `%ARGS%` the agent's arguments.)
fn from_memory(args: &str) -> String {
    let error = format!("{ERROR_MARKER} $T");
    MEMORY
        .replace("%UPLOAD%", UPLOAD_MARKER)
        .replace("%ERROR%", &error)
        .replace("%ARGS%", args)
}

/// See [`from_memory`].
const MEMORY: &str = concat!(
    r#"w="no cache directory that is ours, writable and not mounted noexec (tried chopsticks-$u in ${XDG_CACHE_HOME:-$HOME/.cache}, /dev/shm, /tmp and /var/tmp)"; export w; "#,
    r#"command -v perl >/dev/null 2>&1 || { echo "%ERROR% $w, and no perl to run the agent from memory"; exit 1; }; "#,
    r#"[ "$(cat /proc/sys/vm/memfd_noexec 2>/dev/null)" = 2 ] && { echo "%ERROR% $w, and vm.memfd_noexec=2 forbids running it from memory"; exit 1; }; "#,
    r#"case $(uname -m) in x86_64) m=319;; aarch64|arm64) m=279;; i?86) m=356;; armv*) m=385;; riscv64) m=279;; ppc64*) m=360;; s390x) m=350;; loongarch64) m=279;; "#,
    r#"*) echo "%ERROR% $w, and running it from memory is not known on $(uname -m)"; exit 1;; esac; "#,
    r#"echo "%UPLOAD% $T $(uname -s) $(uname -m)"; read z c || exit 1; "#,
    r#"{ { if [ "$c" = raw ]; then head -c "$z"; else head -c "$z" | gzip -dc; fi; } | perl -e "sub f { print STDOUT \"%ERROR% \", @_, \"\n\"; exit 1 } "#,
    r#"\$n=\"chopsticks\"; \$f=syscall($m,\$n,16); \$f=syscall($m,\$n,0) if \$f<0; "#,
    r#"\$f>=0 or f(\$ENV{w}, \"; running it from memory failed: memfd_create: \$^E\"); "#,
    r#"open(\$o,\">&=\",\$f) or f(\"memfd: \$^E\"); binmode STDIN; "#,
    r#"while (read(STDIN,\$b,65536)) { syswrite(\$o,\$b)==length(\$b) or f(\"writing the agent into memory: \$^E\") } "#,
    r#"\$h=(split / /, qx{sha256sum /proc/\$\$/fd/\$f})[0]; "#,
    r#"\$h eq \"$H\" or f(\"the agent received into memory does not match: sha256 \$h, expected $H\"); "#,
    r#"open(STDIN,\"<&3\") or f(\"stdin: \$^E\"); "#,
    r#"exec {\"/proc/self/fd/\$f\"} \"chopsticks-agent\", @ARGV; "#,
    r#"f(\"running the agent from memory failed (exec: \$^E)\")" -- %ARGS%; } 3<&0; exit $?"#,
);

/// The script for one session: `image` is what the host should run (or,
/// on a machine of `others`, that machine's agent), `nonce` the session's,
/// `log_level` the controller's (0 = off ... 5), `limits` where the agent
/// sits and its bounds.
pub(crate) fn script(
    image: &Image,
    others: &[(String, Arc<Image>)],
    nonce: &str,
    log_level: u8,
    limits: Limits,
) -> String {
    let limits: Vec<String> = limits
        .env()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let names: Vec<&str> = limits
        .iter()
        .filter_map(|kv| kv.split('=').next())
        .collect();
    let args = AGENT_ENTRY_ARGS.join(" ");
    let dirs = r#""${XDG_CACHE_HOME:-$HOME/.cache}" /dev/shm /tmp /var/tmp"#;
    [
        which_agent(image, others, nonce),
        // The uid without running `id` (a fork and an exec on every start):
        // the effective uid of /proc/self/status, read by the shell itself.
        "u=; { while read k r e x; do [ \"$k\" = Uid: ] && u=$e && break; done; } \
         2>/dev/null </proc/self/status; [ -n \"$u\" ] || u=$(id -u) || exit 1"
            .into(),
        format!(
            "{ENV_AGENT}=$T {ENV_AGENT_SHA256}=$H {ENV_LOG_LEVEL}={log_level} {}",
            limits.join(" ")
        ),
        format!(
            "export {ENV_AGENT} {ENV_AGENT_SHA256} {ENV_LOG_LEVEL} {}",
            names.join(" ")
        ),
        // Warm: a cached agent, a file (not a link) that we own (another
        // user who can write the directory could plant one, with a fresh
        // mark) in a directory we own, whose hash was checked since it last
        // changed: `.H.ok`, made after a check, is newer than the file. A
        // file changed since (truncated, tampered) has its size and hash
        // checked again; one that fails is removed, and the cold path below
        // uploads a good copy in the same session. Each start renews the
        // mark: what pruning reads as "in use". A marked start runs no
        // program but the agent.
        format!(
            "for c in {dirs}; do p=$c/chopsticks-$u; [ -L \"$p\" ] && continue; \
             [ -L \"$p/$H\" ] && continue; \
             if [ -f \"$p/$H\" ] && [ -s \"$p/$H\" ] && [ -O \"$p/$H\" ] && [ -x \"$p/$H\" ] && [ -O \"$p\" ]; then \
             if [ \"$p/.$H.ok\" -nt \"$p/$H\" ] || {{ [ $(wc -c <\"$p/$H\") -eq $N ] && \
             {{ set -- $(sha256sum \"$p/$H\" 2>/dev/null); [ \"$1\" = \"$H\" ]; }}; }}; \
             then {{ : >\"$p/.$H.ok\"; }} 2>/dev/null; \
             exec \"$p/$H\" {args}; fi; \
             rm -f \"$p/$H\" \"$p/.$H.ok\"; fi; done"
        ),
        // Cold: the first directory we own, can write and can execute in.
        // The probe is an empty file of this session's (another session
        // writing a shared one while this one runs it would fail with "text
        // file busy"): where exec works, sh runs it as an empty script; on a
        // noexec mount exec fails (busybox `test -x` would not notice).
        "d=".into(),
        format!(
            "for c in {dirs}; do p=$c/chopsticks-$u; mkdir -p \"$c\" 2>/dev/null; \
             mkdir -m 700 \"$p\" 2>/dev/null; [ -L \"$p\" ] && continue; \
             [ -d \"$p\" ] && [ -O \"$p\" ] && [ -w \"$p\" ] || continue; \
             chmod 700 \"$p\" 2>/dev/null; f=$p/.probe.$T; \
             {{ : >\"$f\" && chmod 700 \"$f\" && \"$f\"; }} 2>/dev/null; r=$?; rm -f \"$f\"; \
             [ $r -eq 0 ] || continue; d=$p; break; done"
        ),
        // No such directory: run the agent from memory.
        format!("[ -n \"$d\" ] || {{ {}; }}", from_memory(&args)),
        format!("echo \"{UPLOAD_MARKER} $T $(uname -s) $(uname -m)\""),
        "read z c || exit 1".into(),
        "t=$d/.$H.$$".into(),
        format!(
            "{{ if [ \"$c\" = raw ]; then head -c \"$z\"; else head -c \"$z\" | gzip -dc; fi; }} \
             >\"$t\" || {{ rm -f \"$t\"; \
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
        // Checked just now: the mark is newer than the file.
        ": >\"$d/.$H.ok\"".into(),
        // Keep the three newest agents (dotfiles are not listed) and any
        // other that started within the hour (its mark is that recent:
        // another program may be about to exec it), and the marks of those
        // that are left. One `find` lists the recent marks (one per file
        // cost 250 ms for 70 cached agents).
        "r=$(find \"$d\"/.*.ok -mmin -60 2>/dev/null)".into(),
        "ls -t \"$d\" | tail -n +4 | while read o; do [ \"$o\" = \"$H\" ] && continue; \
         case \"$r\" in *\"/.$o.ok\"*) ;; *) rm -f \"$d/$o\";; esac; done"
            .into(),
        "for m in \"$d\"/.*.ok; do o=${m#\"$d\"/.}; [ -f \"$d/${o%.ok}\" ] || rm -f \"$m\"; done"
            .into(),
        format!("exec \"$d/$H\" {args}"),
    ]
    .join("; ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn test_script() -> String {
        let image = Image::of(&std::env::current_exe().unwrap(), true).unwrap();
        let limits = Limits {
            depth: 1,
            max_depth: 2,
            max_call_threads: 1024,
            check_only: false,
        };
        script(&image, &[], "0123456789abcdef", 3, limits)
    }

    #[test]
    fn the_script_survives_any_login_shell() {
        let script = test_script();
        let root = Sudo {
            user: "root",
            password: false,
        };
        for sudo in [None, Some(root)] {
            let command = login_command(&script, sudo);
            let quoted = command.split_once('\'').unwrap().1.trim_end_matches('\'');
            assert_eq!(quoted, script);
            assert!(!script.contains(['\'', '!', '\n']), "{script}");
        }
        assert_eq!(sh_argv(script.clone(), None), ["sh", "-c", &script]);
        assert_eq!(
            sh_argv(script.clone(), Some(root))[..5],
            ["sudo", "-n", "-u", "root", "--"]
        );
        let asking = Sudo {
            user: "root",
            password: true,
        };
        assert_eq!(
            sh_argv(script.clone(), Some(asking))[..7],
            ["sudo", "-S", "-p", SUDO_PROMPT, "-u", "root", "--"]
        );
        assert!(login_command(&script, Some(asking)).starts_with(&format!(
            "exec sudo -S -p {SUDO_PROMPT} -u root -- /bin/sh -c '"
        )));
    }

    #[test]
    fn the_script_is_valid_sh() {
        let status = std::process::Command::new("sh")
            .args(["-n", "-c", &test_script()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Without perl, the memory path says what it lacks.
    #[test]
    fn the_memory_path_names_what_it_lacks() {
        let probe = format!("PATH=/nonexistent; T=n0; u=7; {}", from_memory("ARGS"));
        let out = std::process::Command::new("sh")
            .args(["-c", &probe])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.starts_with("chopsticks-error n0 no cache directory that is ours")
                && said
                    .trim_end()
                    .ends_with("and no perl to run the agent from memory"),
            "{said}"
        );
        assert!(!out.status.success());
    }

    /// With agents for other machines, the first line picks `H` and `N` by
    /// `uname -m`; this machine gets the default.
    #[test]
    fn the_script_picks_the_agent_by_machine() {
        let image = Image::of(&std::env::current_exe().unwrap(), true).unwrap();
        let arm = Image::of(Path::new("/bin/sh"), true).unwrap();
        let line = which_agent(&image, &[("aarch64".into(), Arc::clone(&arm))], "n0");
        assert!(!line.contains(['\'', '!', '\n']), "{line}");
        for (machine, (h, n)) in [
            ("arm64", (&arm.sha256, arm.size)),
            ("aarch64", (&arm.sha256, arm.size)),
            ("x86_64", (&image.sha256, image.size)),
        ] {
            let probe = format!("uname() {{ echo {machine}; }}; {line}; echo \"$H $N $T\"");
            let out = std::process::Command::new("sh")
                .args(["-c", &probe])
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&out.stdout);
            assert_eq!(said.trim(), format!("{h} {n} n0"), "{machine}: {line}");
        }
    }
}
