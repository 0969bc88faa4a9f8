//! The parts of the benchmark other crates use: the AWS request counter
//! (an SDK interceptor), also used by the integration tests that hold the
//! AWS cost per message.

pub mod counting;
