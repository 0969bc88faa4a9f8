//! The template fields: `message_template_status_update`,
//! `message_template_quality_update`, `template_category_update` and
//! `message_template_components_update`.
//!
//! A value with `new_quality_score` is a quality change whatever its field:
//! Meta documents quality changes delivered in the status field.

use std::borrow::Cow;

use super::model::{TemplateChange, TemplateUpdate};
use super::read::{FIELD_TEMPLATE_CATEGORY, FIELD_TEMPLATE_COMPONENTS, FIELD_TEMPLATE_STATUS};
use super::shape::ChangeValue;

fn owned(s: &Option<Cow<'_, str>>) -> Option<String> {
    s.as_deref().map(str::to_owned)
}

/// What a template field's value says changed, or why nothing can be said
/// (the skip reason).
pub(super) fn update(
    v: &ChangeValue<'_>,
    field: &str,
    waba_id: &str,
    entry_time: Option<i64>,
) -> Result<TemplateUpdate, &'static str> {
    let change = if let Some(new) = owned(&v.new_quality_score.0) {
        TemplateChange::Quality {
            previous: owned(&v.previous_quality_score.0),
            new,
        }
    } else {
        match field {
            FIELD_TEMPLATE_STATUS => TemplateChange::Status {
                event: owned(&v.event.0).ok_or("template status update without event")?,
                reason: owned(&v.reason.0).filter(|r| !r.is_empty() && r != "NONE"),
            },
            FIELD_TEMPLATE_CATEGORY => {
                match (owned(&v.correct_category.0), owned(&v.new_category.0)) {
                    // Impending: new_category is the current one, correct_category the future one.
                    (Some(correct), current) => TemplateChange::Category {
                        previous: current,
                        new: correct,
                        effective_at: v.category_update_timestamp.0,
                    },
                    (None, Some(new)) => TemplateChange::Category {
                        previous: owned(&v.previous_category.0),
                        new,
                        effective_at: None,
                    },
                    (None, None) => return Err("template category update without new_category"),
                }
            }
            FIELD_TEMPLATE_COMPONENTS => TemplateChange::Components,
            _ => return Err("template quality update without new_quality_score"),
        }
    };
    Ok(TemplateUpdate {
        waba_id: waba_id.to_owned(),
        field: field.to_owned(),
        template_id: v
            .message_template_id
            .0
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        name: owned(&v.message_template_name.0),
        language: owned(&v.message_template_language.0),
        change,
        entry_time,
    })
}
