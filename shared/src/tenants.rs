//! The tenant directory: one cached lookup of a tenant's configuration and
//! one per kind of secret, shared by the webhook (handshake and signature:
//! [`TenantDirectory::secrets`], the webhook secret only), the sender and the
//! template function ([`TenantDirectory::with_token`], the token secret
//! only). Each function reads only the secret its role may read
//! ([`crate::secrets`]).
//!
//! Entries live for `TENANT_CACHE_TTL_SECS` / `SECRET_CACHE_TTL_SECS`, so a
//! rotated token is picked up within that time without a deploy; a 190 from
//! Meta calls [`TenantDirectory::refresh_token`] to pick it up at once.
//! Unknown ids are cached as absent for a short time too, so a flood of
//! bodies naming made-up WABA ids costs one read per id, not per body.
//!
//! A secret refused as weak (empty, `REPLACE_ME`, too short) is remembered
//! as refused for the same short time: the tenant fails closed (the webhook
//! answers 401, a send or template call fails with the reason), one error
//! line per instance says which secret and field, and a flood of bodies for
//! that tenant costs one Secrets Manager read per instance per
//! [`NEGATIVE_TTL`], not one per body.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::TtlMap;

use thiserror::Error;
use tracing::{error, warn};

use crate::graph::GraphError;

use crate::ids::TenantId;
use crate::secrets::{SecretStore, SecretsError, TokenSecret, WeakSecret, WebhookSecrets};
use crate::store::{AliasKind, Store, StoreError, TenantRecord};

/// How long "no such tenant" (or "its secret is refused") is remembered.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("tenant {0} is not configured")]
    UnknownTenant(TenantId),
}

/// Why a Graph API call made with a tenant's token did not succeed.
#[derive(Debug, Error)]
pub enum TokenCallError {
    #[error("tenant secrets unavailable")]
    Secrets(#[source] DirectoryError),
    #[error(transparent)]
    Graph(GraphError),
}

/// Meta's code for an invalid or expired access token.
const CODE_TOKEN_INVALID: i64 = 190;

/// A configured tenant.
pub type Tenant = Arc<TenantRecord>;

/// A cached secret, or why it was refused.
type Loaded<T> = Result<Arc<T>, WeakSecret>;

/// Cached tenant lookups.
pub struct TenantDirectory {
    store: Store,
    secrets: SecretStore,
    tenant_ttl: Duration,
    secret_ttl: Duration,
    by_id: TtlMap<TenantId, Option<Tenant>>,
    by_alias: TtlMap<(AliasKind, String), Option<TenantId>>,
    webhook_secrets: TtlMap<TenantId, Loaded<WebhookSecrets>>,
    tokens: TtlMap<TenantId, Loaded<TokenSecret>>,
}

impl TenantDirectory {
    pub fn new(
        store: Store,
        secrets: SecretStore,
        tenant_ttl: Duration,
        secret_ttl: Duration,
    ) -> Self {
        TenantDirectory {
            store,
            secrets,
            tenant_ttl,
            secret_ttl,
            by_id: TtlMap::new(),
            by_alias: TtlMap::new(),
            webhook_secrets: TtlMap::new(),
            tokens: TtlMap::new(),
        }
    }

    pub fn secret_store(&self) -> &SecretStore {
        &self.secrets
    }

    /// A tenant by id.
    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, DirectoryError> {
        self.by_id
            .get_or_load(id, || async {
                let found = self.store.get_tenant(id).await?.map(Arc::new);
                let ttl = if found.is_some() {
                    self.tenant_ttl
                } else {
                    NEGATIVE_TTL
                };
                Ok((found, ttl))
            })
            .await
    }

    /// A tenant by one of its aliases (phone number id, WABA id, verify-token digest).
    pub async fn tenant_by(
        &self,
        kind: AliasKind,
        value: &str,
    ) -> Result<Option<Tenant>, DirectoryError> {
        let key = (kind, value.to_string());
        let id = self
            .by_alias
            .get_or_load(&key, || async {
                let id = self.store.tenant_by_alias(kind, value).await?;
                let ttl = if id.is_some() {
                    self.tenant_ttl
                } else {
                    NEGATIVE_TTL
                };
                Ok::<_, DirectoryError>((id, ttl))
            })
            .await?;
        match id {
            Some(id) => self.tenant(&id).await,
            None => Ok(None),
        }
    }

    /// The webhook's secret of a tenant (app secret and verify token), from
    /// the cache when fresh. The name is the webhook's: it is all the
    /// secrets the webhook may read.
    pub async fn secrets(
        &self,
        tenant: &TenantRecord,
    ) -> Result<Arc<WebhookSecrets>, DirectoryError> {
        self.load(
            &self.webhook_secrets,
            tenant,
            self.secrets.fetch_webhook(&tenant.secret_id),
        )
        .await
    }

    /// The access token of a tenant, from the cache when fresh.
    pub async fn token(&self, tenant: &TenantRecord) -> Result<Arc<TokenSecret>, DirectoryError> {
        self.load(
            &self.tokens,
            tenant,
            self.secrets.fetch_token(&tenant.secret_id),
        )
        .await
    }

    /// One cached read of one kind of secret. A weak secret is cached as
    /// refused for [`NEGATIVE_TTL`] and logged once per read.
    async fn load<T>(
        &self,
        cache: &TtlMap<TenantId, Loaded<T>>,
        tenant: &TenantRecord,
        fetch: impl Future<Output = Result<T, SecretsError>>,
    ) -> Result<Arc<T>, DirectoryError> {
        let loaded = cache
            .get_or_load(&tenant.tenant_id, || async {
                match fetch.await {
                    Ok(v) => Ok((Ok(Arc::new(v)), self.secret_ttl)),
                    Err(SecretsError::Weak(weak)) => {
                        error!(
                            tenant = %tenant.tenant_id,
                            secret_id = %weak.secret_id,
                            field = weak.field,
                            reason = %weak.weakness,
                            "tenant secret refused: the tenant fails closed until real values are put"
                        );
                        Ok((Err(weak), NEGATIVE_TTL))
                    }
                    Err(e) => Err(DirectoryError::Secrets(e)),
                }
            })
            .await?;
        loaded.map_err(|weak| DirectoryError::Secrets(SecretsError::Weak(weak)))
    }

    /// Drops the cached token and reads it again: Meta said 190, so the
    /// token was probably rotated.
    async fn refresh_token(
        &self,
        tenant: &TenantRecord,
        stale: &Arc<TokenSecret>,
    ) -> Result<Arc<TokenSecret>, DirectoryError> {
        // Another record of the batch met the same 190 and already re-read.
        if let Some(Ok(current)) = self.tokens.get(&tenant.tenant_id) {
            if !Arc::ptr_eq(&current, stale) {
                return Ok(current);
            }
        }
        self.tokens.remove(&tenant.tenant_id);
        self.token(tenant).await
    }

    /// Runs a Graph API call with the tenant's access token. If Meta answers
    /// 190 the token was probably rotated: the secret is read again and the
    /// call made once more. Every function recovers from a rotation this way.
    pub async fn with_token<T, F, Fut>(
        &self,
        tenant: &TenantRecord,
        call: F,
    ) -> Result<T, TokenCallError>
    where
        F: Fn(Arc<TokenSecret>) -> Fut,
        Fut: Future<Output = Result<T, GraphError>>,
    {
        let secrets = self.token(tenant).await.map_err(TokenCallError::Secrets)?;
        match call(secrets.clone()).await {
            Err(e) if e.code() == Some(CODE_TOKEN_INVALID) => {
                warn!(tenant = %tenant.tenant_id, "Meta refused the token (190); refreshing it once");
                match self.refresh_token(tenant, &secrets).await {
                    Ok(fresh) => call(fresh).await.map_err(TokenCallError::Graph),
                    Err(_) => Err(TokenCallError::Graph(e)),
                }
            }
            other => other.map_err(TokenCallError::Graph),
        }
    }

    /// Forgets everything cached about a tenant (after an admin change).
    pub fn invalidate(&self, tenant: &TenantId) {
        self.by_id.remove(tenant);
        self.webhook_secrets.remove(tenant);
        self.tokens.remove(tenant);
    }
}
