//! apt, on Debian and its kin: planned from `apt-get -s`.

use super::{Installed, Manager, Step, Tool, Want};
use crate::ops::OpError;

/// How long apt waits for another package manager's lock (unattended
/// upgrades, a second run) before it fails.
const LOCK_WAIT_SECS: u32 = 120;

pub(super) struct Apt;

impl Manager for Apt {
    fn program(&self) -> &'static str {
        "apt-get"
    }

    fn detect(&self) -> bool {
        super::has("/var/lib/dpkg/status") && super::tool(self.program()).is_some()
    }

    fn env(&self) -> Vec<(String, String)> {
        // English messages (their advice is read from them); no prompts;
        // needrestart lists, never restarts what the plan does not say.
        vec![
            ("LC_ALL".into(), "C".into()),
            ("DEBIAN_FRONTEND".into(), "noninteractive".into()),
            ("APT_LISTCHANGES_FRONTEND".into(), "none".into()),
            ("NEEDRESTART_MODE".into(), "l".into()),
        ]
    }

    fn common(&self) -> Vec<String> {
        vec!["-o".into(), format!("DPkg::Lock::Timeout={LOCK_WAIT_SECS}")]
    }

    fn refresh(&self) -> &'static [&'static str] {
        &["update", "-q"]
    }

    fn args(&self, want: Want) -> &'static [&'static str] {
        match want {
            Want::Present | Want::Latest => &[
                "install",
                "-y",
                "-q",
                "-o",
                "Dpkg::Options::=--force-confdef",
                "-o",
                "Dpkg::Options::=--force-confold",
            ],
            Want::Absent => &["remove", "-y", "-q"],
        }
    }

    fn simulate(
        &self,
        tool: &Tool,
        want: Want,
        names: &[String],
        _installed: &Installed,
    ) -> Result<Vec<Step>, OpError> {
        let verb = match want {
            Want::Present | Want::Latest => "install",
            Want::Absent => "remove",
        };
        let out = tool.read_only(&[verb, "-s"], names)?;
        Ok(steps(&out.stdout))
    }
}

/// The steps of `apt-get -s` output: `Inst NAME [OLD] (NEW ...)` and
/// `Remv NAME [OLD]` lines.
fn steps(out: &str) -> Vec<Step> {
    out.lines()
        .filter_map(|line| {
            let (verb, rest) = line.split_once(' ')?;
            let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let old = rest
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .map(|(v, _)| v.to_owned());
            let new = rest
                .split_once('(')
                .and_then(|(_, r)| r.split(' ').next())
                .map(str::to_owned);
            let name = name.to_owned();
            match (verb, old, new) {
                ("Inst", Some(from), Some(to)) => Some(Step::Upgrade { name, from, to }),
                ("Inst", None, Some(version)) => Some(Step::Install { name, version }),
                ("Remv", old, _) => Some(Step::Remove {
                    name,
                    version: old.unwrap_or_default(),
                }),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_simulation_reads_as_steps() {
        let out = "NOTE: This is only a simulation!\n\
                   Inst cs-hello [1.0] (1.1 localhost [all])\n\
                   Inst cs-tool (1.0 localhost [all])\n\
                   Conf cs-hello (1.1 localhost [all])\n\
                   Remv cs-old [2.0]\n";
        let steps = steps(out);
        assert_eq!(steps.len(), 3, "{steps:?}");
        let named = vec!["cs-tool".to_owned()];
        let lines: Vec<String> = steps.iter().map(|s| s.line(&named)).collect();
        assert_eq!(
            lines,
            [
                "upgrade cs-hello 1.0 -> 1.1 (dependency)",
                "install cs-tool 1.0",
                "remove cs-old 2.0 (dependency)",
            ]
        );
    }
}
