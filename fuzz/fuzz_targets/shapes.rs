//! The hostile shapes of issue 23, reachable from a small fuzz input.
//!
//! An input whose first byte is 0x02 is a recipe, not a body: the next
//! byte picks a slot in a valid webhook (the entry list, one change's
//! messages, an id's string, a key nobody reads, nesting, ...), the two
//! after it a repeat count (× 16), and the rest is a fragment written that
//! many times into the slot. So libFuzzer, whose inputs are at most 64 KiB
//! here, reaches bodies of up to 3 MiB (the webhook's default limit) with
//! hundreds of thousands of items, long strings or deep nesting. Any other
//! input is the body itself.

use std::borrow::Cow;

/// The webhook's default body limit (`WEBHOOK_MAX_BODY_BYTES`).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// (before, between, after) the repeated fragment, for each slot. The ids
/// are those of the tenant the handler target registers.
const SLOTS: [(&str, &str, &str); 9] = [
    // entries
    (
        r#"{"object":"whatsapp_business_account","entry":["#,
        ",",
        "]}",
    ),
    // changes of one entry
    (
        r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":["#,
        ",",
        "]}]}",
    ),
    // messages of one change
    (
        r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"messages":["#,
        ",",
        "]}}]}]}",
    ),
    // statuses of one change
    (
        r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"statuses":["#,
        ",",
        "]}}]}]}",
    ),
    // contacts beside one message
    (
        r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"messages":[{"from":"1","id":"m","timestamp":"1","type":"text"}],"contacts":["#,
        ",",
        "]}}]}]}",
    ),
    // the string of an entry id
    (
        r#"{"object":"whatsapp_business_account","entry":[{"id":""#,
        "",
        r#"","changes":[]}]}"#,
    ),
    // a key nobody reads
    (
        r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[]}],"x":["#,
        ",",
        "]}",
    ),
    // keys of one status
    (
        r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"statuses":[{"id":"s","status":"sent","timestamp":"1","recipient_id":"1","#,
        ",",
        r#","z":0}]}}]}]}"#,
    ),
    // nesting under a key nobody reads: the fragment is written, then
    // closed, as many times (`[` becomes `[[[...]]]`)
    (
        r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[]}],"x":"#,
        "",
        "}",
    ),
];

/// The body a fuzz input stands for.
pub fn expand(data: &[u8]) -> Cow<'_, [u8]> {
    let Some((0x02, rest)) = data.split_first().map(|(b, r)| (*b, r)) else {
        return Cow::Borrowed(data);
    };
    let [which, hi, lo, fragment @ ..] = rest else {
        return Cow::Borrowed(data);
    };
    let (before, between, after) = SLOTS[usize::from(*which) % SLOTS.len()];
    let nesting = usize::from(*which) % SLOTS.len() == SLOTS.len() - 1;
    let room = MAX_BODY.saturating_sub(before.len() + after.len());
    let unit = 2 * fragment.len() + between.len();
    let times = (usize::from(u16::from_be_bytes([*hi, *lo])) * 16).min(room / unit.max(1));
    let mut body = Vec::with_capacity(before.len() + times * unit + after.len());
    body.extend_from_slice(before.as_bytes());
    for i in 0..times {
        if i > 0 {
            body.extend_from_slice(between.as_bytes());
        }
        body.extend_from_slice(fragment);
    }
    if nesting {
        let closing: Vec<u8> = fragment
            .iter()
            .rev()
            .map(|b| match b {
                b'[' => b']',
                b'{' => b'}',
                other => *other,
            })
            .collect();
        for _ in 0..times {
            body.extend_from_slice(&closing);
        }
    }
    body.extend_from_slice(after.as_bytes());
    Cow::Owned(body)
}
