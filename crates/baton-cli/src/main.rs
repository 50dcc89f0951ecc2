//! The `baton` binary: `serve`, `quickstart` and the `manage` admin commands.
fn main() {}
