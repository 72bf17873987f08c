//! Pure decisions: from the VG model, the requests and the live device-mapper state, a plan.

pub mod cmdline;
pub mod table;
