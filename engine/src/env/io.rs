//! Storage backend: a small trait, as redb's `StorageBackend`, with a real-filesystem
//! implementation and an in-memory one.
//!
//! In-memory fault model (the basis the durability work extends): each [`MemIo`] file keeps
//! its current bytes and an undo list of what every write since the last `sync` overwrote, so
//! [`MemIo::crash`] can put every file back to its last synced state (all unsynced writes
//! lost). Syncing costs nothing but dropping the undo list, so a log synced at every commit
//! stays cheap.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// A named file store. Paths are `/`-separated names relative to the store's root.
pub trait Io: Send + Sync {
    /// Creates (or truncates) a file.
    fn create(&self, path: &str) -> io::Result<Box<dyn IoFile>>;
    /// Opens an existing file; `NotFound` if it does not exist.
    fn open(&self, path: &str) -> io::Result<Box<dyn IoFile>>;
    fn remove(&self, path: &str) -> io::Result<()>;
    fn exists(&self, path: &str) -> bool;
}

/// One open file. Reads past the end fail with `UnexpectedEof`.
// `len` is fallible (it asks the backend), so an `is_empty` would only restate `len() == 0`.
#[allow(clippy::len_without_is_empty)]
pub trait IoFile: Send + Sync {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    fn sync(&self) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn set_len(&self, len: u64) -> io::Result<()>;
}

// ---------------------------------------------------------------------------------------------
// In memory

#[derive(Debug, Default)]
struct MemFileData {
    current: Vec<u8>,
    /// Length at the last sync.
    synced_len: usize,
    /// `(offset, bytes overwritten)` for every write since the last sync, oldest first.
    undo: Vec<(usize, Vec<u8>)>,
}

impl MemFileData {
    fn revert_to_synced(&mut self) {
        while let Some((offset, old)) = self.undo.pop() {
            let end = offset + old.len();
            if end > self.current.len() {
                // A later truncation cut these bytes off; bring them back.
                self.current.resize(end, 0);
            }
            self.current[offset..end].copy_from_slice(&old);
        }
        self.current.resize(self.synced_len, 0);
    }
}

/// In-memory files. Deterministic: the file table is a `BTreeMap`, and no call blocks.
#[derive(Debug, Default, Clone)]
pub struct MemIo {
    // std Mutex, not a runtime one: every critical section is a memcpy with no scheduling point
    // inside, so it can never be held across a model checker's preemption.
    files: Arc<Mutex<BTreeMap<String, Arc<Mutex<MemFileData>>>>>,
}

impl MemIo {
    pub fn new() -> Self {
        Self::default()
    }

    /// Names of all files, sorted.
    pub fn file_names(&self) -> Vec<String> {
        lock(&self.files).keys().cloned().collect()
    }

    /// A simulated crash: every file loses all writes since its last sync.
    pub fn crash(&self) {
        for file in lock(&self.files).values() {
            lock(file).revert_to_synced();
        }
    }

    /// Total bytes stored across all files.
    pub fn total_bytes(&self) -> u64 {
        lock(&self.files)
            .values()
            .map(|file| lock(file).current.len() as u64)
            .sum()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct MemFile {
    data: Arc<Mutex<MemFileData>>,
}

impl Io for MemIo {
    fn create(&self, path: &str) -> io::Result<Box<dyn IoFile>> {
        let data = Arc::new(Mutex::new(MemFileData::default()));
        lock(&self.files).insert(path.to_owned(), Arc::clone(&data));
        Ok(Box::new(MemFile { data }))
    }
    fn open(&self, path: &str) -> io::Result<Box<dyn IoFile>> {
        let files = lock(&self.files);
        let data = files
            .get(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.to_owned()))?;
        Ok(Box::new(MemFile {
            data: Arc::clone(data),
        }))
    }
    fn remove(&self, path: &str) -> io::Result<()> {
        lock(&self.files)
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.to_owned()))
    }
    fn exists(&self, path: &str) -> bool {
        lock(&self.files).contains_key(path)
    }
}

fn range(offset: u64, len: usize) -> io::Result<(usize, usize)> {
    let start = usize::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "range overflows"))?;
    Ok((start, end))
}

impl IoFile for MemFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let data = lock(&self.data);
        let (start, end) = range(offset, buf.len())?;
        if end > data.current.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past end",
            ));
        }
        buf.copy_from_slice(&data.current[start..end]);
        Ok(())
    }
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut data = lock(&self.data);
        let (start, end) = range(offset, bytes.len())?;
        let overwritten_end = end.min(data.current.len());
        if start < overwritten_end {
            let old = data.current[start..overwritten_end].to_vec();
            data.undo.push((start, old));
        }
        if end > data.current.len() {
            data.current.resize(end, 0);
        }
        data.current[start..end].copy_from_slice(bytes);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        let mut data = lock(&self.data);
        data.undo.clear();
        data.synced_len = data.current.len();
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.data).current.len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let (_, end) = range(len, 0)?;
        let mut data = lock(&self.data);
        if end < data.current.len() {
            let old = data.current[end..].to_vec();
            data.undo.push((end, old));
        }
        data.current.resize(end, 0);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// On disk

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
    fn crash_keeps_exactly_the_synced_bytes() {
        let io = MemIo::new();
        let file = io.create("f").unwrap();
        file.write_at(0, b"hello world").unwrap();
        file.sync().unwrap();
        file.write_at(6, b"WORLD and more").unwrap();
        file.write_at(0, b"J").unwrap();
        file.set_len(3).unwrap();
        io.crash();
        let mut buf = vec![0; 11];
        file.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"hello world");
        assert_eq!(file.len().unwrap(), 11);
    }

    #[test]
    fn reads_past_the_end_fail() {
        let io = MemIo::new();
        let file = io.create("f").unwrap();
        file.write_at(0, b"ab").unwrap();
        let mut buf = [0; 3];
        assert_eq!(
            file.read_at(0, &mut buf).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert!(io.open("missing").is_err());
        assert!(
            FileIo::new("/tmp").open("../etc/passwd").is_err(),
            "escapes the root"
        );
    }
}
