//! Tenant configuration and the alias items that find a tenant by a Meta id
//! or by its verify token with one keyed read.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use sha2::{Digest, Sha256};

use super::{get_s, n, required_s, s, Item, Store, StoreError};
use crate::ids::{PhoneNumberId, TenantId, WabaId};

/// A tenant's channel configuration. Secrets are not here: `secret_id` names
/// the Secrets Manager secret that holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub tenant_id: TenantId,
    pub phone_number_id: PhoneNumberId,
    pub waba_id: WabaId,
    pub secret_id: String,
    pub display_phone_number: Option<String>,
    pub verified_name: Option<String>,
    /// The number's messages-per-second cap as the operator set it (Meta's
    /// 80 by default, 1,000 once Meta upgrades the number, 20 for a number
    /// shared with the WhatsApp Business app); `None` is the stack's
    /// `SEND_MPS_CAP`. Every sender instance paces the number to it
    /// together ([`super::rate`]).
    pub messages_per_second: Option<u32>,
    pub updated_at: i64,
}

/// Which alias finds a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AliasKind {
    PhoneNumberId,
    Waba,
    /// The SHA-256 of the verify token, hex. Only the digest is stored, so the
    /// table does not hold a usable verify token.
    VerifyTokenDigest,
}

impl AliasKind {
    fn prefix(self) -> &'static str {
        match self {
            AliasKind::PhoneNumberId => "PNID#",
            AliasKind::Waba => "WABA#",
            AliasKind::VerifyTokenDigest => "VERIFY#",
        }
    }
}

/// The digest under which a verify token is found.
pub fn verify_token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn tenant_pk(t: &TenantId) -> String {
    format!("T#{t}")
}

impl Store {
    /// Writes a tenant's configuration and its three aliases in one
    /// transaction. An alias already owned by another tenant refuses the whole
    /// write ([`StoreError::AliasTaken`]): two tenants can never claim the
    /// same phone number.
    pub async fn put_tenant(
        &self,
        rec: &TenantRecord,
        verify_token_digest: &str,
    ) -> Result<(), StoreError> {
        self.put_tenant_replacing(rec, verify_token_digest, &[])
            .await
    }

    /// [`Store::put_tenant`], also deleting aliases the tenant no longer
    /// uses (an old phone number id, WABA id or verify token) in the same
    /// transaction, so a number a tenant gave up can be claimed by another
    /// and an old verify token finds nobody. A stale alias is deleted only if
    /// it still belongs to this tenant.
    pub async fn put_tenant_replacing(
        &self,
        rec: &TenantRecord,
        verify_token_digest: &str,
        stale: &[(AliasKind, String)],
    ) -> Result<(), StoreError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Dynamo {
            op: "TransactWriteItems",
            detail: e.to_string(),
            source: Box::new(e),
        };
        let mut config = Put::builder()
            .table_name(&self.table)
            .item("pk", s(tenant_pk(&rec.tenant_id)))
            .item("sk", s("CONFIG"))
            .item("tenant_id", s(rec.tenant_id.as_str()))
            .item("phone_number_id", s(rec.phone_number_id.as_str()))
            .item("waba_id", s(rec.waba_id.as_str()))
            .item("secret_id", s(&rec.secret_id))
            .item("updated_at", n(rec.updated_at));
        if let Some(d) = &rec.display_phone_number {
            config = config.item("display_phone_number", s(d));
        }
        if let Some(v) = &rec.verified_name {
            config = config.item("verified_name", s(v));
        }
        if let Some(mps) = rec.messages_per_second {
            config = config.item("messages_per_second", n(i64::from(mps)));
        }
        let mut items = vec![TransactWriteItem::builder()
            .put(config.build().map_err(build)?)
            .build()];
        // The registry of tenants, so scheduled jobs can list them without a scan.
        items.push(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .item("pk", s("TENANTS"))
                        .item("sk", s(tenant_pk(&rec.tenant_id)))
                        .item("tenant_id", s(rec.tenant_id.as_str()))
                        .build()
                        .map_err(build)?,
                )
                .build(),
        );
        let current = [
            (AliasKind::PhoneNumberId, rec.phone_number_id.as_str()),
            (AliasKind::Waba, rec.waba_id.as_str()),
            (AliasKind::VerifyTokenDigest, verify_token_digest),
        ];
        for (kind, value) in current {
            let put = Put::builder()
                .table_name(&self.table)
                .item("pk", s(format!("{}{value}", kind.prefix())))
                .item("sk", s("ALIAS"))
                .item("tenant_id", s(rec.tenant_id.as_str()))
                .condition_expression("attribute_not_exists(pk) OR tenant_id = :t")
                .expression_attribute_values(":t", s(rec.tenant_id.as_str()))
                .build()
                .map_err(build)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        for (kind, value) in stale {
            if current.contains(&(*kind, value.as_str())) {
                continue;
            }
            let delete = Delete::builder()
                .table_name(&self.table)
                .key("pk", s(format!("{}{value}", kind.prefix())))
                .key("sk", s("ALIAS"))
                .condition_expression("attribute_not_exists(pk) OR tenant_id = :t")
                .expression_attribute_values(":t", s(rec.tenant_id.as_str()))
                .build()
                .map_err(build)?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => {
                let taken = e.as_service_error().is_some_and(|se| {
                    se.is_transaction_canceled_exception()
                        && match se {
                            TransactWriteItemsError::TransactionCanceledException(c) => c
                                .cancellation_reasons()
                                .iter()
                                .any(|r| r.code() == Some("ConditionalCheckFailed")),
                            _ => false,
                        }
                });
                if taken {
                    Err(StoreError::AliasTaken {
                        tenant: rec.tenant_id.to_string(),
                    })
                } else {
                    Err(StoreError::dynamo("TransactWriteItems", e))
                }
            }
        }
    }

    pub async fn get_tenant(&self, tenant: &TenantId) -> Result<Option<TenantRecord>, StoreError> {
        match self.get(&tenant_pk(tenant), "CONFIG").await? {
            None => Ok(None),
            Some(item) => parse_tenant(&item).map(Some),
        }
    }

    /// The tenant an alias belongs to, if any.
    pub async fn tenant_by_alias(
        &self,
        kind: AliasKind,
        value: &str,
    ) -> Result<Option<TenantId>, StoreError> {
        let Some(item) = self
            .get(&format!("{}{value}", kind.prefix()), "ALIAS")
            .await?
        else {
            return Ok(None);
        };
        let id = required_s(&item, "tenant_id")?;
        TenantId::parse(id)
            .map(Some)
            .map_err(|e| super::malformed(&item, e.to_string()))
    }

    /// Every configured tenant id.
    pub async fn list_tenant_ids(&self) -> Result<Vec<TenantId>, StoreError> {
        let mut out = Vec::new();
        for item in self.query_all("TENANTS", "T#").await? {
            if let Ok(t) = TenantId::parse(required_s(&item, "tenant_id")?) {
                out.push(t);
            }
        }
        Ok(out)
    }
}

fn parse_tenant(item: &Item) -> Result<TenantRecord, StoreError> {
    let bad = |e: crate::ids::IdError| super::malformed(item, e.to_string());
    Ok(TenantRecord {
        tenant_id: TenantId::parse(required_s(item, "tenant_id")?).map_err(bad)?,
        phone_number_id: PhoneNumberId::parse(required_s(item, "phone_number_id")?).map_err(bad)?,
        waba_id: WabaId::parse(required_s(item, "waba_id")?).map_err(bad)?,
        secret_id: required_s(item, "secret_id")?,
        display_phone_number: get_s(item, "display_phone_number"),
        verified_name: get_s(item, "verified_name"),
        messages_per_second: super::get_n(item, "messages_per_second")
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0),
        updated_at: super::get_n(item, "updated_at").unwrap_or(0),
    })
}
