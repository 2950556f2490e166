//! What is shipped of an ELF executable: the file without its DWARF
//! sections (`.debug_*`, `.zdebug_*`) and its symbol table (`.symtab`,
//! `.strtab`), which the agent never reads (a remote panic's file and line
//! are in its message; a backtrace on the host names no function). A debug
//! build shrinks about eightfold (19 MB to 2.4 MB for the test fixture;
//! a kit tool's 94 MB to 17 MB, where its symbol table alone is 7.6 MB),
//! like `strip --strip-unneeded`.
//!
//! Hand-written rather than with an ELF crate: it is one pass over the
//! headers, and a crate that rewrites ELF files would be linked into, and
//! uploaded with, every agent. The loaded image is untouched: every byte
//! the program headers cover keeps its offset; the dropped sections' headers
//! stay in the table as inactive (`SHT_NULL`, empty), so no section index and
//! no symbol changes; the sections after them move up, and the section
//! header table follows them. Anything it does not understand is shipped as
//! it is.

/// `sh_flags`: the section occupies memory at run time.
const SHF_ALLOC: u64 = 0x2;
/// `sh_type` of a section that has no bytes in the file.
const SHT_NOBITS: u32 = 8;

/// The executable without its debug sections, or `None` when it has none
/// or is not a little-endian ELF file this reads.
pub(crate) fn without_debug_info(elf: &[u8]) -> Option<Vec<u8>> {
    let layout = Layout::of(elf)?;
    let mut sections: Vec<Section> = (0..layout.shnum)
        .map(|i| layout.section(elf, i))
        .collect::<Option<_>>()?;
    let names = sections.get(layout.shstrndx)?;
    let names = elf.get(names.offset..names.offset.checked_add(names.size)?)?;
    // Everything the program headers cover stays where it is.
    let loaded_end = (0..layout.phnum)
        .map(|i| layout.segment_end(elf, i))
        .try_fold(layout.headers_end, |end, seg| Some(end.max(seg?)))?;
    let after = |s: &Section| s.kind != SHT_NOBITS && s.offset >= loaded_end;
    for s in &sections {
        let end = s.offset.checked_add(s.size)?;
        let has_bytes = s.kind != SHT_NOBITS && s.size > 0;
        // A section across the loaded image's end, or past the file's end:
        // not a layout this rewrites.
        if has_bytes && (end > elf.len() || (s.offset < loaded_end && end > loaded_end)) {
            return None;
        }
        // An alignment beyond 64 KiB is not a section of a sane executable.
        if s.align > 1 << 16 || (s.align > 1 && !s.align.is_power_of_two()) {
            return None;
        }
    }
    let mut dropped = false;
    for (i, s) in sections.iter_mut().enumerate() {
        let name = names.get(s.name..)?;
        let name = &name[..name.iter().position(|b| *b == 0)?];
        let debug = name.starts_with(b".debug") || name.starts_with(b".zdebug");
        // The symbol table names functions for a debugger and backtraces;
        // the dynamic linker reads `.dynsym`, which is loaded and stays.
        // (Never the section names' table, which a linker may also call
        // `.strtab`; `.symtab_shndx` goes with the symbol table.)
        let symbols = name == b".symtab" || name == b".strtab" || name == b".symtab_shndx";
        if (debug || symbols) && i != layout.shstrndx && s.flags & SHF_ALLOC == 0 && after(s) {
            s.drop = true;
            dropped = true;
        }
    }
    if !dropped {
        return None;
    }
    // The kept sections after the loaded image, moved up in file order.
    let mut out = elf.get(..loaded_end)?.to_vec();
    let mut order: Vec<usize> = (0..sections.len())
        .filter(|i| !sections[*i].drop && after(&sections[*i]))
        .collect();
    order.sort_by_key(|i| sections[*i].offset);
    for i in order {
        let s = &mut sections[i];
        let bytes = elf.get(s.offset..s.offset.checked_add(s.size)?)?;
        pad_to(&mut out, s.align.max(1));
        s.offset = out.len();
        out.extend_from_slice(bytes);
        // Stripping never grows a file: sections that overlap (a hostile
        // file's thousands of headers over the same bytes) are not a
        // layout this rewrites.
        if out.len() > elf.len() {
            return None;
        }
    }
    pad_to(&mut out, 8);
    let shoff = out.len();
    for (i, s) in sections.iter().enumerate() {
        let start = layout.shoff + i * layout.shentsize;
        let mut header = elf.get(start..start + layout.shentsize)?.to_vec();
        layout.rewrite_section(&mut header, s);
        out.extend_from_slice(&header);
    }
    layout.set_shoff(&mut out, shoff);
    (out.len() <= elf.len()).then_some(out)
}

/// One section header, as far as stripping needs it.
struct Section {
    name: usize,
    kind: u32,
    flags: u64,
    offset: usize,
    size: usize,
    align: usize,
    drop: bool,
}

/// Where the headers are, for ELF32 or ELF64, little-endian.
struct Layout {
    wide: bool,
    phoff: usize,
    phentsize: usize,
    phnum: usize,
    shoff: usize,
    shentsize: usize,
    shnum: usize,
    shstrndx: usize,
    /// The end of the ELF header and the program header table.
    headers_end: usize,
}

impl Layout {
    fn of(elf: &[u8]) -> Option<Layout> {
        if elf.get(..4)? != b"\x7fELF" || *elf.get(5)? != 1 {
            return None;
        }
        let wide = match elf.get(4)? {
            1 => false,
            2 => true,
            _ => return None,
        };
        let word = |at32: usize, at64: usize| -> Option<usize> {
            if wide {
                usize::try_from(u64_at(elf, at64)?).ok()
            } else {
                Some(u32_at(elf, at32)? as usize)
            }
        };
        let half =
            |at32: usize, at64: usize| Some(u16_at(elf, if wide { at64 } else { at32 })? as usize);
        let layout = Layout {
            wide,
            phoff: word(0x1c, 0x20)?,
            phentsize: half(0x2a, 0x36)?,
            phnum: half(0x2c, 0x38)?,
            shoff: word(0x20, 0x28)?,
            shentsize: half(0x2e, 0x3a)?,
            shnum: half(0x30, 0x3c)?,
            shstrndx: half(0x32, 0x3e)?,
            headers_end: 0,
        };
        let (ph, sh, header) = if wide { (56, 64, 64) } else { (32, 40, 52) };
        // Extended numbering (0 sections, or index 0xffff) is not handled.
        if layout.phentsize != ph
            || layout.shentsize != sh
            || layout.shnum == 0
            || layout.shstrndx >= layout.shnum
            || layout.shoff.checked_add(layout.shnum * sh)? > elf.len()
        {
            return None;
        }
        let headers_end = header.max(layout.phoff.checked_add(layout.phnum * ph)?);
        Some(Layout {
            headers_end,
            ..layout
        })
    }

    fn section(&self, elf: &[u8], i: usize) -> Option<Section> {
        let at = self.shoff + i * self.shentsize;
        let word = |o32: usize, o64: usize| -> Option<u64> {
            if self.wide {
                u64_at(elf, at + o64)
            } else {
                u32_at(elf, at + o32).map(u64::from)
            }
        };
        let size = |v: u64| usize::try_from(v).ok();
        Some(Section {
            name: u32_at(elf, at)? as usize,
            kind: u32_at(elf, at + 4)?,
            flags: word(8, 8)?,
            offset: size(word(16, 24)?)?,
            size: size(word(20, 32)?)?,
            align: size(word(32, 48)?)?,
            drop: false,
        })
    }

    /// Where segment `i`'s bytes in the file end.
    fn segment_end(&self, elf: &[u8], i: usize) -> Option<usize> {
        let at = self.phoff.checked_add(i * self.phentsize)?;
        let (offset, filesz) = if self.wide {
            (u64_at(elf, at + 8)?, u64_at(elf, at + 32)?)
        } else {
            (
                u64::from(u32_at(elf, at + 4)?),
                u64::from(u32_at(elf, at + 16)?),
            )
        };
        usize::try_from(offset.checked_add(filesz)?).ok()
    }

    /// Writes `s`'s new offset into its header, or makes it inactive.
    fn rewrite_section(&self, header: &mut [u8], s: &Section) {
        let put = |header: &mut [u8], o32: usize, o64: usize, value: u64| {
            if self.wide {
                header[o64..o64 + 8].copy_from_slice(&value.to_le_bytes());
            } else {
                header[o32..o32 + 4].copy_from_slice(&(value as u32).to_le_bytes());
            }
        };
        if s.drop {
            // SHT_NULL and empty, keeping only its name.
            header[4..].fill(0);
        } else {
            put(header, 16, 24, s.offset as u64);
        }
    }

    fn set_shoff(&self, out: &mut [u8], shoff: usize) {
        if self.wide {
            out[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        } else {
            out[0x20..0x24].copy_from_slice(&(shoff as u32).to_le_bytes());
        }
    }
}

fn pad_to(out: &mut Vec<u8>, align: usize) {
    let len = out.len().next_multiple_of(align);
    out.resize(len, 0);
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of the active sections of `elf`.
    fn active_sections(elf: &[u8]) -> Vec<String> {
        let layout = Layout::of(elf).unwrap();
        let sections: Vec<Section> = (0..layout.shnum)
            .map(|i| layout.section(elf, i).unwrap())
            .collect();
        let names = &sections[layout.shstrndx];
        let names = &elf[names.offset..names.offset + names.size];
        sections
            .iter()
            .filter(|s| s.kind != 0)
            .map(|s| {
                let name = &names[s.name..];
                String::from_utf8_lossy(&name[..name.iter().position(|b| *b == 0).unwrap()])
                    .into_owned()
            })
            .collect()
    }

    #[test]
    fn a_debug_build_loses_its_dwarf_and_keeps_everything_else() {
        // This test binary is a debug build with DWARF.
        let elf = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        // `.debug_gdb_scripts` is loaded (SHF_ALLOC): it stays.
        let dwarf = |n: &String| {
            (n.starts_with(".debug") && n != ".debug_gdb_scripts")
                || n == ".symtab"
                || n == ".strtab"
        };
        let before = active_sections(&elf);
        assert!(before.iter().any(|n| n == ".debug_info"), "{before:?}");
        assert!(before.iter().any(|n| n == ".symtab"), "{before:?}");
        let stripped = without_debug_info(&elf).expect("it has debug sections");
        let after = active_sections(&stripped);
        assert!(!after.iter().any(dwarf), "{after:?}");
        let kept: Vec<&String> = before.iter().filter(|n| !dwarf(n)).collect();
        assert_eq!(after.iter().collect::<Vec<_>>(), kept);
        assert!(
            stripped.len() * 2 < elf.len(),
            "{} of {}",
            stripped.len(),
            elf.len()
        );
        // Nothing to drop the second time.
        assert!(without_debug_info(&stripped).is_none());
        // And it still runs.
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("chopsticks-stripped-{}", std::process::id()));
        std::fs::write(&path, &stripped).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        let ran = std::process::Command::new(&path)
            .arg("--list")
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(ran.status.success(), "{ran:?}");
        assert!(String::from_utf8_lossy(&ran.stdout).contains("a_debug_build_loses_its_dwarf"));
    }

    #[test]
    fn damaged_headers_never_panic() {
        let elf = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let header = &elf[..4096.min(elf.len())];
        // Every byte of the headers set to extremes, one at a time.
        for at in 0..64 {
            for value in [0u8, 0x7f, 0xff] {
                let mut bad = header.to_vec();
                bad[at] = value;
                let _ = without_debug_info(&bad);
            }
        }
        // The section header table pointing anywhere.
        for shoff in [0u64, 1, u64::MAX, u64::MAX - 7, elf.len() as u64 - 1] {
            let mut bad = elf.clone();
            bad[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
            let _ = without_debug_info(&bad);
        }
        let mut bad = elf.clone();
        bad[0x20..0x28].copy_from_slice(&(u64::MAX - 40).to_le_bytes());
        let _ = without_debug_info(&bad);
    }

    /// A hostile file whose section headers all cover the same bytes
    /// would be copied once per header: refused, never grown.
    #[test]
    fn overlapping_sections_do_not_grow_the_file() {
        let elf = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let layout = Layout::of(&elf).unwrap();
        assert!(layout.wide, "this test patches ELF64 headers");
        // The unloaded sections but the names all cover everything after
        // the loaded image; the debug ones (still dropped) are emptied.
        let loaded_end = (0..layout.phnum)
            .map(|i| layout.segment_end(&elf, i).unwrap())
            .fold(layout.headers_end, usize::max);
        let offset = loaded_end.next_multiple_of(8);
        let size = (elf.len() - offset) as u64;
        let names = layout.section(&elf, layout.shstrndx).unwrap();
        let name_of = |s: &Section| {
            let table = &elf[names.offset..names.offset + names.size];
            let name = &table[s.name..];
            name[..name.iter().position(|b| *b == 0).unwrap()].to_vec()
        };
        let mut bad = elf.clone();
        let mut patched = 0;
        for i in 1..layout.shnum {
            let s = layout.section(&elf, i).unwrap();
            if i == layout.shstrndx || s.kind == SHT_NOBITS || s.flags & SHF_ALLOC != 0 {
                continue;
            }
            let at = layout.shoff + i * layout.shentsize;
            let (offset, size) = match name_of(&s).starts_with(b".debug") {
                true => (offset as u64, 0),
                false => (offset as u64, size),
            };
            bad[at + 24..at + 32].copy_from_slice(&offset.to_le_bytes());
            bad[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
            bad[at + 48..at + 56].copy_from_slice(&1u64.to_le_bytes());
            patched += 1;
        }
        assert!(patched > 2, "{patched}");
        if let Some(out) = without_debug_info(&bad) {
            assert!(out.len() <= bad.len(), "{} > {}", out.len(), bad.len());
        }
    }

    #[test]
    fn what_is_not_an_elf_file_is_shipped_as_it_is() {
        assert!(without_debug_info(b"#!/bin/sh\necho hi\n").is_none());
        assert!(without_debug_info(b"\x7fELF\x02\x01").is_none());
        assert!(without_debug_info(&[]).is_none());
    }
}
