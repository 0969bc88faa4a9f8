//! The account webhooks, acted on: what each says of the tenant's messaging
//! limit, its number's quality and its account's standing is stored on the
//! tenant ([`crate::store::AccountAspect`]) and, when it changed, published
//! as `account.limits_changed`.
//!
//! Which field says what (Meta's webhook references under
//! <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/>
//! and <https://developers.facebook.com/documentation/business-messaging/whatsapp/messaging-limits>):
//! - `phone_number_quality_update`: `event` `FLAGGED` / `UNFLAGGED` is the
//!   number's quality (low, then back); `UPGRADE`, `DOWNGRADE`,
//!   `ONBOARDING`, `THROUGHPUT_UPGRADE` come with the messaging limit
//!   (`max_daily_conversations_per_business`, `old_limit`; `current_limit`
//!   until February 2026).
//! - `business_capability_update`: the portfolio's limits.
//! - `account_update`: restrictions, violations, bans (a pricing tier
//!   update, `VOLUME_BASED_PRICING_TIER_UPDATE`, is not a restriction and is
//!   not stored).

use serde_json::{json, Value};
use tracing::{info, warn};

use super::payload::AccountUpdate;
use super::Refusal;
use crate::events::Event;
use crate::owed::{Mark, Owed};
use crate::startup::App;
use crate::store::{account_mark, AccountAspect, Change};
use crate::tenants::Tenant;

/// What an update says, per aspect.
pub(super) fn facts(u: &AccountUpdate) -> Vec<(AccountAspect, Value)> {
    let limit = u
        .max_daily_conversations_per_business
        .as_deref()
        .or(u.current_limit.as_deref());
    match u.field.as_str() {
        "phone_number_quality_update" => match u.event.as_deref() {
            Some(e @ ("FLAGGED" | "UNFLAGGED")) => vec![(
                AccountAspect::Quality,
                json!({"event": e, "display_phone_number": u.display_phone_number}),
            )],
            event if event.is_some() || limit.is_some() => vec![(
                AccountAspect::MessagingLimit,
                json!({
                    "field": u.field,
                    "event": event,
                    "limit": limit,
                    "old_limit": u.old_limit,
                    "display_phone_number": u.display_phone_number,
                }),
            )],
            _ => Vec::new(),
        },
        "business_capability_update" if limit.is_some() => vec![(
            AccountAspect::MessagingLimit,
            json!({
                "field": u.field,
                "limit": limit,
                "max_phone_numbers_per_business": u.max_phone_numbers_per_business,
                "max_phone_numbers_per_waba": u.max_phone_numbers_per_waba,
            }),
        )],
        "account_update" => match u.event.as_deref() {
            None | Some("VOLUME_BASED_PRICING_TIER_UPDATE") => Vec::new(),
            Some(e) => vec![(
                AccountAspect::Standing,
                json!({
                    "event": e,
                    "restrictions": u.restrictions.iter().map(|r| json!({
                        "type": r.restriction_type,
                        "expiration": r.expiration,
                    })).collect::<Vec<_>>(),
                    "violation_type": u.violation_type,
                    "ban_state": u.ban_state,
                    "ban_date": u.ban_date,
                }),
            )],
        },
        _ => Vec::new(),
    }
}

/// Stores what an update says; each aspect that changed owes its event.
pub(super) async fn on_account<'a>(
    app: &App,
    tenant: &Tenant,
    u: &'a AccountUpdate,
    now: i64,
) -> Result<Vec<Owed<'a>>, Refusal> {
    let t = &tenant.tenant_id;
    let ts = u.entry_time.unwrap_or(now);
    let mut owed = Vec::new();
    for (aspect, value) in facts(u) {
        match app
            .store
            .apply_account_change(t, aspect, &value, ts, now)
            .await?
        {
            Change::Applied | Change::Owed => {}
            Change::InFlight => return Err(Refusal::EventInFlight),
            Change::Unchanged => continue,
        }
        let at = crate::admin::when::iso8601(ts);
        if aspect == AccountAspect::Standing
            || value["event"] == "FLAGGED"
            || value["event"] == "DOWNGRADE"
        {
            warn!(aspect = aspect.as_str(), field = %u.field, event = value["event"].as_str().unwrap_or("none"), at, "Meta reports a worse standing for the account");
        } else {
            info!(aspect = aspect.as_str(), field = %u.field, at, "account limits updated");
        }
        let mark = account_mark(&value, ts);
        owed.push(Owed {
            event: Event::AccountLimitsChanged {
                tenant_id: t.to_string(),
                waba_id: u.waba_id.clone(),
                aspect: aspect.as_str().to_string(),
                field: u.field.clone(),
                at,
                detail: value,
            },
            mark: Mark::Account { aspect, mark },
        });
    }
    Ok(owed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(field: &str, event: Option<&str>) -> AccountUpdate {
        AccountUpdate {
            waba_id: "1".into(),
            field: field.into(),
            event: event.map(str::to_string),
            ..AccountUpdate::default()
        }
    }

    #[test]
    fn each_field_says_what_it_says_of_the_account() {
        let flagged = facts(&update("phone_number_quality_update", Some("FLAGGED")));
        assert_eq!(flagged[0].0, AccountAspect::Quality);
        let mut upgrade = update("phone_number_quality_update", Some("UPGRADE"));
        upgrade.max_daily_conversations_per_business = Some("TIER_2K".into());
        upgrade.old_limit = Some("TIER_250".into());
        let f = facts(&upgrade);
        assert_eq!(f[0].0, AccountAspect::MessagingLimit);
        assert_eq!(f[0].1["limit"], "TIER_2K");
        assert_eq!(f[0].1["old_limit"], "TIER_250");
        let mut cap = update("business_capability_update", None);
        cap.max_daily_conversations_per_business = Some("2000".into());
        assert_eq!(facts(&cap)[0].1["limit"], "2000");
        let restricted = facts(&update("account_update", Some("ACCOUNT_RESTRICTION")));
        assert_eq!(restricted[0].0, AccountAspect::Standing);
        assert!(facts(&update(
            "account_update",
            Some("VOLUME_BASED_PRICING_TIER_UPDATE")
        ))
        .is_empty());
    }
}
