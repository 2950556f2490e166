//! apk, on Alpine: planned from `apk --simulate`.

use super::{Installed, Manager, Step, Tool, Want};
use crate::ops::OpError;

pub(super) struct Apk;

impl Manager for Apk {
    fn program(&self) -> &'static str {
        "apk"
    }

    fn detect(&self) -> bool {
        super::has("/lib/apk/db/installed") && super::tool(self.program()).is_some()
    }

    fn refresh(&self) -> &'static [&'static str] {
        &["update", "-q"]
    }

    fn args(&self, want: Want) -> &'static [&'static str] {
        match want {
            Want::Present => &["add", "-q"],
            Want::Latest => &["add", "--upgrade", "-q"],
            Want::Absent => &["del", "-q"],
        }
    }

    fn simulate(
        &self,
        tool: &Tool,
        want: Want,
        names: &[String],
        _installed: &Installed,
    ) -> Result<Vec<Step>, OpError> {
        let args: &[&str] = match want {
            Want::Present => &["add", "--simulate"],
            Want::Latest => &["add", "--upgrade", "--simulate"],
            Want::Absent => &["del", "--simulate"],
        };
        let out = tool.read_only(args, names)?;
        Ok(steps(&out.stdout))
    }
}

/// The steps of `apk --simulate` output: `(1/2) Installing NAME (VERSION)`,
/// `Upgrading NAME (OLD -> NEW)`, `Purging NAME (VERSION)`.
fn steps(out: &str) -> Vec<Step> {
    out.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let line = match line.strip_prefix('(') {
                Some(r) => r.split_once(") ")?.1,
                None => line,
            };
            let mut words = line.splitn(3, ' ');
            let (verb, name, rest) = (words.next()?, words.next()?, words.next()?);
            let inner = rest.strip_prefix('(')?.split(')').next()?;
            let name = name.to_owned();
            match verb {
                "Installing" => Some(Step::Install {
                    name,
                    version: inner.to_owned(),
                }),
                "Upgrading" | "Downgrading" | "Replacing" => {
                    let (from, to) = inner.split_once(" -> ")?;
                    Some(Step::Upgrade {
                        name,
                        from: from.to_owned(),
                        to: to.to_owned(),
                    })
                }
                "Purging" | "Deleting" => Some(Step::Remove {
                    name,
                    version: inner.to_owned(),
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
    fn apk_simulation_reads_as_steps() {
        let out = "(1/3) Installing musl-utils (1.2.4-r2)\n\
                   (2/3) Upgrading curl (8.4.0-r0 -> 8.5.0-r0)\n\
                   (3/3) Purging nano (7.2-r1)\nOK: 10 MiB in 20 packages\n";
        assert_eq!(
            steps(out),
            [
                Step::Install {
                    name: "musl-utils".into(),
                    version: "1.2.4-r2".into()
                },
                Step::Upgrade {
                    name: "curl".into(),
                    from: "8.4.0-r0".into(),
                    to: "8.5.0-r0".into()
                },
                Step::Remove {
                    name: "nano".into(),
                    version: "7.2-r1".into()
                },
            ]
        );
    }
}
