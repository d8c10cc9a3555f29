//! Telling an operator's approvers that an alert waits for them, through
//! the operator's own contact channels (`bealert operator notify`).

use super::App;
use crate::AppError;
use crate::ports::{AlertRecord, DocumentStore, MessageKind, OutboundMessage};
use bealert_core::subscriber::{normalise_email, normalise_phone};
use bealert_core::{Channel, Language, ValidationErrors};
use serde::{Deserialize, Serialize};

const KIND: &str = "approvers";

/// Where an operator's possible approvers are told (a duty phone, a
/// crisis-room mailbox).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApproverContacts {
    #[serde(default)]
    pub phones: Vec<String>,
    #[serde(default)]
    pub emails: Vec<String>,
}

/// `bealert operator notify`: replaces where an operator's approvers are
/// told; each phone (E.164) and e-mail is checked.
pub async fn set_approver_contacts(
    documents: &dyn DocumentStore,
    operator: &str,
    phones: &[String],
    emails: &[String],
) -> Result<ApproverContacts, AppError> {
    let mut out = ApproverContacts::default();
    let mut errors = Vec::new();
    for (i, p) in phones.iter().enumerate() {
        match normalise_phone(p) {
            Ok(p) => out.phones.push(p),
            Err(e) => errors.push(bealert_core::FieldError {
                path: format!("phone[{i}]"),
                message: e,
            }),
        }
    }
    for (i, e) in emails.iter().enumerate() {
        match normalise_email(e) {
            Ok(e) => out.emails.push(e),
            Err(why) => errors.push(bealert_core::FieldError {
                path: format!("email[{i}]"),
                message: why,
            }),
        }
    }
    if !errors.is_empty() {
        return Err(ValidationErrors(errors).into());
    }
    let json = serde_json::to_value(&out).map_err(|e| AppError::Internal(e.to_string()))?;
    documents.put_document(KIND, operator, &json).await?;
    Ok(out)
}

impl App {
    /// An alert waits for approval: the operator's approvers are told
    /// (what to approve, by whom, where). A failed notice is logged; the
    /// alert waits all the same.
    pub(crate) async fn notify_approvers(&self, alert: &AlertRecord, author: &str) {
        let contacts = match self
            .ports
            .documents
            .get_document(KIND, &alert.operator)
            .await
        {
            Ok(Some(j)) => serde_json::from_value::<ApproverContacts>(j).unwrap_or_default(),
            Ok(None) => {
                tracing::warn!(alert = %alert.id, operator = %alert.operator, "an alert awaits approval and its operator has no approver contacts (bealert operator notify)");
                return;
            }
            Err(e) => {
                tracing::error!(alert = %alert.id, error = %e, "approver contacts unreadable");
                return;
            }
        };
        let text = format!(
            "bealert: {} alert \"{}\" by {author} ({}) awaits a second person's approval. \
             Wacht op goedkeuring / attend une approbation: POST /v1/alerts/{}:approve",
            alert.spec.status.as_str(),
            alert.spec.event,
            alert.operator,
            alert.id
        );
        let message = |channel: Channel, to: &str| OutboundMessage {
            key: format!("approval:{}:{to}", alert.id),
            kind: MessageKind::Approval { alert_id: alert.id },
            channel,
            to: to.to_string(),
            language: Language::En,
            subject: (channel == Channel::Email)
                .then(|| format!("bealert: approve \"{}\"?", alert.spec.event)),
            text: text.clone(),
            signature: None,
            not_after: self.now_ms() + 60_000,
            provider: None,
            unsubscribe: None,
        };
        for (channel, list) in [
            (Channel::Sms, &contacts.phones),
            (Channel::Email, &contacts.emails),
        ] {
            let batch: Vec<OutboundMessage> = list.iter().map(|to| message(channel, to)).collect();
            if batch.is_empty() {
                continue;
            }
            for (m, r) in batch
                .iter()
                .zip(self.ports.gateways.get(channel).send(&batch).await)
            {
                if let Err(e) = r {
                    tracing::error!(alert = %alert.id, to = %m.to, error = %e, "approver not told");
                }
            }
        }
    }
}
