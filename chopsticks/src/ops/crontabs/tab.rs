//! A job in a user's crontab: a `# chopsticks: NAME` line, then the job's
//! line; every other line of the crontab kept as it is.

/// The line that marks the job `name`.
fn marker(name: &str) -> String {
    format!("# chopsticks: {name}")
}

/// Whether `line` (after a marker) is a job's as `crontab` holds it: a
/// schedule cron takes (five fields, or a word such as `@daily`) and a
/// command; not a blank, a comment or an environment line.
fn is_job(line: &str) -> bool {
    let mut rest = line.trim();
    if rest.is_empty() || rest.starts_with('#') {
        return false;
    }
    let count = if rest.starts_with('@') { 1 } else { 5 };
    let mut fields = Vec::with_capacity(count);
    for _ in 0..count {
        rest = rest.trim_start();
        let Some(end) = rest.find(char::is_whitespace) else {
            return false;
        };
        fields.push(&rest[..end]);
        rest = &rest[end..];
    }
    !rest.trim().is_empty() && super::schedule::check(&fields.join(" ")).is_ok()
}

/// The crontab `text` read as lines, each with whether it is the job
/// `name`'s: its marker, or the job's line right after one.
fn ours<'t>(text: &'t str, name: &str) -> Vec<(&'t str, bool)> {
    let marker = marker(name);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let is_marker = lines[i].trim_end() == marker;
        out.push((lines[i], is_marker));
        if is_marker && lines.get(i + 1).is_some_and(|l| is_job(l)) {
            out.push((lines[i + 1], true));
            i += 1;
        }
        i += 1;
    }
    out
}

/// Whether the crontab `text` has the job `name`'s marker.
pub(super) fn has(text: &str, name: &str) -> bool {
    let marker = marker(name);
    text.lines().any(|l| l.trim_end() == marker)
}

/// The lines of the crontab `text` that are the job `name`'s: its markers
/// and their jobs, nothing else (what a diff may show).
pub(super) fn block(text: &str, name: &str) -> String {
    let mut out = String::new();
    for (line, _) in ours(text, name).into_iter().filter(|(_, ours)| *ours) {
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The job `name`'s lines as `edit` writes them.
pub(super) fn job_block(name: &str, job: Option<&str>) -> String {
    job.map(|job| format!("{}\n{job}\n", marker(name)))
        .unwrap_or_default()
}

/// The crontab `text` with the job `name` as `job` says: its marker and
/// the line after it (when that is a job's line, see [`is_job`]) replaced
/// by `job`'s, at the first marker with a job (other markers, with their
/// jobs, removed; a marker without one removed alone), or added at the
/// end; with `None`, every marker and its job removed. Other lines stay
/// as they are.
pub(super) fn edit(text: &str, name: &str, job: Option<&str>) -> String {
    let marker = marker(name);
    let lines = ours(text, name);
    let mut out = String::with_capacity(text.len() + 128);
    let mut placed = false;
    let mut i = 0;
    while i < lines.len() {
        let (line, mine) = lines[i];
        if !mine {
            out.push_str(line);
            i += 1;
            continue;
        }
        // A marker, and its job when the next line is one of ours.
        let with_job = lines
            .get(i + 1)
            .is_some_and(|&(l, m)| m && l.trim_end() != marker);
        i += if with_job { 2 } else { 1 };
        if let (Some(job), false, true) = (job, placed, with_job) {
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
        // a blank, an environment line, a line cron would not take) is not
        // taken for it; the marker goes, the job is added afresh.
        let orphan = "# chopsticks: t\n# keep\n\n1 * * * * keep\n";
        assert_eq!(
            edit(orphan, "t", Some("@daily x")),
            "# keep\n\n1 * * * * keep\n# chopsticks: t\n@daily x\n"
        );
        assert_eq!(edit(orphan, "t", None), "# keep\n\n1 * * * * keep\n");
        for theirs in [
            "MAILTO=me@example.com\n",
            "A=1 2 3 4 5 x\n",
            "61 * * * * nope\n",
            "@daily\n",
            "* * * * *\n",
            "@often x\n",
        ] {
            let text = format!("# chopsticks: t\n{theirs}@hourly keep\n");
            assert_eq!(
                edit(&text, "t", Some("@daily x")),
                format!("{theirs}@hourly keep\n# chopsticks: t\n@daily x\n"),
                "{theirs:?}"
            );
            assert_eq!(
                edit(&text, "t", None),
                format!("{theirs}@hourly keep\n"),
                "{theirs:?}"
            );
        }
        // Our block, for a diff: the marker and its job, nothing else.
        let text = "SECRET=x\n# chopsticks: t\n@daily a\nB=1\n# chopsticks: t\nB=2\n";
        assert_eq!(
            block(text, "t"),
            "# chopsticks: t\n@daily a\n# chopsticks: t\n"
        );
        assert_eq!(block("# chopsticks: t", "t"), "# chopsticks: t\n");
        assert_eq!(
            job_block("t", Some("@daily a")),
            "# chopsticks: t\n@daily a\n"
        );
        assert_eq!(job_block("t", None), "");
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
