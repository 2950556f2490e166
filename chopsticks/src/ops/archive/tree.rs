//! The archive's own paths: each one cleaned and bounded, and what the
//! entries so far make of it, so that both passes refuse an archive whose
//! entries contradict each other before anything is written.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The longest path an entry may have, in bytes (Linux's `PATH_MAX`).
pub(super) const MAX_PATH: usize = 4096;

/// The longest name in a path, in bytes (Linux's `NAME_MAX`).
pub(super) const MAX_NAME: usize = 255;

/// The most names a path may have.
pub(super) const MAX_DEPTH: usize = 256;

/// How a path too long to print is shown: its first bytes.
fn head(path: &[u8]) -> String {
    let cut = &path[..path.len().min(60)];
    format!("{}…", String::from_utf8_lossy(cut))
}

/// Refuses a path (or link target) of more than [`MAX_PATH`] bytes; the
/// first check an entry's path gets, before it is copied or parsed.
pub(super) fn bounded(path: &[u8]) -> Result<(), String> {
    if path.len() > MAX_PATH {
        return Err(format!(
            "{} is a path of {} bytes, longer than {MAX_PATH}: such entries are refused",
            head(path),
            path.len()
        ));
    }
    Ok(())
}

/// `path` inside the archive as a relative path of plain names (`.`
/// dropped); `None` for the archive's root itself.
///
/// # Errors
/// An absolute path, one with `..`, or one over the bounds ([`MAX_PATH`],
/// [`MAX_NAME`], [`MAX_DEPTH`]).
pub(super) fn clean(path: &Path) -> Result<Option<PathBuf>, String> {
    bounded(path.as_os_str().as_bytes())?;
    let mut out = PathBuf::new();
    let mut depth = 0;
    for part in path.components() {
        match part {
            Component::Normal(name) => {
                if name.len() > MAX_NAME {
                    return Err(format!(
                        "{} has a name of {} bytes, longer than {MAX_NAME}: such entries are \
                         refused",
                        head(path.as_os_str().as_bytes()),
                        name.len()
                    ));
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!(
                        "{} is more than {MAX_DEPTH} directories deep: such entries are refused",
                        head(path.as_os_str().as_bytes())
                    ));
                }
                out.push(name)
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{} is an absolute path", path.display()))
            }
            Component::ParentDir => return Err(format!("{} goes up with ..", path.display())),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// What an entry makes of its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Made {
    Dir,
    /// A file, or a hard link (written as a copy).
    File,
    Link,
}

impl Made {
    fn name(self) -> &'static str {
        match self {
            Made::Dir => "directory",
            Made::File => "file",
            Made::Link => "symbolic link",
        }
    }
}

/// One path the archive makes, and what a pass keeps about it.
#[derive(Debug)]
pub(super) struct Node<T> {
    pub made: Made,
    /// A file's mode: a hard link to it gets this one.
    pub mode: u32,
    /// A hard link was made to this file: naming it again is refused (the
    /// copy was made of what it held then).
    linked: bool,
    pub data: T,
}

/// What [`Tree::add`] recorded.
#[derive(Debug)]
pub(super) struct Added {
    /// The entry's node.
    pub id: usize,
    /// The directories its path implies that no entry before it did, the
    /// outermost first, with their paths.
    pub new_dirs: Vec<(usize, PathBuf)>,
}

/// Every path the archive makes, as a tree of names (so each entry costs
/// time in its path's length, whatever its depth), bounded in size.
#[derive(Debug)]
pub(super) struct Tree<T> {
    /// Node 0 is `dest` itself.
    nodes: Vec<Node<T>>,
    children: HashMap<(usize, OsString), usize>,
    /// The most paths (entries and the directories they imply).
    max: u64,
}

impl<T: Default> Tree<T> {
    /// An empty tree that holds at most `max` paths.
    pub fn new(max: u64) -> Tree<T> {
        Tree {
            nodes: vec![Node {
                made: Made::Dir,
                mode: 0,
                linked: false,
                data: T::default(),
            }],
            children: HashMap::new(),
            max,
        }
    }

    pub fn node(&mut self, id: usize) -> &mut Node<T> {
        &mut self.nodes[id]
    }

    /// Every node but `dest`'s.
    pub fn nodes(&self) -> impl Iterator<Item = &Node<T>> {
        self.nodes.iter().skip(1)
    }

    fn insert(
        &mut self,
        parent: usize,
        name: &OsStr,
        made: Made,
        mode: u32,
    ) -> Result<usize, String> {
        if self.nodes.len() as u64 > self.max {
            return Err(format!(
                "it makes more than {} paths (its entries and the directories their paths \
                 imply): raise .max_entries(..)",
                self.max
            ));
        }
        let id = self.nodes.len();
        self.nodes.push(Node {
            made,
            mode,
            linked: false,
            data: T::default(),
        });
        self.children.insert((parent, name.to_owned()), id);
        Ok(id)
    }

    /// The node of the cleaned path `rel`, if the archive makes it.
    fn find(&self, rel: &Path) -> Option<usize> {
        rel.iter().try_fold(0, |at, name| {
            self.children.get(&(at, name.to_owned())).copied()
        })
    }

    /// The mode of the file `to` an earlier entry made, for a hard link to
    /// it; the file may not be named again after.
    ///
    /// # Errors
    /// `to` is not a file an earlier entry made.
    pub fn link_to(&mut self, rel: &Path, to: &Path) -> Result<(usize, u32), String> {
        match self.find(to) {
            Some(id) if self.nodes[id].made == Made::File => {
                self.nodes[id].linked = true;
                Ok((id, self.nodes[id].mode))
            }
            _ => Err(format!(
                "{} is a hard link to {}, which is not an earlier file of the archive",
                rel.display(),
                to.display()
            )),
        }
    }

    /// Records that the entry `rel` makes a `made` (with `mode`), after
    /// checking it against what the entries before it make: a directory
    /// only where they make one or nothing, a file or link only where they
    /// make no directory, and nothing below a file or link of theirs. A
    /// file or link named again replaces the earlier one.
    ///
    /// # Errors
    /// The entry contradicts an earlier one, or the tree is full.
    pub fn add(&mut self, rel: &Path, made: Made, mode: u32) -> Result<Added, String> {
        let names: Vec<&OsStr> = rel.iter().collect();
        let Some((last, parents)) = names.split_last() else {
            return Ok(Added {
                id: 0,
                new_dirs: Vec::new(),
            });
        };
        let shown = |n: usize| names[..n].iter().collect::<PathBuf>();
        let mut at = 0;
        let mut new_dirs = Vec::new();
        for (i, name) in parents.iter().enumerate() {
            at = match self.children.get(&(at, name.to_os_string())) {
                Some(&id) => match self.nodes[id].made {
                    Made::Dir => id,
                    other => {
                        return Err(format!(
                            "{} goes through the {} {} the archive makes",
                            rel.display(),
                            other.name(),
                            shown(i + 1).display()
                        ))
                    }
                },
                None => {
                    let id = self.insert(at, name, Made::Dir, 0o755)?;
                    new_dirs.push((id, shown(i + 1)));
                    id
                }
            };
        }
        let id = match self.children.get(&(at, last.to_os_string())) {
            None => self.insert(at, last, made, mode)?,
            Some(&id) => {
                let before = &self.nodes[id];
                if (before.made == Made::Dir) != (made == Made::Dir) {
                    return Err(format!(
                        "{} is a {} in the archive after a {} of the same name",
                        rel.display(),
                        made.name(),
                        before.made.name()
                    ));
                }
                if before.linked {
                    return Err(format!(
                        "{} is named again after a hard link to it: such archives are refused",
                        rel.display()
                    ));
                }
                id
            }
        };
        let node = &mut self.nodes[id];
        (node.made, node.mode) = (made, mode);
        Ok(Added { id, new_dirs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(entries: &[(&str, Made)]) -> Result<(), String> {
        let mut tree = Tree::<()>::new(100);
        for (path, made) in entries {
            tree.add(Path::new(path), *made, 0o644)?;
        }
        Ok(())
    }

    #[test]
    fn entries_that_contradict_earlier_ones_are_refused() {
        use Made::*;
        let refused = |entries: &[(&str, Made)], why: &str| {
            let e = run(entries).unwrap_err();
            assert!(e.contains(why), "{entries:?}: {e}");
        };
        refused(
            &[("a", Link), ("a", Dir), ("a/x", File)],
            "directory in the archive after a symbolic link",
        );
        refused(
            &[("a", Link), ("a/x", File)],
            "goes through the symbolic link a",
        );
        refused(
            &[("a", File), ("a", Dir)],
            "directory in the archive after a file",
        );
        refused(
            &[("a", Dir), ("a", File)],
            "file in the archive after a directory",
        );
        refused(
            &[("a/x", File), ("a", Link)],
            "symbolic link in the archive after a directory",
        );
        refused(&[("a", File), ("a/b/x", File)], "goes through the file a");
        // A file or link named again replaces the earlier one; a directory
        // named again is the same directory.
        run(&[
            ("a", File),
            ("a", Link),
            ("a", File),
            ("d/x", File),
            ("d", Dir),
            ("d", Dir),
        ])
        .unwrap();
    }

    #[test]
    fn a_hard_link_needs_an_earlier_file_which_stays_as_it_was() {
        let mut tree = Tree::<()>::new(100);
        tree.add(Path::new("a"), Made::File, 0o600).unwrap();
        tree.add(Path::new("d"), Made::Dir, 0o755).unwrap();
        let h = Path::new("h");
        assert_eq!(tree.link_to(h, Path::new("a")).unwrap().1, 0o600);
        assert!(tree.link_to(h, Path::new("d")).is_err());
        assert!(tree.link_to(h, Path::new("nothing")).is_err());
        let e = tree.add(Path::new("a"), Made::File, 0o644).unwrap_err();
        assert!(e.contains("named again after a hard link"), "{e}");
    }

    #[test]
    fn the_tree_is_bounded_by_what_paths_imply() {
        let mut tree = Tree::<()>::new(5);
        tree.add(Path::new("a/b/c/d"), Made::File, 0o644).unwrap();
        let e = tree
            .add(Path::new("a/b/x/y"), Made::File, 0o644)
            .unwrap_err();
        assert!(e.contains("more than 5 paths"), "{e}");
    }

    #[test]
    fn paths_are_bounded_before_anything_else() {
        let long = "a".repeat(MAX_PATH + 1);
        assert!(clean(Path::new(&long))
            .unwrap_err()
            .contains("longer than 4096"));
        let name = "n".repeat(MAX_NAME + 1);
        assert!(clean(Path::new(&name))
            .unwrap_err()
            .contains("longer than 255"));
        let deep = "d/".repeat(MAX_DEPTH + 1);
        assert!(clean(Path::new(&deep))
            .unwrap_err()
            .contains("directories deep"));
        let ok = "d/".repeat(MAX_DEPTH);
        assert!(clean(Path::new(&ok)).unwrap().is_some());
        assert_eq!(clean(Path::new("./")).unwrap(), None);
        assert!(clean(Path::new("a/../b")).is_err());
    }
}
