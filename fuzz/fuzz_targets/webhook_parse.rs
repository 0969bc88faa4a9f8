//! The intake's pure front over arbitrary bytes: the signature header
//! parser, the tenant routing read and the full parser must never panic,
//! and a body the parser accepts must also name its tenant's ids.

#![no_main]

use fincelo::webhook::{payload, signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = signature::parse_header(Some(data));
    if let Ok(expected) = signature::parse_header(Some(data.get(..71).unwrap_or(data))) {
        let _ = signature::verify(b"secret", data, &expected);
    }
    let routing = payload::routing_ids(data);
    if let Ok(intake) = payload::parse(data) {
        assert!(
            routing.is_ok(),
            "parse accepted a body whose routing ids could not be read"
        );
        let _ = serde_json::to_string(&intake);
    }
});
