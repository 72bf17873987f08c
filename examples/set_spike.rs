//! The snapshot-set spike (docs/SETS.md, VM scenario `sets-spike`): takes one instant of
//! several origins with device-mapper directly, through `rewind::system::window`, and writes
//! the sequence the scenario checks it against.
//!
//! ```text
//! set_spike writer FILE_A FILE_B STOP    append 1, 2, ... to A then B (each fsynced) until STOP exists
//! set_spike instant [--parallel] DEADLINE_MS ORIGIN:COW...
//! ```
//!
//! `instant`: ORIGIN is an origin's device-mapper name (`vg0-a`, plain or already a
//! `snapshot-origin`), COW the device-mapper name of an active plain LV meant to become its
//! COW store (`vg0-ia`, activated by stock `lvchange -ay`). Like `lvcreate -s`, the COW's
//! first 4 KiB are zeroed, its device removed and made again as `COW-cow` (uuid + `-cow`) with
//! the same table, and `COW` (same uuid) gets `snapshot ORIGIN-real COW-cow P 8`; the origin
//! gets `ORIGIN-real` (uuid + `-real`) with its current table and `snapshot-origin` in its
//! inactive slot. Then the window. Prints `window_us`, each suspend's end and the snapshots'
//! live time, in microseconds. No metadata is written: the scenario tears down by hand.

use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::time::Duration;

use rewind::plan::dev::UdevRules;
use rewind::plan::table::{DevRef, SnapshotArgs, Table, TableLine, Target};
use rewind::system::dm::{DeviceMapper, RealDm, Slot};
use rewind::system::window;

fn die(msg: String) -> ! {
    eprintln!("set_spike: {msg}");
    std::process::exit(1);
}

fn writer(a: &str, b: &str, stop: &str) {
    let open = |p: &str| {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
            .unwrap_or_else(|e| die(format!("{p}: {e}")))
    };
    let (mut fa, mut fb) = (open(a), open(b));
    let mut n: u64 = 0;
    let mut worst = Duration::ZERO;
    while std::fs::metadata(stop).is_err() {
        n += 1;
        let t = std::time::Instant::now();
        for f in [&mut fa, &mut fb] {
            writeln!(f, "{n}").unwrap_or_else(|e| die(format!("write: {e}")));
            f.sync_all().unwrap_or_else(|e| die(format!("fsync: {e}")));
        }
        worst = worst.max(t.elapsed());
    }
    println!("writes {n} worst_pair_us {}", worst.as_micros());
}

fn dev_ref(dm: &mut RealDm, name: &str) -> DevRef {
    let s = dm
        .info(name)
        .unwrap_or_else(|e| die(e.to_string()))
        .unwrap_or_else(|| die(format!("no device {name}")));
    DevRef::Number {
        major: s.dev.major,
        minor: s.dev.minor,
    }
}

fn one(length: u64, target: Target) -> Table {
    Table::new(vec![TableLine {
        start: 0,
        length,
        target,
    }])
    .unwrap_or_else(|e| die(e.to_string()))
}

fn zero_head(name: &str) {
    use std::os::unix::fs::FileExt;
    let path = format!("/dev/mapper/{name}");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| die(format!("{path}: {e}")));
    f.write_all_at(&[0u8; 4096], 0)
        .and_then(|()| f.sync_all())
        .unwrap_or_else(|e| die(format!("zeroing {path}: {e}")));
}

fn instant(parallel: bool, deadline_ms: u64, members: &[String]) {
    let mut dm = RealDm::new(Duration::from_secs(10)).unwrap_or_else(|e| die(e.to_string()));
    let mut origins = Vec::new();
    let mut snapshots = Vec::new();
    for m in members {
        let (origin, cow) = m
            .split_once(':')
            .unwrap_or_else(|| die(format!("{m}: want ORIGIN:COW")));
        let o = dm
            .info(origin)
            .unwrap_or_else(|e| die(e.to_string()))
            .unwrap_or_else(|| die(format!("no origin {origin}")));
        let ouuid = o.uuid.clone().unwrap_or_default();
        let live = dm
            .table(origin, Slot::Live)
            .unwrap_or_else(|e| die(e.to_string()));
        let size = live.length();
        let real = format!("{origin}-real");
        let already = matches!(
            live.lines.first().map(|l| &l.target),
            Some(Target::SnapshotOrigin { .. })
        );
        if !already {
            dm.create(&real, &format!("{ouuid}-real"))
                .unwrap_or_else(|e| die(e.to_string()));
            dm.load(&real, &live).unwrap_or_else(|e| die(e.to_string()));
            dm.resume(&real, UdevRules::DmOnly)
                .unwrap_or_else(|e| die(e.to_string()));
        }
        // The COW: zero its header through the plain LV, then make it again as LVM lays out
        // a snapshot's store.
        let c = dm
            .info(cow)
            .unwrap_or_else(|e| die(e.to_string()))
            .unwrap_or_else(|| die(format!("no cow {cow}")));
        let cuuid = c.uuid.clone().unwrap_or_default();
        let ctable = dm
            .table(cow, Slot::Live)
            .unwrap_or_else(|e| die(e.to_string()));
        zero_head(cow);
        dm.remove(cow, UdevRules::All)
            .unwrap_or_else(|e| die(e.to_string()));
        let cowdev = format!("{cow}-cow");
        dm.create(&cowdev, &format!("{cuuid}-cow"))
            .unwrap_or_else(|e| die(e.to_string()));
        dm.load(&cowdev, &ctable)
            .unwrap_or_else(|e| die(e.to_string()));
        dm.resume(&cowdev, UdevRules::DmOnly)
            .unwrap_or_else(|e| die(e.to_string()));
        let real_ref = dev_ref(&mut dm, &real);
        let cow_ref = dev_ref(&mut dm, &cowdev);
        dm.create(cow, &cuuid)
            .unwrap_or_else(|e| die(e.to_string()));
        let snap = one(
            size,
            Target::Snapshot(SnapshotArgs::persistent(real_ref.clone(), cow_ref, 8)),
        );
        dm.load(cow, &snap).unwrap_or_else(|e| die(e.to_string()));
        if !already {
            let so = one(size, Target::SnapshotOrigin { origin: real_ref });
            dm.load(origin, &so).unwrap_or_else(|e| die(e.to_string()));
        }
        origins.push(origin.to_owned());
        snapshots.push(cow.to_owned());
    }
    dm.udev_sync().unwrap_or_else(|e| die(e.to_string()));
    let control = std::fs::File::open("/dev/mapper/control")
        .unwrap_or_else(|e| die(format!("/dev/mapper/control: {e}")));
    let req = window::Request {
        origins,
        snapshots,
        messages: Vec::new(),
        deadline: Duration::from_millis(deadline_ms),
        parallel,
        die_inside: false,
    };
    match window::take(control.as_raw_fd(), &req) {
        Ok(r) => {
            let us: Vec<String> = r
                .suspended_at
                .iter()
                .map(|d| d.as_micros().to_string())
                .collect();
            println!(
                "window_us {} suspended_at_us {} snapshots_live_at_us {}",
                r.window.as_micros(),
                us.join(","),
                r.snapshots_live_at.as_micros()
            );
        }
        Err(e) => die(e.to_string()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("writer") if args.len() == 4 => writer(&args[1], &args[2], &args[3]),
        Some("instant") if args.len() >= 3 => {
            let parallel = args[1] == "--parallel";
            let rest = &args[1 + usize::from(parallel)..];
            let ms = rest
                .first()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| die(format!("bad deadline {:?}", rest.first())));
            instant(parallel, ms, &rest[1..]);
        }
        _ => die(
            "usage: set_spike writer A B STOP | instant [--parallel] DEADLINE_MS ORIGIN:COW..."
                .into(),
        ),
    }
}
