//! Names of revisions for [`Git`](super::Git): what `git` takes as a
//! branch or tag name and as a commit id, and what `git ls-remote` says
//! they are.

/// Refuses a name git could read as an option or that is not a valid
/// ref name (as `git check-ref-format` would, in short).
pub(super) fn check_ref(what: &str, name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.starts_with(['-', '/', '.'])
        || name.ends_with(['/', '.'])
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("//")
        || name.contains("@{")
        || name.contains("/.")
        || name == "@"
        || name.len() > 255
        || name
            .chars()
            .any(|c| c.is_control() || " ~^:?*[\\".contains(c));
    match bad {
        true => Err(format!(
            "{name:?} is not a {what} name git takes (nothing starting with - or ., no \
             spaces, ~ ^ : ? * [ \\ or ..)"
        )),
        false => Ok(()),
    }
}

/// Whether `id` is a full commit id (SHA-1, or SHA-256).
pub(super) fn full_id(id: &str) -> bool {
    (id.len() == 40 || id.len() == 64) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The commit `ls-remote` output names for the first of `patterns` (a
/// peeled tag's `^{}` line preferred: the commit, not the tag object), and
/// the branch: as given, or the one `HEAD` points to (`--symref`).
pub(super) fn resolve(
    listing: &str,
    patterns: &[String],
    branch: Option<String>,
) -> (Option<String>, Option<String>) {
    let ids = listing.lines().filter_map(|l| {
        let (id, name) = l.split_once('\t')?;
        Some((id.trim(), name.trim()))
    });
    let symref = listing.lines().find_map(|l| {
        l.strip_prefix("ref: refs/heads/")?
            .strip_suffix("\tHEAD")
            .map(str::to_owned)
    });
    let find = |name: &str| {
        ids.clone()
            .find(|(id, n)| *n == name && full_id(id))
            .map(|(id, _)| id.to_ascii_lowercase())
    };
    let id = patterns.iter().rev().find_map(|p| find(p));
    (id, branch.or(symref))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn ls_remote_output_resolves_to_a_commit_and_branch() {
        let head = format!("ref: refs/heads/main\tHEAD\n{ID}\tHEAD\n");
        let (id, branch) = resolve(&head, &["HEAD".into()], None);
        assert_eq!((id.as_deref(), branch.as_deref()), (Some(ID), Some("main")));
        let peeled = "1111111111111111111111111111111111111111";
        let tag = format!("{ID}\trefs/tags/v1\n{peeled}\trefs/tags/v1^{{}}\n");
        let pats = ["refs/tags/v1".to_owned(), "refs/tags/v1^{}".to_owned()];
        assert_eq!(resolve(&tag, &pats, None).0.as_deref(), Some(peeled));
        // A ref that only ends like the one asked for does not count.
        let other = format!("{ID}\trefs/heads/x/refs/heads/main\n");
        let (id, _) = resolve(&other, &["refs/heads/main".into()], Some("main".into()));
        assert_eq!(id, None);
    }
}
