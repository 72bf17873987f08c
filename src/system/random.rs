//! Where this binary's random bytes come from: a custom backend for the `getrandom` crate
//! (selected by `--cfg getrandom_backend="custom"` in `.cargo/config.toml`).
//!
//! # Who asks, and what for
//!
//! `cargo tree -i getrandom` (with `-e normal` for the shipped binary): only `rand`, and `rand`
//! only because of `devicemapper`, whose one use of it is the udev cookie
//! (`dm_udev_sync::generate_semaphore_cookie`: `rand::rng().random::<u16>()`, the low 16 bits
//! of a SysV semaphore key). That key must only differ from the keys of other live cookies,
//! and a clash is harmless: `semget(IPC_CREAT | IPC_EXCL)` fails with `EEXIST` and the crate
//! draws again. It protects nothing. std's `HashMap` seeds do not come through here; std
//! already reads them with `GRND_INSECURE`. The dev-dependency `tempfile` is built without its
//! `getrandom` feature: an integration test that does not link this library (`tests/cli.rs`)
//! would otherwise have no definition of the backend's symbol to link against.
//!
//! # Why not the crate's `getrandom(2)` backend
//!
//! `getrandom(buf, n, 0)` sleeps until the kernel's CRNG is initialised. Early in boot, in a
//! VM without a hardware RNG, that took ~1.2 s under qemu TCG (the kernel generates jitter
//! entropy while a caller waits), paid by every `rewind early` that resumes a device while
//! udev runs. So:
//! 1. `GRND_NONBLOCK`: the real thing when the CRNG is ready (it never blocks);
//! 2. on `EAGAIN`, `GRND_INSECURE` (Linux 5.6 and later): bytes from the CRNG as it is, never
//!    blocking; good enough for a key that only has to avoid clashes;
//! 3. if the kernel refuses `GRND_INSECURE` (`EINVAL`, older than 5.6): poll `GRND_NONBLOCK`
//!    for at most [`OLD_KERNEL_WAIT`], then bytes mixed from the clock, the process id and a
//!    counter. Never an error: `rand::rng()` panics on one, and this binary aborts on panic.

use std::time::{Duration, Instant};

/// How long, on a kernel without `GRND_INSECURE`, to wait for the CRNG before using the clock.
pub const OLD_KERNEL_WAIT: Duration = Duration::from_secs(1);

/// One `getrandom(2)` call into `buf`; the number of bytes written or the errno.
fn getrandom_once(buf: &mut [u8], flags: u32) -> Result<usize, i32> {
    // SAFETY: `buf` is valid and writable for `buf.len()` bytes; the kernel writes at most
    // that many and returns how many it wrote, or -1 with errno set.
    let r = unsafe { nix::libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), flags) };
    if r < 0 {
        Err(nix::errno::Errno::last_raw())
    } else {
        Ok(usize::try_from(r).unwrap_or(0))
    }
}

/// Fills `buf` with calls of `getrandom(2)` with `flags`; stops at the first error.
fn fill_with(buf: &mut [u8], flags: u32) -> Result<(), i32> {
    let mut done = 0;
    while done < buf.len() {
        match getrandom_once(&mut buf[done..], flags) {
            Ok(n) => done += n,
            Err(e) if e == nix::libc::EINTR => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// splitmix64: spreads a counter over 64 bits (the clock fallback's mixer).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Bytes that differ between processes and calls, without the kernel's pool.
fn fill_from_clock(buf: &mut [u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut state = nanos ^ (u64::from(std::process::id()) << 32);
    for chunk in buf.chunks_mut(8) {
        state = splitmix64(state ^ COUNTER.fetch_add(1, Ordering::Relaxed));
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
}

/// Fills `buf` as the module documentation describes; never blocks for more than
/// [`OLD_KERNEL_WAIT`] and never fails.
pub fn fill(buf: &mut [u8]) {
    match fill_with(buf, nix::libc::GRND_NONBLOCK) {
        Ok(()) => return,
        Err(e) if e == nix::libc::EAGAIN => {}
        Err(e) => log::debug!("getrandom(GRND_NONBLOCK): errno {e}"),
    }
    match fill_with(buf, nix::libc::GRND_INSECURE) {
        Ok(()) => return,
        Err(e) => log::debug!("getrandom(GRND_INSECURE): errno {e}"),
    }
    let deadline = Instant::now() + OLD_KERNEL_WAIT;
    while Instant::now() < deadline {
        if fill_with(buf, nix::libc::GRND_NONBLOCK).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    log::warn!("the kernel's random pool is not ready: udev cookie key taken from the clock");
    fill_from_clock(buf);
}

/// The `getrandom` crate's custom backend (`getrandom_backend = "custom"`), called by `rand`
/// for the udev cookie's key (see the module documentation). Builds without that cfg (the fuzz
/// targets: cargo-fuzz replaces the rustflags) never call it.
///
/// # Safety
///
/// The crate calls it with `dest` valid for writes of `len` bytes (possibly uninitialised).
/// Why `no_mangle`: the crate links to this exact symbol name; it is defined once, here.
#[unsafe(no_mangle)]
unsafe extern "Rust" fn __getrandom_v03_custom(
    dest: *mut u8,
    len: usize,
) -> Result<(), getrandom::Error> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: per the contract above `dest` is valid for `len` bytes; zeroing them first makes
    // every byte initialised before a slice is made over them.
    let buf = unsafe {
        std::ptr::write_bytes(dest, 0, len);
        std::slice::from_raw_parts_mut(dest, len)
    };
    fill(buf);
    Ok(())
}

/// A new LVM id (an LV's or VG's `id`), as LVM's `id_create` makes one: 32 characters from
/// `0-9a-zA-Z` (its alphabet without the last two, `!#`, kept for LVM1), in LVM's dashed form.
pub fn new_lvm_id() -> String {
    const C: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut raw = [0u8; 32];
    fill(&mut raw);
    let id: String = raw
        .iter()
        .map(|b| C[usize::from(*b) % C.len()] as char)
        .collect();
    crate::lvm::label::format_id(&id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_writes_every_byte() {
        // 4096 zero bytes from a random source happen with probability 2^-32768: a buffer
        // still all zero means nothing was written.
        let mut a = vec![0u8; 4096];
        fill(&mut a);
        assert!(a.iter().any(|&b| b != 0));
        let mut b = vec![0u8; 4096];
        fill(&mut b);
        assert_ne!(a, b, "two draws gave the same bytes");
    }

    #[test]
    fn clock_fallback_differs_between_calls_and_fills_odd_lengths() {
        let mut a = [0u8; 13];
        let mut b = [0u8; 13];
        fill_from_clock(&mut a);
        fill_from_clock(&mut b);
        assert_ne!(a, b);
        assert!(a[8..].iter().any(|&x| x != 0) || b[8..].iter().any(|&x| x != 0));
    }

    #[test]
    fn the_crate_reaches_this_backend() {
        // Through getrandom's public API: with the custom backend selected this lands in
        // `__getrandom_v03_custom` (a link error otherwise); with any other backend it still
        // has to fill the buffer.
        let mut buf = [0u8; 64];
        getrandom::fill(&mut buf).expect("getrandom::fill");
        assert!(buf.iter().any(|&b| b != 0));
    }
}
