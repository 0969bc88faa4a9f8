//! Tenant secrets in Secrets Manager, behind a cache.
//!
//! One secret per tenant, named `TENANT_SECRET_PREFIX + tenant_id`, holding
//! JSON `{"access_token", "app_secret", "verify_token"}`. Values are
//! `secrecy::SecretString` from the moment they are parsed, so neither `Debug`
//! nor an error message can print them. The cache (in [`crate::tenants`])
//! keeps the hot path free of Secrets Manager calls.

use std::sync::OnceLock;

use aws_sdk_secretsmanager::Client;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use thiserror::Error;

use crate::ids::TenantId;
use crate::webhook::signature::Key;

/// Why a tenant's secrets could not be loaded. Never carries a value.
#[derive(Debug, Error)]
pub enum SecretsError {
    #[error("secret {secret_id} was not found")]
    NotFound { secret_id: String },
    #[error("secret {secret_id} is not the expected JSON object (access_token, app_secret, verify_token)")]
    Malformed { secret_id: String },
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

/// The three secrets of a tenant's Meta app.
#[derive(Clone, Deserialize)]
pub struct TenantSecrets {
    /// The System User's permanent token (seed step 2).
    pub access_token: SecretString,
    /// The Meta app's secret: the key of `X-Hub-Signature-256`.
    pub app_secret: SecretString,
    /// The string entered in WhatsApp → Configuration → Webhook (seed step 3).
    pub verify_token: SecretString,
    /// `app_secret` made ready for signature checks, on the first one: these
    /// secrets are cached, so every later body of the tenant reuses it.
    #[serde(skip)]
    webhook_key: OnceLock<Key>,
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
            webhook_key: OnceLock::new(),
        }
    }

    /// The key that checks `X-Hub-Signature-256` for this tenant.
    pub fn webhook_key(&self) -> &Key {
        self.webhook_key
            .get_or_init(|| Key::new(self.app_secret.expose_secret().as_bytes()))
    }
}

impl std::fmt::Debug for TenantSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantSecrets { .. }")
    }
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

    /// The secret name for a tenant.
    pub fn secret_id(&self, tenant: &TenantId) -> String {
        format!("{}{}", self.prefix, tenant)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Stores a tenant's secrets under its own name (`prefix + tenant_id`):
    /// creates the secret the first time, puts a new version afterwards
    /// (rotation). Returns the secret's name. `kms_key_id`, when set, is the
    /// key a new secret is encrypted with (versions keep their secret's key).
    ///
    /// The JSON is built here and handed straight to the SDK; no error or log
    /// line carries it.
    pub async fn put(
        &self,
        tenant: &TenantId,
        secrets: &TenantSecrets,
        kms_key_id: Option<&str>,
    ) -> Result<String, SecretsError> {
        let secret_id = self.secret_id(tenant);
        let value = SecretString::from(
            serde_json::json!({
                "access_token": secrets.access_token.expose_secret(),
                "app_secret": secrets.app_secret.expose_secret(),
                "verify_token": secrets.verify_token.expose_secret(),
            })
            .to_string(),
        );
        let created = self
            .client
            .create_secret()
            .name(&secret_id)
            .description(format!(
                "WhatsApp Cloud API credentials of tenant {tenant}: JSON {{access_token, app_secret, verify_token}}"
            ))
            .set_kms_key_id(kms_key_id.map(str::to_string))
            .secret_string(value.expose_secret())
            .send()
            .await;
        match created {
            Ok(_) => Ok(secret_id),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_exists_exception()) =>
            {
                self.client
                    .put_secret_value()
                    .secret_id(&secret_id)
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .map_err(|e| SecretsError::Write {
                        op: "PutSecretValue",
                        secret_id: secret_id.clone(),
                        source: Box::new(e),
                    })?;
                Ok(secret_id)
            }
            Err(e) => Err(SecretsError::Write {
                op: "CreateSecret",
                secret_id,
                source: Box::new(e),
            }),
        }
    }

    /// Reads and parses a secret by id (name or ARN).
    pub async fn fetch(&self, secret_id: &str) -> Result<TenantSecrets, SecretsError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_not_found_exception())
                {
                    SecretsError::NotFound {
                        secret_id: secret_id.to_string(),
                    }
                } else {
                    SecretsError::Request {
                        secret_id: secret_id.to_string(),
                        source: Box::new(e),
                    }
                }
            })?;
        let raw = out.secret_string().ok_or_else(|| SecretsError::Malformed {
            secret_id: secret_id.to_string(),
        })?;
        serde_json::from_str::<TenantSecrets>(raw).map_err(|_| SecretsError::Malformed {
            secret_id: secret_id.to_string(),
        })
    }
}
