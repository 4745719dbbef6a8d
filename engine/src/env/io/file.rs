//! The real-filesystem store ([`FileIo`]): files below a root directory.
//!
//! Two promises on top of the operating system's files:
//! - **Directory entries are durable when the call returns.** A file's `fsync` makes its
//!   bytes durable, not its name: a new file whose directory was never synced can be gone
//!   after a power cut, and a removed one can come back. So `create` syncs the parent
//!   directory after the entry appears (and the parent of every directory it had to make),
//!   and `remove` syncs it after the entry goes. A failed directory sync is an error the
//!   caller sees; the entry change may or may not survive a crash then. [`super::MemIo`]
//!   models exactly this window.
//! - **A file belongs to one open handle at a time.** `create` and `open` take an exclusive
//!   advisory lock (`flock`, through std's `File::try_lock`) before changing anything, and
//!   the lock goes with the handle (dropped: closed: released). A file another process holds
//!   (or another engine, or another [`FileIo`], on the same store in this process: `flock`
//!   locks belong to the open file description, so they conflict inside one process too) is
//!   refused with `ErrorKind::ResourceBusy`, which the engine reports as ESE's
//!   `JET_errFileAccessDenied`; the refused call created, truncated or wrote nothing.

use super::{Io, IoFile};
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

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

/// The error of a file another handle holds: the engine maps `ResourceBusy` to
/// `JET_errFileAccessDenied` (ESE maps the operating system's sharing and lock violations to
/// it too).
fn held_elsewhere(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        format!("{} is locked by another process or engine", path.display()),
    )
}

/// Takes the exclusive advisory lock, without waiting.
fn lock_exclusive(file: &File, path: &Path) -> io::Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(held_elsewhere(path)),
        Err(TryLockError::Error(error)) => Err(error),
    }
}

/// Makes a directory's entries durable.
fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `create_dir_all`, with each directory it makes durable in its parent.
fn create_directories_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        create_directories_durably(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        // Made meanwhile by someone else: its entry is theirs to sync.
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(error) => return Err(error),
    }
    sync_directory(parent.unwrap_or(Path::new(".")))
}

fn parent_of(full: &Path) -> &Path {
    full.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

struct DiskFile {
    file: File,
}

impl Io for FileIo {
    fn create(&self, path: &str) -> io::Result<Box<dyn IoFile>> {
        let full = self.resolve(path)?;
        let parent = parent_of(&full);
        create_directories_durably(parent)?;
        let read_write = || {
            let mut options = OpenOptions::new();
            options.read(true).write(true);
            options
        };
        // Lock before truncating: an existing file may be another holder's, and a refused
        // create must leave it as it was. A new file cannot be held by anyone yet.
        let file = match read_write().create_new(true).open(&full) {
            Ok(file) => {
                lock_exclusive(&file, &full)?;
                file
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                let file = read_write().open(&full)?;
                lock_exclusive(&file, &full)?;
                file.set_len(0)?;
                file
            }
            Err(error) => return Err(error),
        };
        sync_directory(parent)?;
        Ok(Box::new(DiskFile { file }))
    }
    fn open(&self, path: &str) -> io::Result<Box<dyn IoFile>> {
        let full = self.resolve(path)?;
        let file = OpenOptions::new().read(true).write(true).open(&full)?;
        lock_exclusive(&file, &full)?;
        Ok(Box::new(DiskFile { file }))
    }
    fn remove(&self, path: &str) -> io::Result<()> {
        let full = self.resolve(path)?;
        std::fs::remove_file(&full)?;
        sync_directory(parent_of(&full))
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

    struct TempRoot(PathBuf);

    impl TempRoot {
        fn new(tag: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("jetsim-file-io-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            TempRoot(path)
        }
    }

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn paths_cannot_escape_the_root() {
        assert!(
            FileIo::new("/tmp").open("../etc/passwd").is_err(),
            "escapes the root"
        );
    }

    #[test]
    fn a_file_is_held_by_one_handle_until_it_is_dropped() {
        // Goal: a second store on the same folder (another process, as far as flock is
        // concerned) is refused with ResourceBusy on open and on create, the refused create
        // leaves the holder's bytes alone, and dropping the holder releases the file.
        let root = TempRoot::new("lock");
        let (a, b) = (FileIo::new(&root.0), FileIo::new(&root.0));
        let held = a.create("dir/f").unwrap();
        held.write_at(0, b"holder's bytes").unwrap();
        held.sync().unwrap();
        for refused in [b.open("dir/f").err(), b.create("dir/f").err()] {
            let error = refused.expect("refused while held");
            assert_eq!(error.kind(), io::ErrorKind::ResourceBusy, "{error}");
        }
        assert_eq!(
            held.len().unwrap(),
            14,
            "the refused create truncated nothing"
        );
        assert!(
            a.open("dir/f").is_err(),
            "the same store's second handle too"
        );
        drop(held);
        let reopened = b.open("dir/f").unwrap();
        let mut bytes = [0u8; 14];
        reopened.read_at(0, &mut bytes).unwrap();
        assert_eq!(&bytes, b"holder's bytes");
        drop(reopened);
        let recreated = b.create("dir/f").unwrap();
        assert_eq!(
            recreated.len().unwrap(),
            0,
            "create truncates once it holds the file"
        );
        let error = a.open("dir/f").err().expect("held again");
        assert_eq!(error.kind(), io::ErrorKind::ResourceBusy);
    }

    #[test]
    fn create_and_remove_change_the_directory() {
        let root = TempRoot::new("entries");
        let io = FileIo::new(&root.0);
        drop(io.create("a/b/c").unwrap());
        assert!(io.exists("a/b/c"));
        io.remove("a/b/c").unwrap();
        assert!(!io.exists("a/b/c"));
        assert_eq!(
            io.remove("a/b/c").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
