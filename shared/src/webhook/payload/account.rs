//! The account fields: `phone_number_quality_update` (a number's
//! messaging limit or throughput), `business_capability_update` (the
//! portfolio's limits) and `account_update` (violations, restrictions,
//! bans, pricing tiers, ...), each read into one [`AccountUpdate`].
//!
//! Since 2025-10-07 messaging limits apply per business portfolio; in
//! February 2026 Meta removed `current_limit` and
//! `max_daily_conversation_per_phone` in favour of
//! `max_daily_conversations_per_business`. The removed fields are still
//! read while a body carries them. Sources: the three fields' references
//! under
//! <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/>
//! and <https://developers.facebook.com/documentation/business-messaging/whatsapp/messaging-limits>.

use std::borrow::Cow;

use super::model::{AccountUpdate, Restriction, VolumeTier};
use super::shape::ChangeValue;

fn owned(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

/// Every field is optional: whatever Meta sent is kept, nothing is refused.
pub(super) fn update(
    v: &mut ChangeValue<'_>,
    field: &str,
    waba_id: &str,
    entry_time: Option<i64>,
) -> AccountUpdate {
    let (ban_state, ban_date) = match v.ban_info.take() {
        Some(b) => (owned(b.waba_ban_state.0), owned(b.waba_ban_date.0)),
        None => (None, None),
    };
    AccountUpdate {
        waba_id: waba_id.to_owned(),
        field: field.to_owned(),
        entry_time,
        event: owned(v.event.0.take()),
        display_phone_number: owned(v.display_phone_number.0.take()),
        max_daily_conversations_per_business: owned(
            v.max_daily_conversations_per_business.0.take(),
        ),
        old_limit: owned(v.old_limit.0.take()),
        current_limit: owned(v.current_limit.0.take()),
        max_daily_conversation_per_phone: owned(v.max_daily_conversation_per_phone.0.take()),
        max_phone_numbers_per_business: owned(v.max_phone_numbers_per_business.0.take()),
        max_phone_numbers_per_waba: owned(v.max_phone_numbers_per_waba.0.take()),
        violation_type: v
            .violation_info
            .take()
            .and_then(|i| owned(i.violation_type.0)),
        ban_state,
        ban_date,
        restrictions: std::mem::take(&mut v.restriction_info)
            .into_items()
            .into_iter()
            .flatten()
            .map(|r| Restriction {
                restriction_type: owned(r.restriction_type.0),
                expiration: owned(r.expiration.0),
            })
            .collect(),
        volume_tier: v.volume_tier_info.take().map(|t| VolumeTier {
            tier: owned(t.tier.0),
            pricing_category: owned(t.pricing_category.0),
            region: owned(t.region.0),
            effective_month: owned(t.effective_month.0),
            tier_update_time: t.tier_update_time.0,
        }),
    }
}
