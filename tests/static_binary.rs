//! The `rewind` binary must run in an initramfs with no libc and no loader: no ELF interpreter,
//! no NEEDED entries.

use object::Endianness;
use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use std::path::Path;

type Header = elf::FileHeader64<Endianness>;

/// The file's bytes.
fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The ELF64 header of `data` (the file at `path`), its byte order and its program headers.
fn parse<'a>(
    path: &Path,
    data: &'a [u8],
) -> (
    &'a Header,
    Endianness,
    &'a [elf::ProgramHeader64<Endianness>],
) {
    let header =
        Header::parse(data).unwrap_or_else(|e| panic!("{} is not ELF64: {e}", path.display()));
    let endian = header.endian().expect("endianness");
    let segments = header
        .program_headers(endian, data)
        .expect("program headers");
    (header, endian, segments)
}

/// Returns the interpreter (if any) and the NEEDED entries of an ELF64 little-endian file.
fn dynamic_deps(path: &Path) -> (Option<String>, Vec<String>) {
    let data = read(path);
    let (header, endian, segments) = parse(path, &data);
    let mut interp = None;
    let mut needed = Vec::new();
    for seg in segments {
        match seg.p_type(endian) {
            elf::PT_INTERP => {
                let bytes = seg.data(endian, &*data).expect("interp data");
                interp = Some(
                    String::from_utf8_lossy(bytes)
                        .trim_end_matches('\0')
                        .to_owned(),
                );
            }
            elf::PT_DYNAMIC => {
                let sections = header.sections(endian, &*data).expect("sections");
                let (dynamic, index) = sections
                    .dynamic(endian, &*data)
                    .expect("dynamic section")
                    .expect("a PT_DYNAMIC segment has a .dynamic section");
                let strings = sections.strings(endian, &*data, index).expect("dynstr");
                for d in dynamic {
                    if d.d_tag(endian) == elf::DT_NEEDED {
                        let name = d.string(endian, strings).expect("needed name");
                        needed.push(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
            _ => {}
        }
    }
    (interp, needed)
}

fn assert_static(path: &Path) {
    let (interp, needed) = dynamic_deps(path);
    assert_eq!(interp, None, "{} has an ELF interpreter", path.display());
    assert!(
        needed.is_empty(),
        "{} needs shared libraries: {needed:?}",
        path.display()
    );
}

#[test]
fn test_binary_is_static() {
    assert_static(Path::new(env!("CARGO_BIN_EXE_rewind")));
}

#[test]
fn initramfs_build_is_static() {
    assert_static(Path::new(env!("CARGO_BIN_EXE_rewind-initramfs")));
}

/// The ELF type (`ET_DYN`: position independent, loaded at a random address) and whether the
/// file has a `PT_GNU_EH_FRAME` segment (the unwinder's `.eh_frame_hdr` index).
fn type_and_eh_frame_hdr(path: &Path) -> (elf::FileType, bool) {
    let data = read(path);
    let (header, endian, segments) = parse(path, &data);
    let hdr = segments
        .iter()
        .any(|s| s.p_type(endian) == elf::PT_GNU_EH_FRAME);
    (header.e_type(endian), hdr)
}

/// `tests/run.sh` sets REWIND_RELEASE_BIN to the release binary; the initramfs build
/// (`rewind-initramfs`, what the hooks put in the image) is beside it. Both stay position
/// independent (ASLR, issue 17); the initramfs build is linked without `.eh_frame_hdr` (build.rs:
/// it never unwinds), the full binary keeps it.
#[test]
fn release_binary_is_static() {
    match std::env::var_os("REWIND_RELEASE_BIN") {
        Some(path) => {
            let path = Path::new(&path);
            let initramfs = path.with_file_name("rewind-initramfs");
            assert_static(path);
            assert_static(&initramfs);
            assert_eq!(type_and_eh_frame_hdr(path), (elf::ET_DYN, true));
            assert_eq!(type_and_eh_frame_hdr(&initramfs), (elf::ET_DYN, false));
            // No TOML parser in the initramfs build (it reads the boot JSON): none of the toml
            // crates' panic locations or error text, which the full binary has.
            for needle in ["/toml_parser-", "/toml-0.", "TOML parse error at line"] {
                assert!(
                    holds(path, needle),
                    "rewind lacks {needle:?}: the check is blind"
                );
                assert!(
                    !holds(&initramfs, needle),
                    "rewind-initramfs links a TOML parser: it holds {needle:?}"
                );
            }
        }
        None => eprintln!(
            "SKIP release_binary_is_static: REWIND_RELEASE_BIN not set (tests/run.sh sets it)"
        ),
    }
}

/// Whether the file's bytes hold `needle`.
fn holds(path: &Path, needle: &str) -> bool {
    memchr::memmem::find(&read(path), needle.as_bytes()).is_some()
}

#[test]
fn checker_sees_a_dynamic_binary() {
    // The checker itself must be able to fail: the host's own shell is dynamically linked.
    let (interp, needed) = dynamic_deps(Path::new("/bin/sh"));
    assert!(interp.is_some(), "/bin/sh should have an interpreter");
    assert!(!needed.is_empty(), "/bin/sh should need libc");
}
