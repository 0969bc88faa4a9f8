//! The integration scenarios: real handlers, the moto server and the Meta
//! sandbox. One binary; each test owns its resources (see `helpers`).

mod helpers;

mod account;
mod admin;
mod costs;
mod e2e;
mod fair;
mod foundation;
mod handback;
mod identity;
mod meta_codes;
mod observability;
mod outbox;
mod reliability;
mod responses;
mod security;
mod send_rate;
mod send_scaling;
mod sender;
mod sender_limits;
mod templates;
mod waiting;
mod webhook;
mod webhook_hostile;
