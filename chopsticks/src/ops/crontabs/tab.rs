//! A job in a user's crontab: a `# chopsticks: NAME` line, then the job's
//! line; every other line of the crontab kept as it is.

/// The line that marks the job `name`.
fn marker(name: &str) -> String {
    format!("# chopsticks: {name}")
}

/// Whether `line` (after a marker) is a job's: not blank, not a comment.
fn is_job(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && !line.starts_with('#')
}

/// Whether the crontab `text` has the job `name`'s marker.
pub(super) fn has(text: &str, name: &str) -> bool {
    let marker = marker(name);
    text.lines().any(|l| l.trim_end() == marker)
}

/// The crontab `text` with the job `name` as `job` says: its marker and
/// the line after it (when that is a job's, not a blank or a comment)
/// replaced by `job`'s, at the first marker (others, with their jobs,
/// removed), or added at the end; with `None`, every marker and its job
/// removed. Other lines stay as they are.
pub(super) fn edit(text: &str, name: &str, job: Option<&str>) -> String {
    let marker = marker(name);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::with_capacity(text.len() + 128);
    let mut placed = false;
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != marker {
            out.push_str(lines[i]);
            i += 1;
            continue;
        }
        let with_job = lines.get(i + 1).is_some_and(|l| is_job(l));
        i += if with_job { 2 } else { 1 };
        if let (Some(job), false) = (job, placed) {
            out.push_str(&format!("{marker}\n{job}\n"));
            placed = true;
        }
    }
    if let (Some(job), false) = (job, placed) {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{marker}\n{job}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_added_updated_and_removed_with_its_marker_alone() {
        let theirs = "MAILTO=ops@example.com\n# their job\n0 1 * * * /bin/theirs\n";
        let added = edit(theirs, "tick", Some("* * * * * /bin/tick"));
        assert_eq!(
            added,
            format!("{theirs}# chopsticks: tick\n* * * * * /bin/tick\n")
        );
        assert!(has(&added, "tick") && !has(&added, "tic") && !has(theirs, "tick"));
        // Again: nothing changes.
        assert_eq!(edit(&added, "tick", Some("* * * * * /bin/tick")), added);
        // Another job of ours goes after it; updating the first keeps its place.
        let two = edit(&added, "tock", Some("@daily /bin/tock"));
        let updated = edit(&two, "tick", Some("*/5 * * * * /bin/tick"));
        assert_eq!(
            updated,
            format!(
                "{theirs}# chopsticks: tick\n*/5 * * * * /bin/tick\n\
                 # chopsticks: tock\n@daily /bin/tock\n"
            )
        );
        // Absent: the marker and its line go, nothing else.
        let gone = edit(&updated, "tick", None);
        assert_eq!(
            gone,
            format!("{theirs}# chopsticks: tock\n@daily /bin/tock\n")
        );
        assert_eq!(edit(&gone, "tock", None), theirs);
        assert_eq!(edit(theirs, "tock", None), theirs);
        assert_eq!(edit("", "tock", None), "");
        assert_eq!(
            edit("", "t", Some("@hourly x")),
            "# chopsticks: t\n@hourly x\n"
        );
    }

    #[test]
    fn markers_without_jobs_duplicates_and_open_ends_are_mended() {
        // A marker whose job someone removed: the next line (a comment,
        // a blank) is not taken for it.
        let orphan = "# chopsticks: t\n# keep\n\n1 * * * * keep\n";
        assert_eq!(
            edit(orphan, "t", Some("@daily x")),
            "# chopsticks: t\n@daily x\n# keep\n\n1 * * * * keep\n"
        );
        assert_eq!(edit(orphan, "t", None), "# keep\n\n1 * * * * keep\n");
        // Two markers: the first is updated, the second goes with its job.
        let twice = "# chopsticks: t\n@daily a\nx\n# chopsticks: t\n@daily b\n";
        assert_eq!(
            edit(twice, "t", Some("@daily c")),
            "# chopsticks: t\n@daily c\nx\n"
        );
        // A crontab without a final newline gets one before the job.
        assert_eq!(
            edit("@daily a", "t", Some("@daily b")),
            "@daily a\n# chopsticks: t\n@daily b\n"
        );
        // A marker with a CRLF end, and one at the very end.
        assert_eq!(edit("# chopsticks: t\r\n@daily a\r\n", "t", None), "");
        assert_eq!(edit("a\n# chopsticks: t", "t", None), "a\n");
        // A name that is a prefix of another's is not it.
        let other = "# chopsticks: tick-2\n@daily a\n";
        assert_eq!(edit(other, "tick", None), other);
    }
}
