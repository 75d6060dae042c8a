//! Just enough ELF to name a binary's architecture and tell whether it is
//! statically linked, without running it.

use std::io::{Read, Seek, SeekFrom};

const EM_386: u16 = 3;
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_RISCV: u16 = 243;
const PT_INTERP: u32 = 3;

/// The fields of an ELF header this crate needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elf {
    is_64: bool,
    little: bool,
    machine: u16,
    phoff: u64,
    phentsize: u16,
    phnum: u16,
}

impl Elf {
    /// Parses the header at the start of `r`; `None` when it is not ELF.
    pub(crate) fn read(r: &mut impl Read) -> Option<Elf> {
        let mut h = [0u8; 64];
        let mut got = 0;
        while got < h.len() {
            match r.read(&mut h[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        if got < 52 || &h[..4] != b"\x7fELF" {
            return None;
        }
        let is_64 = match h[4] {
            1 => false,
            2 if got >= 64 => true,
            _ => return None,
        };
        let little = match h[5] {
            1 => true,
            2 => false,
            _ => return None,
        };
        let u16_at = |o: usize| {
            let b = [h[o], h[o + 1]];
            if little {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            }
        };
        let u32_at = |o: usize| {
            let b = [h[o], h[o + 1], h[o + 2], h[o + 3]];
            if little {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[o..o + 8]);
            if little {
                u64::from_le_bytes(b)
            } else {
                u64::from_be_bytes(b)
            }
        };
        let (phoff, phentsize, phnum) = if is_64 {
            (u64_at(0x20), u16_at(0x36), u16_at(0x38))
        } else {
            (u64::from(u32_at(0x1c)), u16_at(0x2a), u16_at(0x2c))
        };
        Some(Elf {
            is_64,
            little,
            machine: u16_at(0x12),
            phoff,
            phentsize,
            phnum,
        })
    }

    /// The kernel's name for the machine (`uname -m`), as nodes report theirs.
    pub(crate) fn architecture(&self) -> Option<&'static str> {
        Some(match (self.machine, self.is_64) {
            (EM_X86_64, true) => "x86_64",
            (EM_AARCH64, true) => "aarch64",
            (EM_386, false) => "i686",
            (EM_ARM, false) => "armv7l",
            (EM_RISCV, true) => "riscv64",
            _ => return None,
        })
    }

    /// True when the program headers ask for no interpreter (ld.so): the
    /// binary runs in a root filesystem without libraries.
    pub(crate) fn is_static(&self, r: &mut (impl Read + Seek)) -> std::io::Result<bool> {
        let entsize = u64::from(self.phentsize);
        if entsize < 4 {
            return Ok(true);
        }
        for i in 0..u64::from(self.phnum) {
            r.seek(SeekFrom::Start(self.phoff + i * entsize))?;
            let mut t = [0u8; 4];
            r.read_exact(&mut t)?;
            let p_type = if self.little {
                u32::from_le_bytes(t)
            } else {
                u32::from_be_bytes(t)
            };
            if p_type == PT_INTERP {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Maps the names OCI and Go use (`amd64`, `arm64`) to the kernel's.
pub(crate) fn kernel_arch(oci: &str) -> String {
    match oci {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i686",
        "arm" => "armv7l",
        other => other,
    }
    .to_string()
}

/// The OCI name of the architecture this program runs on.
pub(crate) fn host_oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    #[test]
    fn reads_the_test_binary_itself() {
        let exe = std::env::current_exe().expect("own path");
        let mut f = File::open(exe).expect("open own binary");
        let elf = Elf::read(&mut f).expect("an ELF file");
        let expected = match std::env::consts::ARCH {
            "x86_64" => Some("x86_64"),
            "aarch64" => Some("aarch64"),
            _ => None,
        };
        assert_eq!(elf.architecture(), expected);
        // Test binaries link glibc dynamically.
        assert!(!elf.is_static(&mut f).expect("program headers"));
    }

    #[test]
    fn not_elf() {
        assert!(Elf::read(&mut &b"#!/bin/sh\necho hi\n"[..]).is_none());
        assert!(Elf::read(&mut &b"\x7fELF"[..]).is_none());
    }

    #[test]
    fn arch_names() {
        assert_eq!(kernel_arch("amd64"), "x86_64");
        assert_eq!(kernel_arch("arm64"), "aarch64");
        assert_eq!(kernel_arch("s390x"), "s390x");
    }
}
