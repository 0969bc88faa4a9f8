//! The whole webhook handler over arbitrary bodies, against the moto server
//! (`FWA_FUZZ_MOTO`, default `http://127.0.0.1:5057`) and a tenant whose ids
//! are those of Meta's documented examples, so the seed corpus (those
//! examples) reaches past the signature.
//!
//! The input is the body, signed with the tenant's app secret, unless its
//! first byte is 0x00 (the rest is sent unsigned), 0x01 (the next 71 bytes
//! are the signature header, the rest the body) or 0x02 (a recipe for one of
//! the hostile shapes of `shapes.rs`, up to 3 MiB, signed). The handler must
//! answer one of its documented statuses and never 500 (a 500 would mean
//! Meta retries forever) or panic.

#![no_main]

#[path = "shapes.rs"]
mod shapes;

use std::sync::OnceLock;

use bytes::Bytes;
use fincelo::webhook::{handle, signature, WebhookRequest};
use fincelo_local::{LocalTenant, Stack, StackOptions};
use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

// At least 32 characters, like the app secret Meta issues (a shorter
// one is refused as weak: fincelo::secrets).
const APP_SECRET: &str = "fuzz-app-secret-0123456789abcdef";

struct World {
    rt: tokio::runtime::Runtime,
    stack: Stack,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let moto =
            std::env::var("FWA_FUZZ_MOTO").unwrap_or_else(|_| "http://127.0.0.1:5057".into());
        let stack = rt.block_on(async {
            let mut opts = StackOptions::new(
                moto,
                "http://127.0.0.1:9", // the handler never calls Graph
                format!("fuzz-{}", std::process::id()),
            );
            opts.sender_instances = 0;
            let stack = Stack::start(opts)
                .await
                .expect("stack starts (is moto running?)");
            stack
                .add_tenant(&LocalTenant {
                    tenant_id: "fuzz-tenant".into(),
                    phone_number_id: "106540352242922".into(),
                    waba_id: "102290129340398".into(),
                    access_token: "fuzz-token".into(),
                    app_secret: APP_SECRET.into(),
                    verify_token: "fuzz-verify-token".into(),
                    display_phone_number: None,
                })
                .await
                .expect("tenant stored");
            stack
        });
        World { rt, stack }
    })
}

fuzz_target!(|data: &[u8]| {
    let expanded;
    let (header, body) = match data.split_first() {
        Some((0x00, rest)) => (None, rest),
        Some((0x01, rest)) => {
            let at = rest.len().min(71);
            (
                Some(String::from_utf8_lossy(&rest[..at]).into_owned()),
                &rest[at..],
            )
        }
        Some((0x02, _)) => {
            expanded = shapes::expand(data);
            (
                Some(signature::sign(APP_SECRET.as_bytes(), &expanded)),
                &expanded[..],
            )
        }
        _ => (Some(signature::sign(APP_SECRET.as_bytes(), data)), data),
    };
    let mut headers = HeaderMap::new();
    if let Some(v) = header.and_then(|h| HeaderValue::from_str(&h).ok()) {
        headers.insert("x-hub-signature-256", v);
    }
    let w = world();
    let resp = w.rt.block_on(handle(
        &w.stack.app,
        WebhookRequest {
            method: Method::POST,
            query: None,
            headers,
            body: Bytes::copy_from_slice(body),
        },
    ));
    assert!(
        matches!(resp.status, 200 | 400 | 401 | 413),
        "status {} for a {}-byte body",
        resp.status,
        body.len()
    );
});
