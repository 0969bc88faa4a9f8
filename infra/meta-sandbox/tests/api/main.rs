//! Integration tests of the sandbox over real HTTP: one binary, one isolated
//! sandbox and webhook receiver per test (port 0, random tenant ids).

mod helpers;

mod accounts;
mod clock;
mod errors;
mod faults;
mod graph;
mod identity;
mod pricing;
mod responses;
mod schema;
mod templates;
mod versions;
mod webhooks;
