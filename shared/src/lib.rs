//! fincelo-whatsapp: the WhatsApp channel of Fincelo's CSM Hub.
//!
//! This crate holds all the logic; the four Lambda binaries under
//! `functions/` only wire it up. Layout:
//!
//! - [`config`], [`startup`]: typed configuration read once; the shared start-up path.
//! - [`clock`]: the one source of wall-clock time (shifted in local runs and tests).
//! - [`ids`], [`phone`]: validated identifiers and E.164 numbers (newtypes).
//! - Adapters, each owning its client and names: [`store`] (DynamoDB; the
//!   data model and its access patterns are documented there), [`queues`]
//!   (SQS), [`secrets`] (Secrets Manager), [`graph`] (Meta's Graph API);
//!   [`aws_http`], the HTTP client under the AWS SDK clients, and [`tls`],
//!   the TLS configuration both HTTP stacks share.
//! - [`tenants`]: the cached tenant and secret lookup every handler uses.
//! - Handlers: [`webhook`] (Meta's calls), [`sender`] (the send queue),
//!   [`templates`] (submission and approval tracking), [`admin`] (the
//!   Fincelo backend's channel-config, roster and timeline API).
//! - [`events`]: what the Fincelo app is told.

pub mod addressing;
pub mod admin;
pub mod aws_http;
pub mod cache;
pub mod clock;
pub mod config;
pub mod costs;
pub mod events;
pub mod graph;
pub mod identity;
pub mod ids;
pub mod metrics;
pub mod owed;
pub mod phone;
pub mod queues;
pub mod responses;
pub mod secrets;
pub mod sender;
pub mod startup;
pub mod store;
pub mod templates;
pub mod tenants;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod webhook;
