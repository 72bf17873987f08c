//! rewind: reboot-to-rollback for LVM2. See `DESIGN.md` in the steering repository.
//!
//! # Layers
//!
//! Imports only go down; a module may use its own layer and the layers below it, never one
//! above. `tests/layers.rs` checks these rules on the source.
//!
//! 1. [`lvm`]: the LVM2 on-disk format and the VG model, and the rules of device selection.
//!    Pure: bytes and text in, data out. Imports nothing else of this crate; touches no file,
//!    device or kernel interface (no `std::fs`, `std::process`, `std::env`, `nix`, `libc`,
//!    `devicemapper`).
//! 2. [`plan`]: pure decisions. From the model, the requests and the live device-mapper state,
//!    a plan (metadata changes and typed device-mapper steps). Imports [`lvm`] only, and owns
//!    its own types (device numbers, udev flags: `plan::dev`); same purity as [`lvm`].
//! 3. [`system`]: the kernel boundary, the only layer that touches the kernel, `/dev`, `/sys`
//!    and `/proc` (block devices, the device selection's reading, the scan, metadata commits,
//!    device-mapper behind a trait, locks, device nodes, modules, the kernel log, files, crash
//!    points). Imports
//!    [`lvm`] and [`plan`], and converts [`plan`]'s types into the kernel's and the crates'.
//!    Beside it: [`config`] (`rewind.toml`; imports [`lvm`]) and [`exit`] (the pinned exit
//!    codes; imports nothing).
//! 4. [`flow`]: one module per command, each with one entry point (`run`): early, plan, poll,
//!    rollback, cancel, status, inspect, check-config, and the ones to come. A flow reads
//!    through [`system`], decides through [`plan`], applies through [`system`], and returns
//!    [`flow::Error`]: no file, process or kernel call of its own (outside its tests). Imports
//!    everything below; never [`cli`].
//! 5. [`cli`]: parses arguments, calls one flow, prints its outcome (text or `--json`) and maps
//!    it, or its error, to an exit code in one place ([`cli::exit_code`]). Nothing else (it
//!    installs the loggers).
//!
//! The recording device-mapper fake (`system::dm::FakeDm`) is compiled for tests only
//! (`cfg(test)`, or the `testing` feature the integration tests turn on).

pub mod cli;
pub mod config;
pub mod exit;
pub mod flow;
pub mod lvm;
pub mod plan;
pub mod system;
