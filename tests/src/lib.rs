//! What the integration tests share. The `#[remote]` functions they call
//! through real tunnels ([`fixtures`], [`files`], [`processes`]) live in a
//! library so that the test binaries and the fixture binaries (`src/bin/`)
//! register them under the same wire IDs; [`hosts`] says where the test
//! hosts are, [`soak`] holds the soak's moves and gauges, and [`hostile`]
//! the plans of the fake agent.

pub mod files;
pub mod fixtures;
pub mod hostile;
pub mod hosts;
pub mod processes;
pub mod soak;

pub use files::*;
pub use fixtures::*;
pub use hosts::*;
pub use processes::*;
