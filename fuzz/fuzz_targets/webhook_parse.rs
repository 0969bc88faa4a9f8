//! The intake's pure front over arbitrary bytes: the signature header
//! parser and the payload parser must never panic, and the parser's answer
//! (the typed pass when it answers) must be the tolerant walk's.

#![no_main]

use fincelo::webhook::{payload, signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = signature::parse_header(Some(data));
    if let Ok(expected) = signature::parse_header(Some(data.get(..71).unwrap_or(data))) {
        let _ = signature::verify(b"secret", data, &expected);
    }
    let answer = payload::parse(data);
    assert_eq!(
        answer,
        payload::parse_tolerant(data),
        "the typed pass and the tolerant walk differ"
    );
    if let Ok(intake) = answer {
        let _ = serde_json::to_string(&intake);
    }
});
