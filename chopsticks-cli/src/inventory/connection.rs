//! How an inventory says to reach a host: [`Settings`], read from
//! chopsticks' own fields or from Ansible's connection variables, and the
//! checks that keep those values from reaching a shell on this machine.
//!
//! Ansible's connection variables this reads: `ansible_connection` (ssh,
//! local, docker), `ansible_host`, `ansible_port`, `ansible_user`,
//! `ansible_ssh_private_key_file`, `ansible_become` and
//! `ansible_become_user`, and their other spellings (`ansible_ssh_host`,
//! `ansible_sudo_user`, the docker plugin's `ansible_docker_host` ...;
//! where two are set the later-listed one wins, as in Ansible). Those that
//! would change who a host is reached as, or how, and that it cannot
//! honour (passwords and keys, extra arguments and programs, another become
//! method or connection) are refused, naming the host, rather than ignored:
//! a run must not reach a host some other way than the inventory says.
//! Those that only tune ssh (timeouts, retries, pipelining, control paths)
//! or loosen its checks (`ansible_host_key_checking`) are not applied: ssh's
//! own configuration decides.

use std::path::PathBuf;

use serde_json::{Map, Value};

/// How a host is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Through `ssh` (Ansible's `ssh`, `smart`, `paramiko`).
    Ssh,
    /// On this machine, as a subprocess (`local`).
    Local,
    /// Into a running container with `docker exec` (`docker`,
    /// `community.docker.docker`): the address, or else the host's name,
    /// names the container.
    Docker,
}

impl std::str::FromStr for Connection {
    type Err = String;

    fn from_str(s: &str) -> Result<Connection, String> {
        let name = s.strip_prefix("ansible.builtin.").unwrap_or(s);
        match name {
            "ssh" | "smart" | "paramiko" | "paramiko_ssh" => Ok(Connection::Ssh),
            "local" => Ok(Connection::Local),
            "docker" | "community.docker.docker" => Ok(Connection::Docker),
            _ => Err(format!(
                "the connection {s:?} is not one chopsticks has: ssh, local or docker"
            )),
        }
    }
}

/// How to reach a host, from an inventory: each `None` leaves ssh's own
/// configuration (or the flags) in charge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// How: ssh, local or docker (`ansible_connection`; ssh when `None`).
    pub connection: Option<Connection>,
    /// The address to connect to, when it is not the host's name
    /// (`ansible_host`); for docker, the container.
    pub address: Option<String>,
    /// The login user (`ansible_user`).
    pub user: Option<String>,
    /// The ssh port (`ansible_port`).
    pub port: Option<u16>,
    /// The ssh key to log in with (`ansible_ssh_private_key_file`).
    pub identity_file: Option<PathBuf>,
    /// Run as this user through sudo (`ansible_become`,
    /// `ansible_become_user`).
    pub sudo: Option<String>,
}

impl Settings {
    /// `other`'s values where it has them, ours elsewhere.
    pub(crate) fn overlay(&mut self, other: &Settings) {
        let Settings {
            connection,
            address,
            user,
            port,
            identity_file,
            sudo,
        } = other.clone();
        self.connection = connection.or(self.connection);
        self.address = address.or(self.address.take());
        self.user = user.or(self.user.take());
        self.port = port.or(self.port);
        self.identity_file = identity_file.or(self.identity_file.take());
        self.sudo = sudo.or(self.sudo.take());
    }

    /// Refuses an address, user or sudo user that ssh or sudo could
    /// misread (see [`chopsticks::names`]).
    pub(crate) fn check(&self) -> Result<(), String> {
        if let Some(address) = &self.address {
            chopsticks::names::host(address).map_err(|e| format!("address: {e}"))?;
        }
        if let Some(user) = &self.user {
            chopsticks::names::user(user).map_err(|e| format!("user: {e}"))?;
        }
        if let Some(sudo) = &self.sudo {
            chopsticks::names::user(sudo).map_err(|e| format!("sudo: {e}"))?;
        }
        Ok(())
    }

    /// The settings Ansible's connection variables in `vars` (a host's,
    /// merged) give.
    ///
    /// # Errors
    /// A variable chopsticks cannot honour (a password, extra ssh
    /// arguments, another become method or connection), or a value that
    /// is not one (`ansible_become: maybe`): which, and what to do instead.
    pub fn from_ansible_vars(vars: &Map<String, Value>) -> Result<Settings, String> {
        refuse_unhonoured(vars)?;
        let text = |keys: &[&str]| -> Option<String> {
            // As in Ansible, the last-listed spelling that is set wins.
            keys.iter().rev().find_map(|k| match vars.get(*k)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let connection = text(&["ansible_connection"])
            .map(|c| c.parse().map_err(|e| format!("ansible_connection: {e}")))
            .transpose()?;
        let port = text(&["ansible_port", "ansible_ssh_port"])
            .map(|p| match p.trim().parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(format!("ansible_port: {p:?} is not a port (1 to 65535)")),
            })
            .transpose()?;
        let become_ = match vars.get("ansible_become") {
            None => false,
            Some(value) => boolean(value).ok_or_else(|| {
                format!(
                    "ansible_become: {value} is not a boolean (yes/no, true/false, on/off, 1/0)"
                )
            })?,
        };
        if become_ {
            if let Some(method) = text(&["ansible_become_method"]) {
                let method = method.strip_prefix("ansible.builtin.").unwrap_or(&method);
                if method != "sudo" {
                    return Err(format!(
                        "ansible_become_method: chopsticks becomes another user through sudo \
                         only, not {method}: set it to sudo, or leave ansible_become off"
                    ));
                }
            }
            for key in [
                "ansible_become_exe",
                "ansible_sudo_exe",
                "ansible_become_flags",
                "ansible_sudo_flags",
            ] {
                if vars.get(key).is_some_and(|v| !is_empty(v)) {
                    return Err(format!(
                        "{key}: chopsticks runs `sudo -n -u USER` (with -S under --ask-pass) \
                         and takes no other: leave it out"
                    ));
                }
            }
        }
        // The docker connection plugin reads its own spellings.
        let (address, user): (&[&str], &[&str]) = match connection {
            Some(Connection::Docker) => (
                &["ansible_host", "ansible_docker_host"],
                &["ansible_user", "ansible_docker_user"],
            ),
            _ => (
                &["ansible_host", "ansible_ssh_host"],
                &["ansible_user", "ansible_ssh_user"],
            ),
        };
        Ok(Settings {
            connection,
            address: text(address),
            user: text(user),
            port,
            identity_file: text(&["ansible_private_key_file", "ansible_ssh_private_key_file"])
                .map(PathBuf::from),
            sudo: become_.then(|| {
                text(&["ansible_become_user", "ansible_sudo_user"]).unwrap_or_else(|| "root".into())
            }),
        })
    }
}

/// Ansible's connection variables that chopsticks does not honour, and
/// what to do instead. Refused when set to anything but an empty value.
const UNHONOURED: &[(&[&str], &str)] = &[
    (
        &[
            "ansible_password",
            "ansible_ssh_pass",
            "ansible_ssh_password",
            "ansible_become_password",
            "ansible_become_pass",
            "ansible_sudo_pass",
            "ansible_sudo_password",
            "ansible_private_key",
            "ansible_ssh_private_key",
            "ansible_private_key_passphrase",
            "ansible_ssh_private_key_passphrase",
            "ansible_paramiko_pass",
            "ansible_paramiko_password",
        ],
        "chopsticks takes no password or key from an inventory: give --ask-pass (-k) to be asked \
         once, log in with a key file (ansible_ssh_private_key_file) or an ssh agent, or allow \
         sudo without a password (NOPASSWD)",
    ),
    (
        &[
            "ansible_ssh_common_args",
            "ansible_ssh_extra_args",
            "ansible_ssh_args",
            "ansible_sftp_extra_args",
            "ansible_scp_extra_args",
            "ansible_ssh_executable",
            "ansible_scp_executable",
            "ansible_sftp_executable",
            "ansible_ssh_pkcs11_provider",
            "ansible_docker_extra_args",
            "ansible_paramiko_proxy_command",
        ],
        "chopsticks runs no program and passes no options an inventory names (they would run on \
         this machine): put ssh options in an ssh config (-F FILE) and jump hosts in -J",
    ),
    (
        &[
            "ansible_paramiko_host",
            "ansible_paramiko_port",
            "ansible_paramiko_user",
            "ansible_paramiko_private_key_file",
        ],
        "chopsticks reaches a paramiko host through ssh, with ssh's variables: use \
         ansible_host, ansible_port, ansible_user and ansible_ssh_private_key_file",
    ),
];

fn refuse_unhonoured(vars: &Map<String, Value>) -> Result<(), String> {
    for (keys, instead) in UNHONOURED {
        if let Some(key) = keys
            .iter()
            .find(|k| vars.get(**k).is_some_and(|v| !is_empty(v)))
        {
            return Err(format!("{key}: {instead}"));
        }
    }
    Ok(())
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// A boolean as Ansible reads one (`y`, `yes`, `on`, `1`, `true`, `t` and
/// their opposites, in any case; `1` and `0` as numbers; null is false);
/// `None` for anything else.
pub fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Null => Some(false),
        Value::Number(n) => match n.as_f64()? {
            1.0 => Some(true),
            0.0 => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" => Some(true),
            "n" | "no" | "off" | "0" | "false" | "f" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Refuses a host name that is not one (see [`chopsticks::names::host`]):
/// it becomes ssh's destination. `docker:NAME` names a container.
pub(crate) fn check_host(name: &str) -> Result<(), String> {
    chopsticks::names::host(name.strip_prefix("docker:").unwrap_or(name))
}

/// Refuses a connection variable whose value ssh would hand to a shell
/// (`%h`, `%r` in a `ProxyCommand`) or read as an option: the address,
/// the user and the become user, by [`chopsticks::names`]' rules, and a
/// port that is not one.
pub(crate) fn check_var(key: &str, value: &Value) -> Result<(), String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Ok(()),
    };
    let checked = match key {
        "ansible_host" | "ansible_ssh_host" | "ansible_docker_host" => {
            chopsticks::names::host(&text)
        }
        "ansible_user"
        | "ansible_ssh_user"
        | "ansible_docker_user"
        | "ansible_become_user"
        | "ansible_sudo_user" => chopsticks::names::user(&text),
        "ansible_port" | "ansible_ssh_port" => match text.trim().parse::<u16>() {
            Ok(p) if p > 0 => Ok(()),
            _ => Err(format!("{text:?} is not a port (1 to 65535)")),
        },
        _ => Ok(()),
    };
    checked.map_err(|e| format!("{key}: {e}"))
}

/// [`check_var`] for every variable of a map.
pub(crate) fn check_vars<'a>(
    vars: impl IntoIterator<Item = (&'a String, &'a Value)>,
) -> Result<(), String> {
    vars.into_iter().try_for_each(|(k, v)| check_var(k, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn ansible_connection_variables_become_settings() {
        let read = Settings::from_ansible_vars(&vars(
            r#"{"ansible_host": "10.0.0.5", "ansible_port": "2222",
                "ansible_become": "yes", "ansible_user": "ops",
                "ansible_ssh_private_key_file": "~/.ssh/deploy",
                "ansible_connection": "smart", "ansible_python_interpreter": "/usr/bin/python3"}"#,
        ));
        assert_eq!(
            read.unwrap(),
            Settings {
                connection: Some(Connection::Ssh),
                address: Some("10.0.0.5".into()),
                user: Some("ops".into()),
                port: Some(2222),
                identity_file: Some("~/.ssh/deploy".into()),
                sudo: Some("root".into()),
            }
        );
        // The later-listed spelling wins, as in Ansible.
        let both = vars(r#"{"ansible_host": "a", "ansible_ssh_host": "b"}"#);
        assert_eq!(
            Settings::from_ansible_vars(&both)
                .unwrap()
                .address
                .as_deref(),
            Some("b")
        );
        for (connection, is) in [
            ("local", Connection::Local),
            ("ansible.builtin.local", Connection::Local),
            ("community.docker.docker", Connection::Docker),
            ("paramiko", Connection::Ssh),
        ] {
            let v = vars(&format!(r#"{{"ansible_connection": "{connection}"}}"#));
            assert_eq!(
                Settings::from_ansible_vars(&v).unwrap().connection,
                Some(is)
            );
        }
    }

    /// Ansible's booleans, and what it would take for false silently.
    #[test]
    fn become_takes_ansible_booleans_and_refuses_the_rest() {
        for (value, sudo) in [
            (r#""Yes""#, true),
            (r#""on""#, true),
            (r#""T""#, true),
            (r#""y""#, true),
            ("1", true),
            (r#""1""#, true),
            ("true", true),
            (r#""off""#, false),
            (r#""N""#, false),
            ("0", false),
            ("null", false),
        ] {
            let v = vars(&format!(r#"{{"ansible_become": {value}}}"#));
            let settings = Settings::from_ansible_vars(&v).unwrap();
            assert_eq!(settings.sudo.is_some(), sudo, "{value}");
        }
        let err = Settings::from_ansible_vars(&vars(r#"{"ansible_become": "maybe"}"#));
        assert!(err.unwrap_err().contains("not a boolean"));
    }

    #[test]
    fn what_chopsticks_cannot_honour_is_refused_with_what_to_do() {
        for (json, says) in [
            (r#"{"ansible_password": "hunter2"}"#, "--ask-pass"),
            (r#"{"ansible_become_pass": "x"}"#, "NOPASSWD"),
            (
                r#"{"ansible_ssh_common_args": "-o ProxyCommand=\"nc %h %p\""}"#,
                "ssh config",
            ),
            (r#"{"ansible_ssh_executable": "/tmp/x"}"#, "would run"),
            (
                r#"{"ansible_become": true, "ansible_become_method": "su"}"#,
                "not su",
            ),
            (
                r#"{"ansible_become": true, "ansible_become_flags": "-i"}"#,
                "sudo -n -u USER",
            ),
            (r#"{"ansible_connection": "winrm"}"#, "\"winrm\" is not one"),
            (r#"{"ansible_port": "ssh"}"#, "not a port"),
        ] {
            let err = Settings::from_ansible_vars(&vars(json)).unwrap_err();
            assert!(err.contains(says), "{json}: {err}");
        }
        // The later-listed spelling of the become user wins; docker's own spellings.
        let sudo = vars(
            r#"{"ansible_become": 1, "ansible_become_user": "a", "ansible_sudo_user": "app"}"#,
        );
        assert_eq!(
            Settings::from_ansible_vars(&sudo).unwrap().sudo.as_deref(),
            Some("app")
        );
        let docker = vars(
            r#"{"ansible_connection": "docker", "ansible_docker_host": "ctr", "ansible_docker_user": "app"}"#,
        );
        let docker = Settings::from_ansible_vars(&docker).unwrap();
        assert_eq!(
            (docker.address.as_deref(), docker.user.as_deref()),
            (Some("ctr"), Some("app"))
        );
        for key in [
            "ansible_paramiko_proxy_command",
            "ansible_private_key",
            "ansible_paramiko_host",
        ] {
            let v = vars(&format!(r#"{{"{key}": "x"}}"#));
            let err = Settings::from_ansible_vars(&v).unwrap_err();
            assert!(err.starts_with(key), "{err}");
        }
        // Empty values and a method that goes unused are no instruction.
        let fine = r#"{"ansible_ssh_extra_args": "", "ansible_password": null,
                       "ansible_become_method": "su"}"#;
        Settings::from_ansible_vars(&vars(fine)).unwrap();
    }
}
