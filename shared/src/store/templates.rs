//! Template status per (tenant, name, language).
//!
//! Written by the template function (submission, reconcile) and by the
//! webhook (Meta's status, quality and category updates). Updates carry
//! Meta's own time and only a newer one wins, so a replayed or late webhook
//! never turns an APPROVED template back to PENDING.

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;

use super::{
    applied, get_n, get_s, n, owed, required_s, s, update_or_old, Change, Item, Store, StoreError,
    Written,
};
use crate::ids::TenantId;

/// A template as this service knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TemplateRecord {
    pub name: String,
    pub language: String,
    pub template_id: Option<String>,
    /// Meta's status: PENDING, APPROVED, REJECTED, PAUSED, DISABLED, ...
    pub status: String,
    pub reason: Option<String>,
    pub category: Option<String>,
    pub quality: Option<String>,
    /// Meta's time of the status (webhook entry time, or when we observed it).
    pub status_ts: i64,
    /// When the current status was written, if its event is still owed
    /// (not published yet: see [`crate::owed`]).
    #[serde(skip)]
    pub status_owed_since: Option<i64>,
}

impl TemplateRecord {
    pub fn is_approved(&self) -> bool {
        self.status == "APPROVED"
    }
}

/// What changed about a template.
#[derive(Debug, Clone)]
pub enum TemplateStatusChange<'a> {
    Status {
        status: &'a str,
        reason: Option<&'a str>,
    },
    Quality {
        score: &'a str,
    },
    Category {
        category: &'a str,
    },
}

fn sk(name: &str, language: &str) -> String {
    format!("TEMPLATE#{name}#{language}")
}

impl TemplateStatusChange<'_> {
    /// The record's attributes for this kind of change: its value, its
    /// time, its owed mark and the mark's time (each kind is ordered on its
    /// own).
    fn attrs(&self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            TemplateStatusChange::Status { .. } => {
                ("status", "status_ts", "owed_status", "owed_status_at")
            }
            TemplateStatusChange::Quality { .. } => {
                ("quality", "quality_ts", "owed_quality", "owed_quality_at")
            }
            TemplateStatusChange::Category { .. } => (
                "category",
                "category_ts",
                "owed_category",
                "owed_category_at",
            ),
        }
    }

    fn value(&self) -> &str {
        match self {
            TemplateStatusChange::Status { status, .. } => status,
            TemplateStatusChange::Quality { score } => score,
            TemplateStatusChange::Category { category } => category,
        }
    }

    /// What the owed mark holds: this change's value at its time.
    fn mark(&self, ts: i64) -> String {
        format!("{}@{ts}", self.value())
    }
}

/// One change of one template, as Meta reported it at `at`.
#[derive(Debug, Clone, Copy)]
pub struct TemplateChangeAt<'a> {
    pub name: &'a str,
    pub language: &'a str,
    /// Meta's id of the template, when the report carries it.
    pub template_id: Option<&'a str>,
    pub change: &'a TemplateStatusChange<'a>,
    /// Meta's time of the change (unix seconds): changes of one kind are
    /// applied in this order.
    pub at: i64,
    /// Now, when the change has an event to publish; `None` otherwise.
    pub event_owed_at: Option<i64>,
}

impl Store {
    /// Applies a change observed at its `at` (Meta's time). Each kind of
    /// change is ordered by its `at`. A change with an event (`event_owed_at`: now) is
    /// marked owed until [`Store::clear_template_owed`]; its retry then finds
    /// [`Change::Owed`] or [`Change::InFlight`]. A newer change of the same
    /// kind replaces (or, without an event, drops) an older one's mark.
    pub async fn apply_template_change(
        &self,
        tenant: &TenantId,
        observed: &TemplateChangeAt<'_>,
    ) -> Result<Change, StoreError> {
        let &TemplateChangeAt {
            name,
            language,
            template_id,
            change,
            at: ts,
            event_owed_at,
        } = observed;
        let mut req = self
            .template_item(tenant, name, language)
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(name))
            .expression_attribute_values(":lang", s(language))
            .expression_attribute_values(":ts", n(ts));
        let mut set = vec!["#name = :name", "lang = :lang"];
        if let Some(id) = template_id {
            set.push("template_id = :id");
            req = req.expression_attribute_values(":id", s(id));
        }
        let (update, condition) = match change {
            TemplateStatusChange::Status { status, reason } => {
                req = req
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":s", s(*status))
                    .expression_attribute_values(":reason", s(reason.unwrap_or("")));
                set.extend(["#status = :s", "status_ts = :ts", "reason = :reason"]);
                (
                    format!("SET {}", set.join(", ")),
                    "attribute_not_exists(status_ts) OR status_ts < :ts OR (status_ts = :ts AND #status <> :s)",
                )
            }
            TemplateStatusChange::Quality { score } => {
                req = req.expression_attribute_values(":q", s(*score));
                set.extend(["quality = :q", "quality_ts = :ts"]);
                (format!("SET {}", set.join(", ")), "attribute_not_exists(quality_ts) OR quality_ts < :ts OR (quality_ts = :ts AND quality <> :q)")
            }
            TemplateStatusChange::Category { category } => {
                req = req.expression_attribute_values(":c", s(*category));
                set.extend(["category = :c", "category_ts = :ts"]);
                (format!("SET {}", set.join(", ")), "attribute_not_exists(category_ts) OR category_ts < :ts OR (category_ts = :ts AND category <> :c)")
            }
        };
        let (_, _, mark_attr, at_attr) = change.attrs();
        let update = match event_owed_at {
            Some(now) => {
                req = req
                    .expression_attribute_values(":mark", s(change.mark(ts)))
                    .expression_attribute_values(":now", n(now));
                format!("{update}, {mark_attr} = :mark, {at_attr} = :now")
            }
            None => format!("{update} REMOVE {mark_attr}, {at_attr}"),
        };
        match update_or_old(
            req.update_expression(update)
                .condition_expression(condition),
        )
        .await?
        {
            Written::Applied(_) => Ok(Change::Applied),
            Written::Refused(old) => Ok(owed(
                get_s(&old, mark_attr).is_some_and(|m| m == change.mark(ts)),
                get_n(&old, at_attr),
                event_owed_at.unwrap_or(i64::MAX),
            )),
        }
    }

    /// Clears a change's owed mark once its event was published. `false`
    /// if there was none (a newer change of the kind replaced it).
    pub async fn clear_template_owed(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        change: &TemplateStatusChange<'_>,
        ts: i64,
    ) -> Result<bool, StoreError> {
        let (_, _, mark_attr, at_attr) = change.attrs();
        let req = self
            .template_item(tenant, name, language)
            .update_expression("REMOVE #m, #a")
            .condition_expression("#m = :m")
            .expression_attribute_names("#m", mark_attr)
            .expression_attribute_names("#a", at_attr)
            .expression_attribute_values(":m", s(change.mark(ts)));
        applied("UpdateItem", req.send().await)
    }

    /// An update of a template's item.
    fn template_item(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
    ) -> UpdateItemFluentBuilder {
        self.update(format!("T#{tenant}"), sk(name, language))
    }

    /// Records a submission's answer (Meta's id, status and category). It
    /// carries time 0, so it never overwrites a status a webhook already
    /// delivered: Meta's approval can arrive before this write.
    pub async fn record_template_submission(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
        template_id: &str,
        status: &str,
        category: Option<&str>,
    ) -> Result<bool, StoreError> {
        let ts = 0;
        let changed = self
            .apply_template_change(
                tenant,
                &TemplateChangeAt {
                    name,
                    language,
                    template_id: Some(template_id),
                    change: &TemplateStatusChange::Status {
                        status,
                        reason: None,
                    },
                    at: ts,
                    event_owed_at: None,
                },
            )
            .await?
            == Change::Applied;
        if let Some(c) = category {
            self.apply_template_change(
                tenant,
                &TemplateChangeAt {
                    name,
                    language,
                    template_id: None,
                    change: &TemplateStatusChange::Category { category: c },
                    at: ts,
                    event_owed_at: None,
                },
            )
            .await?;
        }
        Ok(changed)
    }

    pub async fn get_template(
        &self,
        tenant: &TenantId,
        name: &str,
        language: &str,
    ) -> Result<Option<TemplateRecord>, StoreError> {
        self.get(&format!("T#{tenant}"), &sk(name, language))
            .await?
            .map(|i| parse_template(&i))
            .transpose()
    }

    /// All of a tenant's templates.
    pub async fn list_templates(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<TemplateRecord>, StoreError> {
        self.query_all(&format!("T#{tenant}"), "TEMPLATE#")
            .await?
            .iter()
            .map(parse_template)
            .collect()
    }
}

fn parse_template(item: &Item) -> Result<TemplateRecord, StoreError> {
    let status = get_s(item, "status").unwrap_or_else(|| "UNKNOWN".into());
    let status_ts = get_n(item, "status_ts").unwrap_or(0);
    let current = TemplateStatusChange::Status {
        status: &status,
        reason: None,
    }
    .mark(status_ts);
    Ok(TemplateRecord {
        name: required_s(item, "name")?,
        language: required_s(item, "lang")?,
        template_id: get_s(item, "template_id"),
        status_owed_since: get_s(item, "owed_status")
            .is_some_and(|m| m == current)
            .then(|| get_n(item, "owed_status_at").unwrap_or(0)),
        status,
        reason: get_s(item, "reason").filter(|r| !r.is_empty() && r != "NONE"),
        category: get_s(item, "category"),
        quality: get_s(item, "quality"),
        status_ts,
    })
}
