//! A writer for the kernel's initramfs format: "newc" cpio (the `070701` ASCII header,
//! see the kernel's Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! The writer is deliberately small: directories, regular files, symlinks and character
//! device nodes, all owned by root, with fixed mtimes so the same content always gives
//! the same bytes (the guest image cache is keyed by content). Parent directories are
//! emitted automatically, once, before their first child.

use std::collections::BTreeSet;
use std::io::{self, Write};

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";

/// File type bits (`S_IF*`) as stored in the header's mode field.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Streams newc entries into `W`. Call [`CpioWriter::finish`] to write the trailer.
pub struct CpioWriter<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
    dirs: BTreeSet<String>,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            written: 0,
            next_ino: 1,
            dirs: BTreeSet::new(),
        }
    }

    /// Normalise a guest path: no leading `/`, no `.`/`..`/empty components.
    fn clean(path: &str) -> io::Result<String> {
        let mut parts = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("guest path {path:?} contains `..`"),
                    ))
                }
                c => parts.push(c),
            }
        }
        if parts.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("guest path {path:?} names the root"),
            ));
        }
        Ok(parts.join("/"))
    }

    fn ensure_parents(&mut self, clean: &str) -> io::Result<()> {
        let mut prefix = String::new();
        let comps: Vec<&str> = clean.split('/').collect();
        for c in &comps[..comps.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(c);
            if !self.dirs.contains(&prefix) {
                let p = prefix.clone();
                self.header(&p, S_IFDIR | 0o755, 0, 2, (0, 0))?;
                self.dirs.insert(p);
            }
        }
        Ok(())
    }

    fn header(
        &mut self,
        name: &str,
        mode: u32,
        size: u32,
        nlink: u32,
        rdev: (u32, u32),
    ) -> io::Result<()> {
        let ino = self.next_ino;
        self.next_ino += 1;
        let namesize = name.len() as u32 + 1;
        let hdr = format!(
            "{MAGIC}{ino:08x}{mode:08x}{uid:08x}{gid:08x}{nlink:08x}{mtime:08x}{size:08x}{dmaj:08x}{dmin:08x}{rmaj:08x}{rmin:08x}{namesize:08x}{check:08x}",
            uid = 0,
            gid = 0,
            mtime = 0,
            dmaj = 0,
            dmin = 0,
            rmaj = rdev.0,
            rmin = rdev.1,
            check = 0
        );
        self.put(hdr.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0u8; 3][..n])
    }

    /// A directory (parents are created as needed; repeated calls are no-ops).
    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        let c = Self::clean(path)?;
        if self.dirs.contains(&c) {
            return Ok(());
        }
        self.ensure_parents(&c)?;
        self.header(&c, S_IFDIR | (perm & 0o7777), 0, 2, (0, 0))?;
        self.dirs.insert(c);
        Ok(())
    }

    /// A regular file with the given permission bits and content.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        let c = Self::clean(path)?;
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path}: larger than 4 GiB"),
            )
        })?;
        self.ensure_parents(&c)?;
        self.header(&c, S_IFREG | (perm & 0o7777), size, 1, (0, 0))?;
        self.put(data)?;
        self.pad()
    }

    /// A symbolic link `path -> target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let c = Self::clean(path)?;
        self.ensure_parents(&c)?;
        self.header(&c, S_IFLNK | 0o777, target.len() as u32, 1, (0, 0))?;
        self.put(target.as_bytes())?;
        self.pad()
    }

    /// A character device node (e.g. `/dev/console` 5:1, needed before devtmpfs is mounted).
    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        let c = Self::clean(path)?;
        self.ensure_parents(&c)?;
        self.header(&c, S_IFCHR | (perm & 0o7777), 0, 1, (major, minor))
    }

    /// Write the trailer and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.header(TRAILER, 0, 0, 1, (0, 0))?;
        // The kernel accepts archives padded to any boundary; 512 keeps `cpio -t` quiet.
        let n = (512 - (self.written % 512) as usize) % 512;
        self.put(&vec![0u8; n])?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_matches_newc() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("/init", 0o755, b"#!/bin/sh\n").unwrap();
        let out = w.finish().unwrap();
        let s = String::from_utf8_lossy(&out[..110]).into_owned();
        assert!(s.starts_with("070701"), "{s}");
        // mode field: regular file 0755
        assert_eq!(&s[14..22], format!("{:08x}", 0o100755));
        // filesize field
        assert_eq!(&s[54..62], "0000000a");
        // namesize counts the NUL
        assert_eq!(&s[94..102], "00000005");
        // name + NUL then padding to 4: header 110 + 5 = 115 -> 116
        assert_eq!(&out[110..115], b"init\0");
        assert_eq!(&out[116..126], b"#!/bin/sh\n");
        assert_eq!(out.len() % 512, 0);
    }

    #[test]
    fn parents_are_emitted_once_and_dotdot_is_refused() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("a/b/c", 0o644, b"x").unwrap();
        w.file("a/b/d", 0o644, b"y").unwrap();
        w.dir("a", 0o755).unwrap();
        let out = w.finish().unwrap();
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("a/b\0").count(), 1);
        assert!(CpioWriter::new(Vec::new())
            .file("../etc/passwd", 0o644, b"")
            .is_err());
        assert!(CpioWriter::new(Vec::new()).file("/", 0o644, b"").is_err());
    }

    /// Read the archive back with the system's `cpio -t` (GNU cpio, Debian package `cpio`).
    #[test]
    fn gnu_cpio_lists_what_we_wrote() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("/init", 0o755, b"#!/bin/busybox sh\necho hi\n")
            .unwrap();
        w.symlink("/bin/sh", "busybox").unwrap();
        w.file("/bin/busybox", 0o755, &[0x7f, b'E', b'L', b'F', 1, 2, 3])
            .unwrap();
        w.char_dev("/dev/console", 0o600, 5, 1).unwrap();
        w.dir("/proc", 0o555).unwrap();
        let archive = w.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.cpio");
        std::fs::write(&path, &archive).unwrap();
        let cpio = |args: &[&str]| {
            let out = std::process::Command::new("cpio")
                .args(args)
                .arg(&path)
                .output()
                .expect("run cpio (Debian package `cpio`)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let names = cpio(&["-t", "--quiet", "-F"]);
        assert_eq!(
            names.lines().collect::<Vec<_>>(),
            [
                "init",
                "bin",
                "bin/sh",
                "bin/busybox",
                "dev",
                "dev/console",
                "proc"
            ],
            "{names}"
        );
        let listing = cpio(&["-t", "-v", "--quiet", "-F"]);
        assert!(listing.contains("bin/sh -> busybox"), "{listing}");
        assert!(
            listing.lines().next().unwrap().starts_with("-rwxr-xr-x"),
            "{listing}"
        );
        assert!(listing.contains("crw-------"), "{listing}");
        // Extract and compare content.
        let x = dir.path().join("x");
        std::fs::create_dir(&x).unwrap();
        let st = std::process::Command::new("cpio")
            .args(["-i", "--quiet", "--no-absolute-filenames", "-F"])
            .arg(&path)
            .arg("init")
            .current_dir(&x)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(
            std::fs::read(x.join("init")).unwrap(),
            b"#!/bin/busybox sh\necho hi\n"
        );
    }
}
