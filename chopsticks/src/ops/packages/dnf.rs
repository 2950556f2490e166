//! dnf, where rpm is: installs and removals planned from the package
//! database, upgrades from `dnf check-update`.

use super::{Installed, Manager, Step, Tool, Want};
use crate::ops::{OpError, Writer};

pub(super) struct Dnf;

impl Manager for Dnf {
    fn program(&self) -> &'static str {
        "dnf"
    }

    fn detect(&self) -> bool {
        super::tool(self.program()).is_some()
    }

    fn refresh(&self) -> &'static [&'static str] {
        &["makecache", "-q"]
    }

    fn args(&self, want: Want) -> &'static [&'static str] {
        match want {
            Want::Present | Want::Latest => &["install", "-y", "-q"],
            Want::Absent => &["remove", "-y", "-q"],
        }
    }

    fn simulate(
        &self,
        tool: &Tool,
        want: Want,
        names: &[String],
        installed: &Installed,
    ) -> Result<Vec<Step>, OpError> {
        let missing = names.iter().filter(|n| !installed.contains_key(*n));
        let mut steps: Vec<Step> = match want {
            Want::Absent => names
                .iter()
                .filter_map(|n| {
                    Some(Step::Remove {
                        name: n.clone(),
                        version: installed.get(n)?.clone(),
                    })
                })
                .collect(),
            Want::Present | Want::Latest => missing
                .map(|n| Step::Install {
                    name: n.clone(),
                    version: "(newest)".into(),
                })
                .collect(),
        };
        if want == Want::Latest {
            let out = tool.run_read_only(&["check-update", "-q"], names)?;
            // 100: updates are available; 0: none.
            if out.status != 0 && out.status != 100 {
                return Err(tool.failed(&["check-update", "-q"], names, &out));
            }
            steps.extend(updates(&out.stdout, installed));
        }
        Ok(steps)
    }

    /// `dnf install` leaves an installed package as it is: upgrade the
    /// outdated ones of a `latest` plan.
    fn finish(&self, w: &Writer, tool: &Tool, steps: &[Step]) -> Result<(), OpError> {
        let outdated: Vec<String> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Upgrade { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        if outdated.is_empty() {
            return Ok(());
        }
        tool.apply(w, &["upgrade", "-y", "-q"], &outdated)
    }
}

/// The upgrades `dnf check-update` lists: `NAME.ARCH  VERSION  REPO` lines.
fn updates(out: &str, installed: &Installed) -> Vec<Step> {
    out.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (full, to, _repo) = (words.next()?, words.next()?, words.next()?);
            let name = full.rsplit_once('.').map_or(full, |(n, _)| n);
            let from = installed.get(name)?;
            Some(Step::Upgrade {
                name: name.to_owned(),
                from: from.clone(),
                to: to.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_update_reads_as_upgrades() {
        let installed: Installed = [("curl".to_owned(), "8.0-1.fc39".to_owned())].into();
        let steps = updates("\ncurl.x86_64   8.2-1.fc39   updates\n", &installed);
        assert_eq!(
            steps[0].line(&["curl".into()]),
            "upgrade curl 8.0-1.fc39 -> 8.2-1.fc39"
        );
    }
}
