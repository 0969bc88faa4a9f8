//! `GET /admin/tenants/{tenant_id}/costs?month=YYYY-MM`: what the tenant's
//! delivered messages of a month (UTC) cost at Meta, per day and pricing
//! category, from the cost ledger ([`crate::store::CostDay`]) and the rate
//! card ([`crate::costs::RateCard`]). `month` defaults to the current one.
//!
//! Every figure is an estimate in the card's currency: the card names its
//! source and date, and messages it has no price for (a market it does not
//! list, a recipient known only by a BSUID, a category without a price) are
//! counted as `unpriced` rather than guessed.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::AdminResponse;
use super::{configured, AdminError};
use crate::costs::{amount, Estimate, RateCard};
use crate::ids::TenantId;
use crate::startup::App;

/// The `month` query parameter, checked: `YYYY-MM`, month 01 to 12.
pub fn month(query: Option<&str>, now: i64) -> Result<String, AdminError> {
    let given = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "month")
        .map(|(_, v)| v.into_owned());
    let Some(m) = given else {
        let today = super::when::iso8601(now);
        return Ok(today.get(..7).unwrap_or(&today).to_string());
    };
    let b = m.as_bytes();
    let ok = b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
        && matches!(m[5..].parse::<u8>(), Ok(1..=12));
    if ok {
        Ok(m)
    } else {
        Err(AdminError::invalid("month", "must be YYYY-MM"))
    }
}

/// A day's row of one (category, type): its estimate and messages per
/// country calling code.
type Row<'a> = (Estimate, BTreeMap<&'a str, u64>);

fn estimate_json(e: &Estimate) -> Value {
    json!({
        "messages": e.messages,
        "billable": e.billable,
        "unpriced": e.unpriced,
        "estimated_cost": amount(e.cost),
    })
}

pub async fn get(
    app: &App,
    tenant: &TenantId,
    query: Option<&str>,
) -> Result<AdminResponse, AdminError> {
    let month = month(query, app.clock.now())?;
    configured(app, tenant).await?;
    let card = RateCard::builtin().map_err(AdminError::RateCard)?;
    let days = app.store.cost_days(tenant, &month).await?;
    let mut total = Estimate::default();
    let mut month_by_category: BTreeMap<String, Estimate> = BTreeMap::new();
    let days: Vec<Value> = days
        .iter()
        .map(|d| {
            let mut day_total = Estimate::default();
            // (category, type) -> estimate, and the countries in it.
            let mut rows: BTreeMap<(&str, &str), Row<'_>> = BTreeMap::new();
            for c in &d.counts {
                let e = Estimate::of(card, &c.key, c.messages);
                day_total.add(e);
                month_by_category
                    .entry(c.key.category.clone())
                    .or_default()
                    .add(e);
                let row = rows
                    .entry((c.key.category.as_str(), c.key.kind.as_str()))
                    .or_default();
                row.0.add(e);
                *row.1.entry(c.key.country.as_str()).or_default() += c.messages;
            }
            total.add(day_total);
            let categories: Vec<Value> = rows
                .iter()
                .map(|((category, kind), (e, countries))| {
                    let mut v = estimate_json(e);
                    v["category"] = json!(category);
                    v["type"] = json!(kind);
                    v["countries"] = json!(countries);
                    v
                })
                .collect();
            let mut v = estimate_json(&day_total);
            v["day"] = json!(d.day);
            v["categories"] = json!(categories);
            v
        })
        .collect();
    let by_category: Vec<Value> = month_by_category
        .iter()
        .map(|(category, e)| {
            let mut v = estimate_json(e);
            v["category"] = json!(category);
            v
        })
        .collect();
    let mut totals = estimate_json(&total);
    totals["categories"] = json!(by_category);
    Ok(AdminResponse::json(
        200,
        json!({
            "tenant_id": tenant,
            "month": month,
            "currency": card.currency,
            "rate_card": {"source": card.source, "as_of": card.as_of},
            "totals": totals,
            "days": days,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_yyyy_mm_and_defaults_to_the_current_one() {
        assert_eq!(
            month(Some("month=2026-11"), 0).ok().as_deref(),
            Some("2026-11")
        );
        // 2026-11-30T10:00:00Z
        assert_eq!(month(None, 1_796_032_800).ok().as_deref(), Some("2026-11"));
        for bad in [
            "month=2026-13",
            "month=2026-1",
            "month=26-11-01",
            "month=2026_11",
            "month=",
        ] {
            assert!(month(Some(bad), 0).is_err(), "{bad} should be refused");
        }
    }
}
