//! The tenant directory: one cached lookup of a tenant's configuration and
//! secrets, shared by the webhook (handshake and signature), the sender and
//! the template function.
//!
//! Entries live for `TENANT_CACHE_TTL_SECS` / `SECRET_CACHE_TTL_SECS`, so a
//! rotated token is picked up within that time without a deploy; a 190 from
//! Meta calls [`TenantDirectory::refresh_secrets`] to pick it up at once.
//! Unknown ids are cached as absent for a short time too, so a flood of
//! bodies naming made-up WABA ids costs one read per id, not per body.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::TtlMap;

use thiserror::Error;
use tracing::warn;

use crate::graph::GraphError;

use crate::ids::TenantId;
use crate::secrets::{SecretStore, SecretsError, TenantSecrets};
use crate::store::{AliasKind, Store, StoreError, TenantRecord};

/// How long "no such tenant" is remembered.
const NEGATIVE_TTL: Duration = Duration::from_secs(10);

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

/// Cached tenant lookups.
pub struct TenantDirectory {
    store: Store,
    secrets: SecretStore,
    tenant_ttl: Duration,
    secret_ttl: Duration,
    by_id: TtlMap<TenantId, Option<Tenant>>,
    by_alias: TtlMap<(AliasKind, String), Option<TenantId>>,
    secret_cache: TtlMap<TenantId, Arc<TenantSecrets>>,
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
            secret_cache: TtlMap::new(),
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

    /// A tenant's secrets, from the cache when fresh.
    pub async fn secrets(
        &self,
        tenant: &TenantRecord,
    ) -> Result<Arc<TenantSecrets>, DirectoryError> {
        self.secret_cache
            .get_or_load(&tenant.tenant_id, || async {
                let secrets = Arc::new(self.secrets.fetch(&tenant.secret_id).await?);
                Ok((secrets, self.secret_ttl))
            })
            .await
    }

    /// Drops the cached secrets and reads them again: Meta said 190, so the
    /// token was probably rotated.
    async fn refresh_secrets(
        &self,
        tenant: &TenantRecord,
        stale: &Arc<TenantSecrets>,
    ) -> Result<Arc<TenantSecrets>, DirectoryError> {
        // Another record of the batch met the same 190 and already re-read.
        if let Some(current) = self.secret_cache.get(&tenant.tenant_id) {
            if !Arc::ptr_eq(&current, stale) {
                return Ok(current);
            }
        }
        self.secret_cache.remove(&tenant.tenant_id);
        self.secrets(tenant).await
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
        F: Fn(Arc<TenantSecrets>) -> Fut,
        Fut: Future<Output = Result<T, GraphError>>,
    {
        let secrets = self
            .secrets(tenant)
            .await
            .map_err(TokenCallError::Secrets)?;
        match call(secrets.clone()).await {
            Err(e) if e.code() == Some(CODE_TOKEN_INVALID) => {
                warn!(tenant = %tenant.tenant_id, "Meta refused the token (190); refreshing it once");
                match self.refresh_secrets(tenant, &secrets).await {
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
        self.secret_cache.remove(tenant);
    }
}
