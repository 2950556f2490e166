//! What a host name, an address, a user or a jump host may be, where it
//! becomes part of a command line: ssh substitutes host names and users
//! into `ProxyCommand` (its own, from `-J`, or one in `~/.ssh/config` with
//! `%h` or `%r`), which `/bin/sh` runs on this machine. A name from an
//! inventory (often generated from a CMDB or a cloud API that others write
//! to) must never be able to say `$(...)`.
//!
//! Tunnels check every such value before anything runs
//! ([`TunnelBuilder`](crate::TunnelBuilder) gives
//! [`Error::Config`](crate::Error::Config)); these functions let a tool
//! that reads names from elsewhere refuse them early, in its own words (the
//! kit names the inventory's file and line).
//!
//! ```
//! use chopsticks::names;
//!
//! assert!(names::host("web1.example").is_ok());
//! assert!(names::host("fe80::1%eth0").is_ok());
//! assert!(names::host("x$(touch /tmp/pwned)").is_err());
//! assert!(names::jump_hosts("ops@bastion:2222,[2001:db8::1]:22").is_ok());
//! ```

/// The longest host name or address taken (DNS names are at most 253).
pub const MAX_HOST: usize = 255;

/// The longest user name taken.
pub const MAX_USER: usize = 64;

/// A host name, an ssh alias or an IP address as ssh takes it on its
/// command line: letters and digits (of any script: `příbor`, as an
/// internationalised name is written), `.`, `-`, `_`, and for IP literals `:`,
/// `%` (a zone: `fe80::1%eth0`) and surrounding `[...]`; not starting with
/// `-`, not `.` or `..`; at most [`MAX_HOST`] bytes. Nothing a shell would act on: no
/// quotes, backslashes, `$`, backticks, `;`, `&`, `|`, `<`, `>`, parentheses,
/// braces, `,`, `@`, `/`, `*`, whitespace or control characters.
///
/// # Errors
/// Why the value is not a host name, for an error that names where it
/// came from.
pub fn host(value: &str) -> Result<(), String> {
    let inner = match value.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .filter(|ip| ip.contains(':'))
            .ok_or_else(|| {
                format!("{value:?} is not a host name: `[...]` holds an IPv6 address")
            })?,
        None => value,
    };
    let why = if inner.is_empty() {
        "it is empty"
    } else if value.len() > MAX_HOST {
        "it is longer than 255 bytes"
    } else if inner.starts_with('-') {
        "it starts with `-` and would be taken for an option"
    } else if inner == "." || inner == ".." {
        "it names a directory where a path is made of it (`{host}` in a fetch)"
    } else if let Some(c) = inner
        .chars()
        .find(|c| !(c.is_alphanumeric() || "._-:%".contains(*c)))
    {
        return Err(format!(
            "{value:?} is not a host name or address: {} is not allowed (letters, digits and \
             . _ - : % only)",
            shown(c)
        ));
    } else {
        return Ok(());
    };
    Err(format!("{value:?} is not a host name or address: {why}"))
}

/// A user name as a login and ssh's `%r` take it: letters, digits, `.`,
/// `_`, `-`, `@` (a domain user: `alice@corp`) and a trailing `$`; not
/// starting with `-`; at most [`MAX_USER`] bytes.
///
/// # Errors
/// Why the value is not a user name.
pub fn user(value: &str) -> Result<(), String> {
    let body = value.strip_suffix('$').unwrap_or(value);
    let why = if body.is_empty() {
        "it is empty"
    } else if value.len() > MAX_USER {
        "it is longer than 64 bytes"
    } else if body.starts_with('-') {
        "it starts with `-` and would be taken for an option"
    } else if let Some(c) = body
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-@".contains(*c)))
    {
        return Err(format!(
            "{value:?} is not a user name: {} is not allowed (letters, digits and . _ - @ only)",
            shown(c)
        ));
    } else {
        return Ok(());
    };
    Err(format!("{value:?} is not a user name: {why}"))
}

/// ssh's jump hosts (`-J`): `[user@]host[:port]`, several separated by
/// commas, each part as [`user`] and [`host`] take it (an IPv6 address
/// in brackets when a port follows: `[2001:db8::1]:22`).
///
/// # Errors
/// Which jump host is not one, and why.
pub fn jump_hosts(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(
            "no jump host given: expected [user@]host[:port], several separated by commas".into(),
        );
    }
    for jump in value.split(',') {
        let (login, rest) = match jump.rsplit_once('@') {
            Some((login, rest)) => (Some(login), rest),
            None => (None, jump),
        };
        if let Some(login) = login {
            user(login).map_err(|e| format!("the jump host {jump:?}: {e}"))?;
        }
        let name = match rest.rsplit_once(':') {
            // host:port, or [v6]:port; a bare v6 address has more colons.
            Some((name, port))
                if port.parse::<u16>().is_ok_and(|p| p > 0)
                    && (name.ends_with(']') || !name.contains(':')) =>
            {
                name
            }
            _ => rest,
        };
        host(name).map_err(|e| format!("the jump host {jump:?}: {e}"))?;
    }
    Ok(())
}

/// A character, as an error shows it.
fn shown(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\n' => "a newline".into(),
        '\t' => "a tab".into(),
        c if c.is_control() => format!("the control character {c:?}"),
        c => format!("`{c}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ssh, through a ProxyCommand's `%h`, would hand to a shell.
    const HOSTILE: [&str; 12] = [
        "x$(touch /tmp/pwned)",
        "x`id`",
        "x;id",
        "x'y",
        "x\"y",
        "x\\y",
        "x y",
        "x\ny",
        "x|id",
        "x&id",
        "-oProxyCommand=id",
        "x>y",
    ];

    #[test]
    fn host_names_and_addresses_are_taken_and_shell_words_are_not() {
        for good in [
            "web1",
            "web-01.example.com",
            "cs_many_07",
            "10.0.0.5",
            "::1",
            "fe80::1%eth0",
            "[2001:db8::1]",
            "příbor",
        ] {
            assert_eq!(host(good), Ok(()), "{good}");
        }
        for bad in HOSTILE.iter().copied().chain([
            "",
            "[10.0.0.1]",
            "a@b",
            "a/b",
            "a,b",
            "*",
            "a\u{202e}b",
            "a\u{a0}b",
            ".",
            "..",
        ]) {
            let err = host(bad).unwrap_err();
            assert!(err.contains("not a host name"), "{bad:?}: {err}");
        }
        assert!(host(&"a".repeat(256)).unwrap_err().contains("255"));
    }

    #[test]
    fn users_and_jump_hosts() {
        for good in ["deploy", "alice@corp", "MACHINE$", "www-data"] {
            assert_eq!(user(good), Ok(()), "{good}");
        }
        for bad in HOSTILE.iter().copied().chain(["", "a:b", "a%b"]) {
            assert!(user(bad).is_err(), "{bad:?}");
        }
        for good in [
            "bastion",
            "ops@bastion:2222",
            "a,b@c:22",
            "[2001:db8::1]:22",
            "fe80::1",
        ] {
            assert_eq!(jump_hosts(good), Ok(()), "{good}");
        }
        for bad in HOSTILE
            .iter()
            .copied()
            .chain(["", "a,,b", "a@b$(id)", "x$(id)@b"])
        {
            let err = jump_hosts(bad).unwrap_err();
            assert!(
                err.contains("jump host") || err.contains("not a"),
                "{bad:?}: {err}"
            );
        }
    }
}
