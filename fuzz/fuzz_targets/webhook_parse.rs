//! The intake's pure front over arbitrary bytes and over the hostile
//! shapes of `shapes.rs`: the signature header parser and the payload
//! parser never panic, and the parser keeps its promises whatever the body:
//! no list over its cap, only valid routing ids, an answer that serializes,
//! and refusals that carry no value from the body.

#![no_main]

#[path = "shapes.rs"]
mod shapes;

use fincelo::ids::{PhoneNumberId, WabaId};
use fincelo::webhook::{payload, signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = signature::parse_header(Some(data));
    if let Ok(expected) = signature::parse_header(Some(data.get(..71).unwrap_or(data))) {
        let _ = signature::verify(b"secret", data, &expected);
    }
    let body = shapes::expand(data);
    match payload::parse(&body) {
        Ok(intake) => {
            let max = payload::MAX_PER_LIST_KIND;
            assert!(intake.waba_ids.len() <= max && intake.phone_number_ids.len() <= max);
            assert!(intake.messages.len() <= max && intake.statuses.len() <= max);
            assert!(intake.waba_ids.iter().all(|w| WabaId::check(w).is_ok()));
            assert!(intake
                .phone_number_ids
                .iter()
                .all(|p| PhoneNumberId::check(p).is_ok()));
            assert!(serde_json::to_string(&intake).is_ok());
        }
        Err(e) => {
            let said = e.to_string();
            assert!(
                said.is_ascii() && said.len() < 200,
                "a refusal names the problem, not the body: {said}"
            );
        }
    }
});
