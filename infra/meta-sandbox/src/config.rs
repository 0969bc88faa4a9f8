//! Typed configuration of one sandbox instance, read once at spawn.

use crate::knobs::Knobs;

/// How a sandbox starts. Knobs can change later through `PUT /_sandbox/knobs`.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The Graph version the sandbox reports as current (any `v<major>.<minor>` path works).
    pub graph_version: String,
    /// Knobs at start, and what `POST /_sandbox/reset` with `reset_knobs` returns to.
    pub knobs: Knobs,
    /// Base used for `paging.next` URLs; `None` = `http://<Host header>`.
    pub public_base_url: Option<String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            graph_version: "v23.0".into(),
            knobs: Knobs::default(),
            public_base_url: None,
        }
    }
}
