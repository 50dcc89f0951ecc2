//! baton-doctor's tests, one binary:
//!
//! * `sets`: every configuration set of `tests/fixtures/` (one healthy, the rest one real
//!   misconfiguration each) with the exact errors and warnings it must produce;
//! * `output`: the text lines, the JSON document's shape, the exit status, the documentation
//!   of every code, and that no password from the files is ever printed;
//! * `rotation`: the Fernet retention arithmetic and `fernet_rotate`'s refusal and `--force`;
//! * `live`: the live checks against a real Baton on 127.0.0.1 with correct and broken users,
//!   roles and server settings.

#![allow(clippy::unwrap_used)] // tests, benches and examples may unwrap
#![allow(clippy::too_many_lines)] // a scenario reads top to bottom, as the operator does

#[path = "doctor/common.rs"]
mod common;
#[path = "doctor/live.rs"]
mod live;
#[path = "doctor/output.rs"]
mod output;
#[path = "doctor/rotation.rs"]
mod rotation;
#[path = "doctor/sets.rs"]
mod sets;
