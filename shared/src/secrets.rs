//! Tenant secrets in Secrets Manager: two secrets per tenant, checked when
//! they are written and when they are read, and staged so that a failed
//! save never changes what the functions read.
//!
//! ## Two secrets, so the public function cannot read tokens
//! A tenant's base name is `TENANT_SECRET_PREFIX + tenant_id` (the
//! `secret_id` its configuration record keeps). Under it:
//!
//! | secret | JSON | read by |
//! |---|---|---|
//! | `{base}/token` | `{"access_token"}` | the sender and the template function |
//! | `{base}/webhook` | `{"app_secret", "verify_token"}` | the webhook function |
//!
//! The admin function writes both. The suffixes let IAM resource patterns
//! tell the two apart (`…/tenants/*/webhook-??????`, the `??????` being the
//! six characters Secrets Manager appends to a secret's ARN): a tenant id
//! holds only letters, digits, `-` and `_` ([`crate::ids::TenantId`]), never
//! `/`, so no token secret's name can end like a webhook secret's. The
//! webhook is the only function on a public route; with this split a flaw
//! in it cannot reach a tenant's access token.
//!
//! ## Weak secrets fail closed
//! An empty HMAC key verifies a signature anyone can compute, and a
//! placeholder is as public as no key. So a secret whose `app_secret` or
//! `verify_token` is empty, still `REPLACE_ME` (what `template.yaml`
//! creates), or shorter than the minimum below is refused, by
//! [`SecretStore`] when it is read and when it is written, and by the admin
//! API before it asks Meta ([`strength`]). The minimums:
//! - `app_secret`: [`MIN_APP_SECRET_LEN`] = 32, the length of the app
//!   secret Meta issues (App settings → Basic → App secret: 32 hexadecimal
//!   characters, i.e. 128 bits), the HMAC-SHA256 key of
//!   `X-Hub-Signature-256`
//!   (<https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads>).
//!   Meta's pages show the secret rather than state its length; public
//!   WhatsApp integrations check the same shape (`^[a-f0-9]{32}$`). Only
//!   the length is required here, so a future longer secret still passes;
//!   anything shorter is not a secret Meta gave out.
//! - `verify_token`: [`MIN_VERIFY_TOKEN_LEN`] = 16. Meta does not issue it:
//!   the operator types any string into WhatsApp → Configuration → Webhook
//!   (<https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests>).
//!   It is the key that finds a tenant on the public handshake, so it must
//!   not be guessable; 16 characters of a random token are far beyond
//!   guessing at the HTTP API's rate limit, and short enough to type.
//! - `access_token`: only refused empty or a placeholder. Its format is
//!   Meta's, and the admin API proves it works with a Graph call.
//!
//! ## Staged writes
//! A save writes each secret's new value as a version labelled
//! `AWSPENDING` ([`SecretStore::stage`]); readers keep getting the
//! `AWSCURRENT` one. Only after the configuration's transaction commits
//! does [`SecretStore::promote`] move `AWSCURRENT` to the new versions
//! (`UpdateSecretVersionStage`). A save refused by the transaction (say, an
//! alias of another tenant: 409) leaves only an unused pending version, and
//! the handshake still answers with the old verify token. The first
//! version of a secret is always current (Secrets Manager attaches
//! `AWSCURRENT` to a secret's first version whatever the request says,
//! <https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html>);
//! for a new tenant no configuration names it yet, so nobody reads it.
//!
//! Readers ask for `VersionStage=AWSCURRENT` explicitly. That is what
//! Secrets Manager reads when no stage is given; moto (the emulator the
//! tests run on) answers an unlabelled read with the version that was
//! current before an `UpdateSecretVersionStage`, while it answers a
//! labelled read correctly (measured with moto 5.2.5). Naming the label
//! means the same on both.
//!
//! Values are `secrecy::SecretString` from the moment they are parsed, so
//! neither `Debug` nor an error message can print them. The caches are in
//! [`crate::tenants`].

use std::sync::OnceLock;

use aws_sdk_secretsmanager::Client;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use thiserror::Error;

use crate::ids::TenantId;
use crate::webhook::signature::Key;

/// The shortest `app_secret` accepted: the 32 hex characters Meta issues.
pub const MIN_APP_SECRET_LEN: usize = 32;
/// The shortest `verify_token` accepted (see the module docs).
pub const MIN_VERIFY_TOKEN_LEN: usize = 16;
/// What `template.yaml` puts in the secrets it creates, until an operator
/// replaces it.
pub const PLACEHOLDER: &str = "REPLACE_ME";

const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";

/// Why a secret value is refused. Never carries the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Weakness {
    #[error("is empty")]
    Empty,
    #[error("is still the placeholder {PLACEHOLDER}")]
    Placeholder,
    #[error("is shorter than {min} characters")]
    TooShort { min: usize },
}

/// Whether `value` may be used as the secret field `field`
/// (`access_token`, `app_secret` or `verify_token`).
pub fn strength(field: &str, value: &str) -> Result<(), Weakness> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Weakness::Empty);
    }
    if trimmed.to_ascii_uppercase().contains(PLACEHOLDER) {
        return Err(Weakness::Placeholder);
    }
    let min = match field {
        "app_secret" => MIN_APP_SECRET_LEN,
        "verify_token" => MIN_VERIFY_TOKEN_LEN,
        _ => 0,
    };
    if value.chars().count() < min {
        return Err(Weakness::TooShort { min });
    }
    Ok(())
}

/// A secret refused for a weak field: which secret, which field, why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("secret {secret_id} is refused: {field} {weakness}; put real values into it (or save the channel again through the admin API)")]
pub struct WeakSecret {
    pub secret_id: String,
    pub field: &'static str,
    pub weakness: Weakness,
}

/// Why a tenant's secrets could not be loaded or stored. Never carries a value.
#[derive(Debug, Error)]
pub enum SecretsError {
    #[error("secret {secret_id} was not found")]
    NotFound { secret_id: String },
    #[error("secret {secret_id} is not the expected JSON object {expected}")]
    Malformed {
        secret_id: String,
        expected: &'static str,
    },
    #[error(transparent)]
    Weak(#[from] WeakSecret),
    #[error("Secrets Manager {op} for {secret_id} failed")]
    Write {
        op: &'static str,
        secret_id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Secrets Manager request for {secret_id} failed")]
    Request {
        secret_id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Which of a tenant's two secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// `{base}/token`: the access token.
    Token,
    /// `{base}/webhook`: the app secret and the verify token.
    Webhook,
}

impl SecretKind {
    fn suffix(self) -> &'static str {
        match self {
            SecretKind::Token => "token",
            SecretKind::Webhook => "webhook",
        }
    }

    fn shape(self) -> &'static str {
        match self {
            SecretKind::Token => "{access_token}",
            SecretKind::Webhook => "{app_secret, verify_token}",
        }
    }

    /// The secret's name under a tenant's base name.
    pub fn name(self, base: &str) -> String {
        format!("{base}/{}", self.suffix())
    }
}

/// The three secrets of a tenant's Meta app, as the admin API receives
/// them and [`SecretStore::stage`] writes them (into two secrets).
#[derive(Clone)]
pub struct TenantSecrets {
    /// The System User's permanent token (seed step 2).
    pub access_token: SecretString,
    /// The Meta app's secret: the key of `X-Hub-Signature-256`.
    pub app_secret: SecretString,
    /// The string entered in WhatsApp → Configuration → Webhook (seed step 3).
    pub verify_token: SecretString,
}

impl TenantSecrets {
    pub fn new(
        access_token: SecretString,
        app_secret: SecretString,
        verify_token: SecretString,
    ) -> Self {
        TenantSecrets {
            access_token,
            app_secret,
            verify_token,
        }
    }

    /// The first weak field, if any ([`strength`]).
    pub fn weakness(&self) -> Option<(&'static str, Weakness)> {
        [
            ("access_token", &self.access_token),
            ("app_secret", &self.app_secret),
            ("verify_token", &self.verify_token),
        ]
        .into_iter()
        .find_map(|(field, v)| strength(field, v.expose_secret()).err().map(|w| (field, w)))
    }
}

impl std::fmt::Debug for TenantSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantSecrets { .. }")
    }
}

/// `{base}/token`: what the sender and the template function read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSecret {
    /// The System User's permanent token.
    pub access_token: SecretString,
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret { .. }")
    }
}

/// `{base}/webhook`: what the webhook function reads. Unknown fields are
/// refused, so a secret that also holds the access token (the old single
/// secret copied over) is not silently served to the public function.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSecrets {
    /// The Meta app's secret: the key of `X-Hub-Signature-256`.
    pub app_secret: SecretString,
    /// The string entered in WhatsApp → Configuration → Webhook.
    pub verify_token: SecretString,
    /// `app_secret` made ready for signature checks, on the first one: these
    /// secrets are cached, so every later body of the tenant reuses it.
    #[serde(skip)]
    webhook_key: OnceLock<Key>,
}

impl WebhookSecrets {
    pub fn new(app_secret: SecretString, verify_token: SecretString) -> Self {
        WebhookSecrets {
            app_secret,
            verify_token,
            webhook_key: OnceLock::new(),
        }
    }

    /// The key that checks `X-Hub-Signature-256` for this tenant.
    pub fn webhook_key(&self) -> &Key {
        self.webhook_key
            .get_or_init(|| Key::new(self.app_secret.expose_secret().as_bytes()))
    }
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecrets { .. }")
    }
}

/// New values written as pending versions, not yet read by anyone:
/// [`SecretStore::promote`] makes them current.
#[derive(Debug, Clone)]
pub struct Staged {
    /// The tenant's base name (its configuration's `secret_id`).
    pub base: String,
    /// (secret name, pending version id), one per kind.
    versions: Vec<(String, String)>,
}

/// The Secrets Manager adapter.
#[derive(Clone, Debug)]
pub struct SecretStore {
    client: Client,
    prefix: String,
}

impl SecretStore {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        SecretStore {
            client,
            prefix: prefix.into(),
        }
    }

    /// A tenant's base name, `prefix + tenant_id`: its two secrets are
    /// `{base}/token` and `{base}/webhook` ([`SecretKind::name`]).
    pub fn secret_id(&self, tenant: &TenantId) -> String {
        format!("{}{}", self.prefix, tenant)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Writes a tenant's values as pending versions of its two secrets,
    /// creating a secret the first time (`kms_key_id`, when set, is the key
    /// a new secret is encrypted with). Nothing reads a pending version:
    /// call [`SecretStore::promote`] once the configuration is saved.
    /// Weak values are refused before anything is written.
    ///
    /// The JSON is built here and handed straight to the SDK; no error or
    /// log line carries it.
    pub async fn stage(
        &self,
        tenant: &TenantId,
        secrets: &TenantSecrets,
        kms_key_id: Option<&str>,
    ) -> Result<Staged, SecretsError> {
        let base = self.secret_id(tenant);
        if let Some((field, weakness)) = secrets.weakness() {
            return Err(WeakSecret {
                secret_id: base,
                field,
                weakness,
            }
            .into());
        }
        let values = [
            (
                SecretKind::Webhook,
                serde_json::json!({
                    "app_secret": secrets.app_secret.expose_secret(),
                    "verify_token": secrets.verify_token.expose_secret(),
                }),
            ),
            (
                SecretKind::Token,
                serde_json::json!({"access_token": secrets.access_token.expose_secret()}),
            ),
        ];
        let mut versions = Vec::with_capacity(values.len());
        for (kind, json) in values {
            let name = kind.name(&base);
            let value = SecretString::from(json.to_string());
            let version = self
                .put_pending(tenant, kind, &name, &value, kms_key_id)
                .await?;
            versions.push((name, version));
        }
        Ok(Staged { base, versions })
    }

    /// `PutSecretValue` labelled `AWSPENDING`; the secret is created (with
    /// no value) when it does not exist yet.
    async fn put_pending(
        &self,
        tenant: &TenantId,
        kind: SecretKind,
        name: &str,
        value: &SecretString,
        kms_key_id: Option<&str>,
    ) -> Result<String, SecretsError> {
        let put = || {
            self.client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value.expose_secret())
                .version_stages(PENDING)
                .send()
        };
        let written = match put().await {
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_not_found_exception()) =>
            {
                self.client
                    .create_secret()
                    .name(name)
                    .description(format!(
                        "WhatsApp Cloud API credentials of tenant {tenant}: JSON {}",
                        kind.shape()
                    ))
                    .set_kms_key_id(kms_key_id.map(str::to_string))
                    .send()
                    .await
                    .map_err(|e| SecretsError::Write {
                        op: "CreateSecret",
                        secret_id: name.to_string(),
                        source: Box::new(e),
                    })?;
                put().await
            }
            other => other,
        }
        .map_err(|e| SecretsError::Write {
            op: "PutSecretValue",
            secret_id: name.to_string(),
            source: Box::new(e),
        })?;
        written
            .version_id()
            .map(str::to_string)
            .ok_or_else(|| SecretsError::Write {
                op: "PutSecretValue",
                secret_id: name.to_string(),
                source: "the answer carries no VersionId".into(),
            })
    }

    /// Moves `AWSCURRENT` to the staged versions: from now on every reader
    /// (after its cache's TTL) gets the new values. A version that is
    /// already current (a secret's first one) is left as it is.
    pub async fn promote(&self, staged: &Staged) -> Result<(), SecretsError> {
        for (name, version) in &staged.versions {
            let described = self
                .client
                .describe_secret()
                .secret_id(name)
                .send()
                .await
                .map_err(|e| SecretsError::Write {
                    op: "DescribeSecret",
                    secret_id: name.clone(),
                    source: Box::new(e),
                })?;
            let current = described.version_ids_to_stages().and_then(|m| {
                m.iter()
                    .find(|(_, stages)| stages.iter().any(|s| s == CURRENT))
                    .map(|(id, _)| id.clone())
            });
            if current.as_deref() == Some(version.as_str()) {
                continue;
            }
            self.client
                .update_secret_version_stage()
                .secret_id(name)
                .version_stage(CURRENT)
                .move_to_version_id(version)
                .set_remove_from_version_id(current)
                .send()
                .await
                .map_err(|e| SecretsError::Write {
                    op: "UpdateSecretVersionStage",
                    secret_id: name.clone(),
                    source: Box::new(e),
                })?;
        }
        Ok(())
    }

    /// [`SecretStore::stage`] then [`SecretStore::promote`], for a writer
    /// with no configuration transaction between (the local runner's
    /// `add_tenant`). Returns the tenant's base name.
    pub async fn put(
        &self,
        tenant: &TenantId,
        secrets: &TenantSecrets,
        kms_key_id: Option<&str>,
    ) -> Result<String, SecretsError> {
        let staged = self.stage(tenant, secrets, kms_key_id).await?;
        self.promote(&staged).await?;
        Ok(staged.base)
    }

    /// The current `{base}/token`, checked.
    pub async fn fetch_token(&self, base: &str) -> Result<TokenSecret, SecretsError> {
        let name = SecretKind::Token.name(base);
        let secret: TokenSecret = self.fetch_json(&name, SecretKind::Token).await?;
        check(&name, "access_token", &secret.access_token)?;
        Ok(secret)
    }

    /// The current `{base}/webhook`, checked.
    pub async fn fetch_webhook(&self, base: &str) -> Result<WebhookSecrets, SecretsError> {
        let name = SecretKind::Webhook.name(base);
        let secret: WebhookSecrets = self.fetch_json(&name, SecretKind::Webhook).await?;
        check(&name, "app_secret", &secret.app_secret)?;
        check(&name, "verify_token", &secret.verify_token)?;
        Ok(secret)
    }

    /// Reads the `AWSCURRENT` version of a secret and parses its JSON.
    async fn fetch_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        kind: SecretKind,
    ) -> Result<T, SecretsError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(name)
            .version_stage(CURRENT)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_not_found_exception())
                {
                    SecretsError::NotFound {
                        secret_id: name.to_string(),
                    }
                } else {
                    SecretsError::Request {
                        secret_id: name.to_string(),
                        source: Box::new(e),
                    }
                }
            })?;
        let malformed = || SecretsError::Malformed {
            secret_id: name.to_string(),
            expected: kind.shape(),
        };
        let raw = out.secret_string().ok_or_else(malformed)?;
        serde_json::from_str::<T>(raw).map_err(|_| malformed())
    }
}

fn check(name: &str, field: &'static str, value: &SecretString) -> Result<(), SecretsError> {
    strength(field, value.expose_secret()).map_err(|weakness| {
        WeakSecret {
            secret_id: name.to_string(),
            field,
            weakness,
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_empty_and_short_secrets_are_refused_by_field() {
        let meta_app_secret = "0123456789abcdef0123456789abcdef";
        assert_eq!(strength("app_secret", meta_app_secret), Ok(()));
        assert_eq!(strength("app_secret", ""), Err(Weakness::Empty));
        assert_eq!(strength("app_secret", "   "), Err(Weakness::Empty));
        assert_eq!(
            strength("app_secret", "REPLACE_ME"),
            Err(Weakness::Placeholder)
        );
        assert_eq!(
            strength("verify_token", "replace_me-with-a-real-token"),
            Err(Weakness::Placeholder)
        );
        assert_eq!(
            strength("app_secret", &meta_app_secret[..31]),
            Err(Weakness::TooShort { min: 32 })
        );
        assert_eq!(
            strength("verify_token", "fifteen-chars-x"),
            Err(Weakness::TooShort { min: 16 })
        );
        assert_eq!(strength("verify_token", "sixteen-chars-xy"), Ok(()));
        assert_eq!(strength("access_token", "EAAG"), Ok(()));
        assert_eq!(
            strength("access_token", "REPLACE_ME"),
            Err(Weakness::Placeholder)
        );
    }

    #[test]
    fn a_weak_secret_names_the_field_never_the_value() {
        let s = TenantSecrets::new(
            "EAAG-token".to_string().into(),
            "short-app-secret".to_string().into(),
            "a-good-verify-token".to_string().into(),
        );
        let (field, weakness) = s.weakness().expect("weak");
        let err = WeakSecret {
            secret_id: "p/tenants/acme".into(),
            field,
            weakness,
        };
        let text = err.to_string();
        assert!(
            text.contains("app_secret is shorter than 32 characters"),
            "{text}"
        );
        assert!(!text.contains("short-app-secret"), "{text}");
    }

    #[test]
    fn the_two_names_differ_only_in_their_last_segment() {
        assert_eq!(
            SecretKind::Token.name("s/tenants/acme"),
            "s/tenants/acme/token"
        );
        assert_eq!(
            SecretKind::Webhook.name("s/tenants/acme"),
            "s/tenants/acme/webhook"
        );
    }
}
