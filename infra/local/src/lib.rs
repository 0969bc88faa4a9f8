//! Everything for running fincelo-whatsapp on one machine: provisioning the
//! AWS emulator from `template.yaml` ([`provision`]) and the SDK
//! configuration that reaches it ([`emulator`]), the local runner that
//! wires the Lambda handlers to HTTP and the send queue ([`stack`]) with
//! the send queue's event source mapping scaling as Lambda's ([`event_source`]), the
//! state file `fwa` reads ([`dev_state`]), the newcomer's scenario that
//! `make dev` plays ([`scenario`]), and the operator's day one to day three
//! that `make journey` runs through `fwa` ([`journey`]).

pub mod dev_state;
pub mod emulator;
pub mod event_source;
pub mod journey;
pub mod provision;
pub mod scenario;
pub mod stack;

pub use event_source::{delete_entries, delete_handled, lambda_event, receive_batch, Concurrency};
pub use provision::{Overrides, Resources};
pub use stack::{random_digits, LocalTenant, Stack, StackOptions, TimeControl};
