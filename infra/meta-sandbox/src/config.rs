//! Typed configuration of one sandbox instance, read once at spawn.

use crate::clock::Clock;
use crate::knobs::Knobs;
use crate::versions::CURRENT_VERSION;

/// How a sandbox starts. Knobs can change later through `PUT /_sandbox/knobs`.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The Graph version the sandbox reports as current (Meta's latest stable,
    /// see [`crate::versions`]); any listed version path works.
    pub graph_version: String,
    /// Knobs at start, and what `POST /_sandbox/reset` with `reset_knobs` returns to.
    pub knobs: Knobs,
    /// Base used for `paging.next` URLs; `None` = `http://<Host header>`.
    pub public_base_url: Option<String>,
    /// Wall-clock time for everything Meta shows or keeps (see [`crate::clock`]).
    /// The local stack passes `Clock::from_fn(move || clock.now_ms())`.
    pub clock: Clock,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            graph_version: CURRENT_VERSION.into(),
            knobs: Knobs::default(),
            public_base_url: None,
            clock: Clock::system(),
        }
    }
}
