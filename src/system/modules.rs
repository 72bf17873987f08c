//! Kernel modules: device-mapper's, loaded from the initramfs when its control node is not
//! there yet.

use std::path::Path;

/// Loads the device-mapper modules if the control node is not there yet (modprobe from the
/// initramfs; a failure shows up when the control node cannot be opened).
pub fn load_device_mapper(root: &Path) {
    if root.join("dev/mapper/control").exists() {
        return;
    }
    for module in ["dm-mod", "dm-snapshot"] {
        match std::process::Command::new("modprobe").arg(module).status() {
            Ok(s) if s.success() => {}
            Ok(s) => log::warn!("modprobe {module} exited with {s}"),
            Err(e) => log::warn!("cannot run modprobe {module}: {e}"),
        }
    }
}
