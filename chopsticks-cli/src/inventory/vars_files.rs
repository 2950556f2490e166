//! `group_vars/` and `host_vars/` beside an inventory, as Ansible's
//! `host_group_vars` plugin reads them: for an inventory file, in its
//! directory; for an inventory directory, in it. For each group (`all`
//! and `ungrouped` too) and each host, the first of `NAME`, `NAME.yml`,
//! `NAME.yaml`, `NAME.json` that exists: a file of variables (YAML), or a
//! directory whose files (and subdirectories', but hidden ones and `~`
//! backups, by name) are. Their variables win over the inventory file's at
//! the same level: the merge order is in [`Inventory::resolve`].

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{check_vars, names_in, read_bounded, yaml, Inventory, InventoryError};

/// The extensions a variables file may have (besides none), as Ansible's
/// `YAML_FILENAME_EXTENSIONS`.
const EXTENSIONS: [&str; 3] = [".yml", ".yaml", ".json"];

/// How many files one `group_vars/NAME/` directory may hold, all levels.
pub const MAX_VARS_FILES: usize = 10_000;

impl Inventory {
    /// Reads the `group_vars/` and `host_vars/` beside the inventory
    /// `source` into the variables of its groups and hosts (over what an
    /// earlier source's gave). For each source of a run, after all of them
    /// are merged: a source's `group_vars/web.yml` is for the group `web`
    /// wherever it was defined.
    ///
    /// # Errors
    /// A file that cannot be read or is not a map of variables, with its
    /// file and line.
    pub fn read_vars_files(&mut self, source: &Path) -> Result<(), InventoryError> {
        let base = match source.is_dir() {
            true => source.to_owned(),
            false => source.parent().map(Path::to_owned).unwrap_or_default(),
        };
        let base = match base.as_os_str().is_empty() {
            true => PathBuf::from("."),
            false => base,
        };
        let (group_dir, host_dir) = (base.join("group_vars"), base.join("host_vars"));
        if group_dir.is_dir() {
            let mut names = vec!["all".to_owned(), "ungrouped".to_owned()];
            names.extend(self.groups.iter().map(|g| g.name.clone()));
            names.dedup();
            for name in names {
                let vars = read_for(&group_dir, &name)?;
                if !vars.is_empty() {
                    self.group_mut(&name).file_vars.extend(vars);
                }
            }
        }
        if host_dir.is_dir() {
            let names: Vec<String> = self.hosts.iter().map(|h| h.name.clone()).collect();
            for name in names {
                let vars = read_for(&host_dir, &name)?;
                if !vars.is_empty() {
                    self.host_mut(&name).file_vars.extend(vars);
                }
            }
        }
        Ok(())
    }
}

/// The variables `dir/NAME` (or `NAME.yml` ...) gives, merged in order.
fn read_for(dir: &Path, name: &str) -> Result<Map<String, Value>, InventoryError> {
    let mut vars = Map::new();
    // A name that is not a plain file name never names a file here.
    if name.contains('/') || name == "." || name == ".." {
        return Ok(vars);
    }
    let Some(found) = std::iter::once(String::new())
        .chain(EXTENSIONS.map(str::to_owned))
        .map(|ext| dir.join(format!("{name}{ext}")))
        .find(|p| p.exists())
    else {
        return Ok(vars);
    };
    let mut files = Vec::new();
    match found.is_dir() {
        true => files_in(&found, &mut files)?,
        false => files.push(found),
    }
    for file in files {
        let text = read_bounded(&file)?;
        let mut read = Map::new();
        yaml::read_vars(&text, &file, &mut read)?;
        check_vars(&read).map_err(|e| InventoryError::at(&file, None, e))?;
        vars.extend(read);
    }
    Ok(vars)
}

/// The variables files in `dir` and below, by name at each level.
fn files_in(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), InventoryError> {
    for name in names_in(dir)? {
        let text = name.to_string_lossy();
        if text.starts_with('.') || text.ends_with('~') {
            continue;
        }
        let path = dir.join(&name);
        let ext = path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()));
        if path.is_dir() && ext.is_none() {
            files_in(&path, files)?;
        } else if path.is_file() && ext.as_deref().is_none_or(|e| EXTENSIONS.contains(&e)) {
            if files.len() >= MAX_VARS_FILES {
                return Err(InventoryError::at(
                    dir,
                    None,
                    format!("more than {MAX_VARS_FILES} variables files"),
                ));
            }
            files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout of Ansible's docs (intro_inventory.rst, "Organizing host
    /// and group variables"), with a directory of files and a host's own.
    #[test]
    fn group_and_host_vars_beside_an_inventory_are_read_and_win_at_their_level() {
        let dir = std::env::temp_dir().join(format!("cs-vars-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("group_vars/raleigh")).unwrap();
        std::fs::create_dir_all(dir.join("host_vars")).unwrap();
        let write = |path: &str, text: &str| std::fs::write(dir.join(path), text).unwrap();
        write(
            "hosts",
            "[raleigh]\nfoosball ntp=inline\n[raleigh:vars]\nport=1\n[webservers]\nfoosball\n",
        );
        write("group_vars/all.yml", "ntp: from-all\nshared: all\n");
        write("group_vars/raleigh/db_settings", "db: pg\nport: 2\n");
        write("group_vars/raleigh/cluster.yml", "port: 3\n");
        write("group_vars/raleigh/.hidden", "port: 99\n");
        write("group_vars/raleigh/notes.txt", "port: 98\n");
        write("group_vars/webservers.yaml", "web: yes\n");
        write("host_vars/foosball.json", "{\"ntp\": \"host-file\"}\n");
        let inv = Inventory::load(&dir.join("hosts")).unwrap();
        let (_, vars) = inv.resolve("foosball").unwrap();
        assert_eq!(vars["shared"], "all");
        assert_eq!(vars["db"], "pg");
        assert_eq!(
            vars["port"], 2,
            "files in name order: cluster.yml, then db_settings"
        );
        assert_eq!(vars["web"], true);
        assert_eq!(
            vars["ntp"], "host-file",
            "host_vars win over the host's line"
        );
        write("group_vars/webservers.yaml", "web: [unclosed\n");
        let err = Inventory::load(&dir.join("hosts")).unwrap_err();
        assert!(err.to_string().contains("webservers.yaml:"), "{err}");
        write("group_vars/webservers.yaml", "ansible_user: \"x;id\"\n");
        let err = Inventory::load(&dir.join("hosts")).unwrap_err();
        assert!(err.to_string().contains("is not a"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
