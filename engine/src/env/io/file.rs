//! The real-filesystem store ([`FileIo`]): files below a root directory.

use super::{Io, IoFile};
use std::fs::OpenOptions;
use std::io;
use std::path::PathBuf;

/// Real files below a root directory.
#[derive(Debug, Clone)]
pub struct FileIo {
    root: PathBuf,
}

impl FileIo {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileIo { root: root.into() }
    }

    fn resolve(&self, path: &str) -> io::Result<PathBuf> {
        // Reject escapes from the root: a path is a name inside the store, not a host path.
        if path.is_empty() || path.split('/').any(|part| part == ".." || part.is_empty()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid store path {path:?}"),
            ));
        }
        Ok(self.root.join(path))
    }
}

struct DiskFile {
    file: std::fs::File,
}

impl Io for FileIo {
    fn create(&self, path: &str) -> io::Result<Box<dyn IoFile>> {
        let full = self.resolve(path)?;
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(full)?;
        Ok(Box::new(DiskFile { file }))
    }
    fn open(&self, path: &str) -> io::Result<Box<dyn IoFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.resolve(path)?)?;
        Ok(Box::new(DiskFile { file }))
    }
    fn remove(&self, path: &str) -> io::Result<()> {
        std::fs::remove_file(self.resolve(path)?)
    }
    fn exists(&self, path: &str) -> bool {
        self.resolve(path).map(|p| p.is_file()).unwrap_or(false)
    }
}

impl IoFile for DiskFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(data, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_escape_the_root() {
        assert!(
            FileIo::new("/tmp").open("../etc/passwd").is_err(),
            "escapes the root"
        );
    }
}
