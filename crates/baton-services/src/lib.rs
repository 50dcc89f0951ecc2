//! Reference OpenStack services for Baton's end-to-end story: a live migration, a snapshot or a
//! boot from volume finishes although the user's token expires half-way, and a volume
//! attachment in use can be deleted only by a service acting for the user (CVE-2023-2088).
//!
//! This crate owns:
//!
//! * four small axum services with in-memory data and real state machines, each behind
//!   baton-authtoken's [`baton_authtoken::AuthTokenLayer`] and found through Baton's catalog:
//!   [`compute`] (Nova: boot from volume, `os-migrateLive`, `createImage`, detach, a task API),
//!   [`volume`] (Cinder: attachments API, volume actions, the CVE-2023-2088 rule),
//!   [`image`] (Glance: image create and upload) and [`network`] (Neutron: ports and bindings);
//! * [`identity`]: Baton's identity server embedded on threads of its own (restartable, with
//!   request counts and CPU time), and [`cloud`]: a whole deployment on loopback (users,
//!   projects, roles, service users, catalog, configuration files) made through the admin API;
//! * [`scenario`]: the scenarios, what each should do with and without `[service_user]`, and the
//!   runner that judges a run; [`timeline`]: who carried which token when, as text and HTML/SVG;
//! * [`demo`]: `baton demo` ([`demo::run_demo`]) and [`bench`](mod@bench): the figures the
//!   Nova spec planned to measure (identity calls, added latency, identity CPU time, cold and
//!   warm).
//!
//! Tokens never appear in logs, tables or timelines: only their 12-hex-digit SHA-256 prefixes.
//!
//! ## How it reaches the identity server
//!
//! Over HTTP only, like a real OpenStack service: the services validate tokens through
//! baton-authtoken's layer, make their onward calls as the user (compute to volume, image and
//! network, with `[service_user]`'s service token; volume to compute) through
//! [`baton_authtoken::OnwardCalls`], and authenticate with baton-client's plugins and sessions.
//! The demo deployment creates its projects, users, grants, services and endpoints through the
//! admin API, as the bootstrap admin.
//!
//! The crate depends on baton-server for two things of the demo only, neither of which has an
//! HTTP API: running the identity server in-process ([`identity`], so that `baton demo` is one
//! command and can stop and restart it mid-operation and measure its CPU time), and
//! [`baton_server::bootstrap::initialize`] (`db_sync`, `fernet_setup`, `bootstrap` of a new
//! deployment, shared with baton-testkit). It does not use the server's store or token crates.

pub mod bench;
pub mod cloud;
pub mod common;
pub mod compute;
pub mod demo;
pub mod identity;
pub mod image;
pub mod network;
pub mod progress;
pub mod scenario;
pub mod timeline;
pub mod volume;

pub use cloud::{Cloud, CloudOptions, Mode};
pub use demo::{run_demo, DemoOptions, DemoReport};
pub use progress::Output;
pub use scenario::{RunReport, Scenario};
