//! A repository's location for [`Git`](super::Git): a URL, an scp-like
//! `user@host:path`, or an absolute path; shown without its password, and
//! given to `git` without it (the password goes to `git` through its
//! environment, as a credential helper's answer).

/// A repository's location, split so that its password stays out of
/// `git`'s command line, out of `.git/config` and out of messages.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Repo {
    /// What `git` is given: the location without a password.
    pub plain: String,
    /// The user and password of a `scheme://user:password@host` URL,
    /// percent-decoded as git decodes them.
    pub login: Option<(String, String)>,
}

/// The password shows as `***`.
impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("plain", &self.plain)
            .field("login", &self.login.as_ref().map(|(user, _)| (user, "***")))
            .finish()
    }
}

/// The credential helper `git` runs: it answers with the user and
/// password from its own environment. An empty `credential.helper` first
/// drops the helpers configured on the host (one, such as `store`, could
/// otherwise write the password down).
const HELPER: &str = "!f() { echo username=$CS_GIT_USER; echo password=$CS_GIT_PASSWORD; }; f";

impl Repo {
    /// Splits `repo`, or says why it is not a location `git` reads the same
    /// from every directory.
    pub fn parse(repo: &str) -> Result<Repo, String> {
        if repo.is_empty() || repo.starts_with('-') || repo.contains(|c: char| c.is_control()) {
            return Err(format!(
                "the repository {:?} is empty, starts with - or holds a control character: \
                 give its URL or absolute path",
                shown(repo)
            ));
        }
        if let Some((scheme, rest)) = repo.split_once("://") {
            if scheme.is_empty()
                || !scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            {
                return Err(format!(
                    "the repository {:?} has no scheme before ://",
                    shown(repo)
                ));
            }
            let end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            let Some((userinfo, host)) = authority.rsplit_once('@') else {
                return Ok(Repo::plain(repo));
            };
            let Some((user, password)) = userinfo.split_once(':') else {
                return Ok(Repo::plain(repo));
            };
            return Ok(Repo {
                plain: format!("{scheme}://{user}@{host}{path}"),
                login: Some((decode(user), decode(password))),
            });
        }
        if repo.starts_with('/') || scp_like(repo) {
            return Ok(Repo::plain(repo));
        }
        Err(format!(
            "the repository {:?} is a relative path, which git would read from different \
             directories when it clones and when it fetches: give a URL (https://host/app.git, \
             ssh://host/app.git, user@host:app.git) or an absolute path",
            shown(repo)
        ))
    }

    fn plain(repo: &str) -> Repo {
        Repo {
            plain: repo.to_owned(),
            login: None,
        }
    }

    /// The environment that gives `git` the password (none without one):
    /// only the `git` process has it, not its command line.
    pub fn env(&self) -> Vec<(String, String)> {
        let Some((user, password)) = &self.login else {
            return Vec::new();
        };
        [
            ("GIT_CONFIG_COUNT", "2"),
            ("GIT_CONFIG_KEY_0", "credential.helper"),
            ("GIT_CONFIG_VALUE_0", ""),
            ("GIT_CONFIG_KEY_1", "credential.helper"),
            ("GIT_CONFIG_VALUE_1", HELPER),
            ("CS_GIT_USER", user),
            ("CS_GIT_PASSWORD", password),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

/// `user@host:path` or `host:path`: git's scp-like syntax (a `:` before
/// any `/`).
fn scp_like(repo: &str) -> bool {
    match (repo.find(':'), repo.find('/')) {
        (Some(0), _) => false,
        (Some(colon), Some(slash)) => colon < slash,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// `%XX` escapes decoded (as git decodes a URL's user and password);
/// anything else as it is.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `repo` as messages show it: a `scheme://user:password@host/...` URL
/// rebuilt from its parts with `***` for the password; other text as it is.
///
/// ```
/// use chopsticks::ops::url_shown;
///
/// assert_eq!(url_shown("https://ci:s3cret@git.example.org/app.git"), "https://ci:***@git.example.org/app.git");
/// assert_eq!(url_shown("https://git.example.org/app.git"), "https://git.example.org/app.git");
/// ```
pub fn shown(repo: &str) -> String {
    let Some((scheme, rest)) = repo.split_once("://") else {
        return repo.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => repo.to_owned(),
        },
        None => repo.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_replaced_where_it_is_not_where_its_text_is() {
        assert_eq!(
            shown("https://deploy:deploy@host/deploy.git"),
            "https://deploy:***@host/deploy.git"
        );
        assert_eq!(
            shown("https://ci:s3cr3t@git.example.org/app.git"),
            "https://ci:***@git.example.org/app.git"
        );
        assert_eq!(shown("https://u:a@b@host/x"), "https://u:***@host/x");
        assert_eq!(shown("git@host:app.git"), "git@host:app.git");
        assert_eq!(shown("https://ci@host/a"), "https://ci@host/a");
    }

    #[test]
    fn git_gets_the_url_without_its_password_and_the_login_in_its_env() {
        let repo = Repo::parse("https://deploy:p%40ss@host/app.git").unwrap();
        assert_eq!(repo.plain, "https://deploy@host/app.git");
        let env = repo.env();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CS_GIT_PASSWORD"), Some("p@ss"));
        assert_eq!(get("CS_GIT_USER"), Some("deploy"));
        assert_eq!(get("GIT_CONFIG_VALUE_0"), Some(""));
        assert!(get("GIT_CONFIG_VALUE_1")
            .unwrap()
            .contains("$CS_GIT_PASSWORD"));
        assert!(Repo::parse("https://host/app.git")
            .unwrap()
            .env()
            .is_empty());
    }

    #[test]
    fn relative_paths_are_refused_urls_and_absolute_paths_taken() {
        for ok in [
            "/srv/app.git",
            "https://host/app.git",
            "ssh://git@host:22/app.git",
            "file:///srv/app.git",
            "git@host:app.git",
            "host:app.git",
        ] {
            assert_eq!(Repo::parse(ok).unwrap().plain, ok);
        }
        for bad in ["app.git", "../app.git", "dir/app:x", "./a:b"] {
            let e = Repo::parse(bad).unwrap_err();
            assert!(e.contains("relative path"), "{bad}: {e}");
        }
        assert!(Repo::parse("-uhack").unwrap_err().contains("starts with -"));
        assert!(Repo::parse("://x").unwrap_err().contains("no scheme"));
    }
}
