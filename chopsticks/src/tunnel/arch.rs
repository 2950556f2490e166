//! Names of machine architectures: Rust's (`std::env::consts::ARCH`), and
//! what `uname -m` says on hosts of each.

/// Rust's name for a machine, from Rust's own name or from what `uname -m`
/// says; `None` when unknown.
pub(crate) fn rust_arch(machine: &str) -> Option<&'static str> {
    Some(match machine {
        "x86_64" | "amd64" => "x86_64",
        "aarch64" | "arm64" => "aarch64",
        "x86" | "i386" | "i486" | "i586" | "i686" => "x86",
        "arm" => "arm",
        m if m.starts_with("armv") => "arm",
        "riscv64" => "riscv64",
        "powerpc64" | "ppc64le" | "ppc64" => "powerpc64",
        "s390x" => "s390x",
        "loongarch64" => "loongarch64",
        _ => return None,
    })
}

/// A `case` pattern of the `uname -m` names of Rust's machine `arch`.
pub(crate) fn uname_pattern(arch: &str) -> &'static str {
    match arch {
        "x86_64" => "x86_64|amd64",
        "aarch64" => "aarch64|arm64",
        "x86" => "i386|i486|i586|i686",
        "arm" => "armv*",
        "riscv64" => "riscv64",
        "powerpc64" => "ppc64le|ppc64",
        "s390x" => "s390x",
        "loongarch64" => "loongarch64",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uname_machines_map_to_rust_arches_and_back() {
        assert_eq!(rust_arch("x86_64"), Some("x86_64"));
        assert_eq!(rust_arch("arm64"), Some("aarch64"));
        assert_eq!(rust_arch("armv7l"), Some("arm"));
        assert_eq!(rust_arch("i686"), Some("x86"));
        assert_eq!(rust_arch("vax"), None);
        assert_eq!(
            rust_arch(std::env::consts::ARCH),
            Some(std::env::consts::ARCH)
        );
        for machine in ["x86_64", "arm64", "aarch64", "i686", "riscv64", "ppc64le"] {
            let arch = rust_arch(machine).unwrap();
            let pattern = uname_pattern(arch);
            let matches = pattern.split('|').any(|p| match p.strip_suffix('*') {
                Some(prefix) => machine.starts_with(prefix),
                None => p == machine,
            });
            assert!(matches, "{machine} is not in {pattern}");
        }
    }
}
