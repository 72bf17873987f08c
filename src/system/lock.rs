//! LVM's own VG lock, taken the way LVM2's tools take it in the booted system
//! (`lib/locking/file_locking.c`, `lib/misc/lvm-flock.c`): `flock` on `<locking_dir>/V_<vg>`,
//! opened with `O_CREAT|O_APPEND|O_RDWR` mode 0777; after the lock is granted the path must
//! still name the locked inode (another holder may have unlinked it on release), else retry.
//! Writers first take `V_<vg>:aux` exclusively (`global/prioritise_write_locks`, on by
//! default), so a stream of readers cannot starve them. On release LVM unlocks, then unlinks
//! the file if it can lock it again at once. Every wait here is bounded.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// LVM's default `global/locking_dir`.
pub const DEFAULT_LOCK_DIR: &str = "/run/lock/lvm";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open lvm lock file {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("vg {vg}: lvm lock {path} still held by another command after {waited_ms} ms")]
    Timeout {
        vg: String,
        path: String,
        waited_ms: u128,
    },
    #[error("{path} still locked after {waited_ms} ms")]
    Busy { path: String, waited_ms: u128 },
    #[error("cannot lock {path}: {errno}")]
    Flock {
        path: String,
        errno: nix::errno::Errno,
    },
}

/// An exclusive (write) lock on a VG; released on drop.
#[derive(Debug)]
pub struct VgLock {
    path: PathBuf,
    lock: Option<Flock<File>>,
}

fn open(path: &Path) -> Result<File, LockError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o777)
        .open(path)
        .map_err(|source| LockError::Open {
            path: path.display().to_string(),
            source,
        })
}

fn same_inode(path: &Path, f: &File) -> bool {
    match (std::fs::metadata(path), f.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Takes an exclusive flock on `path`, retrying without blocking until `deadline`.
fn flock_until(
    path: &Path,
    vg: &str,
    deadline: Instant,
    start: Instant,
) -> Result<Flock<File>, LockError> {
    loop {
        let file = open(path)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                if same_inode(path, &lock) {
                    return Ok(lock);
                }
                // Unlinked by its previous holder while we waited: lock the new file.
                drop(lock);
                continue;
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {}
            Err((_, nix::errno::Errno::EINTR)) => continue,
            Err((_, errno)) => {
                return Err(LockError::Flock {
                    path: path.display().to_string(),
                    errno,
                });
            }
        }
        if Instant::now() >= deadline {
            return Err(LockError::Timeout {
                vg: vg.to_owned(),
                path: path.display().to_string(),
                waited_ms: start.elapsed().as_millis(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// LVM's release: unlock, then unlink the file if nobody else holds or waits on it.
fn release(path: &Path, lock: Flock<File>) {
    if let Ok(file) = lock.unlock()
        && let Ok(again) = Flock::lock(file, FlockArg::LockExclusiveNonblock)
        && same_inode(path, &again)
    {
        let _ = std::fs::remove_file(path);
    }
}

/// An exclusive `flock` on one file of rewind's own (`rewind snapshot`'s lock); released on
/// drop, and by the kernel when the process dies. The file stays.
#[derive(Debug)]
pub struct FileLock {
    _lock: Flock<File>,
}

impl FileLock {
    fn open_in(path: &Path) -> Result<File, LockError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| LockError::Open {
                path: dir.display().to_string(),
                source,
            })?;
        }
        open(path)
    }

    /// Waits at most `timeout` for the lock on `path` (its directory made when missing).
    pub fn exclusive(path: &Path, timeout: Duration) -> Result<FileLock, LockError> {
        let start = Instant::now();
        drop(Self::open_in(path)?);
        match flock_until(path, "", start + timeout, start) {
            Ok(lock) => Ok(FileLock { _lock: lock }),
            Err(LockError::Timeout {
                path, waited_ms, ..
            }) => Err(LockError::Busy { path, waited_ms }),
            Err(e) => Err(e),
        }
    }

    /// The lock if nobody holds it now.
    pub fn try_exclusive(path: &Path) -> Option<FileLock> {
        let f = Self::open_in(path).ok()?;
        Flock::lock(f, FlockArg::LockExclusiveNonblock)
            .ok()
            .map(|lock| FileLock { _lock: lock })
    }
}

impl VgLock {
    /// Takes LVM's write lock on `vg` in `lock_dir`, waiting at most `timeout`. The directory
    /// is created (as LVM does) when missing.
    pub fn exclusive(lock_dir: &Path, vg: &str, timeout: Duration) -> Result<VgLock, LockError> {
        std::fs::create_dir_all(lock_dir).map_err(|source| LockError::Open {
            path: lock_dir.display().to_string(),
            source,
        })?;
        let start = Instant::now();
        let deadline = start + timeout;
        let path = lock_dir.join(format!("V_{vg}"));
        let aux_path = lock_dir.join(format!("V_{vg}:aux"));
        let aux = flock_until(&aux_path, vg, deadline, start)?;
        let main = flock_until(&path, vg, deadline, start);
        release(&aux_path, aux);
        let lock = main?;
        log::debug!("locked {}", path.display());
        Ok(VgLock {
            path,
            lock: Some(lock),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for VgLock {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            release(&self.path, lock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_times_out_and_cleans_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = VgLock::exclusive(dir.path(), "vg0", Duration::from_secs(1)).expect("first");
        assert!(dir.path().join("V_vg0").exists());
        let e = VgLock::exclusive(dir.path(), "vg0", Duration::from_millis(100)).expect_err("held");
        let msg = e.to_string();
        assert!(msg.starts_with("vg vg0: lvm lock "), "{msg}");
        assert!(msg.contains("V_vg0"), "{msg}");
        // Another VG is independent.
        drop(VgLock::exclusive(dir.path(), "vg1", Duration::from_millis(100)).expect("vg1"));
        drop(held);
        assert!(
            !dir.path().join("V_vg0").exists(),
            "unlinked on release, as lvm does"
        );
        drop(VgLock::exclusive(dir.path(), "vg0", Duration::from_millis(100)).expect("again"));
    }

    #[test]
    fn waits_for_a_holder_that_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = VgLock::exclusive(dir.path(), "vg0", Duration::from_secs(1)).expect("first");
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(held);
        });
        VgLock::exclusive(dir.path(), "vg0", Duration::from_secs(5)).expect("after release");
        t.join().expect("join");
    }

    #[test]
    fn stock_flock_holder_blocks_us() {
        // An outside flock(1) holder, as an lvm command would be.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("V_vg0");
        let f = open(&path).expect("open");
        let held = Flock::lock(f, FlockArg::LockExclusive).expect("lock");
        assert!(VgLock::exclusive(dir.path(), "vg0", Duration::from_millis(60)).is_err());
        drop(held);
        assert!(VgLock::exclusive(dir.path(), "vg0", Duration::from_millis(60)).is_ok());
    }
}
