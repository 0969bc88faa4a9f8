//! Graph API versions: the current one, and expired ones served as the
//! oldest usable version, as Meta does.

use crate::helpers::*;

async fn get_version(app: &TestApp, version: &str) -> (u16, Option<String>) {
    let url = format!(
        "{}/{version}/{}",
        app.sandbox.base_url(),
        app.tenant.phone_number_id
    );
    let resp = app
        .http
        .get(url)
        .bearer_auth(&app.tenant.access_token)
        .send()
        .await
        .unwrap();
    let served = resp
        .headers()
        .get("facebook-api-version")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    (resp.status().as_u16(), served)
}

/// The sandbox's current version is v26.0 (Meta's changelog: released
/// 2026-07-29), and every answer names the version that served it.
#[tokio::test]
async fn the_current_version_is_v26() {
    assert_eq!(
        meta_sandbox::SandboxConfig::default().graph_version,
        "v26.0"
    );
    let app = spawn_app().await;
    assert_eq!(
        get_version(&app, "v26.0").await,
        (200, Some("v26.0".into()))
    );
    assert_eq!(
        get_version(&app, "v23.0").await,
        (200, Some("v23.0".into()))
    );
}

/// A call to an expired version (v20.0 expired 2026-09-24) is served as the
/// oldest usable version; when v21.0 expires (2027-01-21) that becomes v22.0.
#[tokio::test]
async fn an_expired_version_is_served_as_the_oldest_usable_one() {
    let clock = TestClock::default();
    clock.set_date("2026-11-30");
    let app = spawn_app_on(&clock).await;
    assert_eq!(
        get_version(&app, "v20.0").await,
        (200, Some("v21.0".into()))
    );
    assert_eq!(
        get_version(&app, "v19.0").await,
        (200, Some("v21.0".into()))
    );
    clock.set_date("2027-01-22");
    assert_eq!(
        get_version(&app, "v20.0").await,
        (200, Some("v22.0".into()))
    );
    clock.set_date("2026-09-01");
    assert_eq!(
        get_version(&app, "v20.0").await,
        (200, Some("v20.0".into()))
    );
}

/// A malformed version is Graph's 100.
#[tokio::test]
async fn a_malformed_version_is_100() {
    let app = spawn_app().await;
    let url = format!(
        "{}/latest/{}",
        app.sandbox.base_url(),
        app.tenant.phone_number_id
    );
    let resp = app
        .http
        .get(url)
        .bearer_auth(&app.tenant.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);
}
