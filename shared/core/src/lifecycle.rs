//! The alert lifecycle's rules: which alerts need a second person, and
//! which action may move an alert from which state to which.
//!
//! ```text
//! draft ──submit──▶ awaiting_approval ──approve──▶ resolving ─▶ sending ─▶ sent | failed
//!   │                  │        │                    │            │
//!   └──submit (no approval needed)──────────────────▶│            │
//!                      │        └─reject/cancel─▶ cancelled ◀─cancel┘
//!                      └─expire─▶ expired    (resolving and sending expire too)
//! ```

use crate::Language;
use crate::alert::AlertState;
use crate::cap::{MsgType, Status};
use std::fmt;
use std::str::FromStr;

/// Which alerts need a second person's approval before anything is sent
/// (`--approval`, `BEALERT_APPROVAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApprovalPolicy {
    /// `Actual` alerts need approval; exercises and tests do not (default).
    #[default]
    Actual,
    /// Every alert needs approval.
    All,
    /// No alert needs approval.
    None,
}

impl ApprovalPolicy {
    pub fn requires_approval(self, status: Status) -> bool {
        match self {
            ApprovalPolicy::Actual => status == Status::Actual,
            ApprovalPolicy::All => true,
            ApprovalPolicy::None => false,
        }
    }
}

impl FromStr for ApprovalPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "actual" => Ok(ApprovalPolicy::Actual),
            "all" => Ok(ApprovalPolicy::All),
            "none" => Ok(ApprovalPolicy::None),
            _ => Err(format!(
                "{s:?} is not an approval policy; use actual (Actual alerts need a second person), all or none"
            )),
        }
    }
}

impl fmt::Display for ApprovalPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApprovalPolicy::Actual => "actual",
            ApprovalPolicy::All => "all",
            ApprovalPolicy::None => "none",
        })
    }
}

/// A new alert that follows an earlier one up and goes to the audience
/// it reached: `POST /v1/alerts/{id}:update`, `:cancel`, `:all_clear`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FollowUp {
    Update,
    Cancel,
    AllClear,
}

impl FollowUp {
    pub const ALL: [FollowUp; 3] = [FollowUp::Update, FollowUp::Cancel, FollowUp::AllClear];

    /// The action's name in the API (`:<verb>`) and the audit log.
    pub fn verb(self) -> &'static str {
        match self {
            FollowUp::Update => "update",
            FollowUp::Cancel => "cancel",
            FollowUp::AllClear => "all_clear",
        }
    }

    pub fn from_verb(verb: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.verb() == verb)
    }

    /// CAP `msgType` of the new alert (an all-clear is an Update whose
    /// `responseType` is AllClear).
    pub fn msg_type(self) -> MsgType {
        match self {
            FollowUp::Cancel => MsgType::Cancel,
            FollowUp::Update | FollowUp::AllClear => MsgType::Update,
        }
    }

    /// A cancel stops what the original has not sent yet; an update or an
    /// all-clear waits until the original is done, so nobody gets it
    /// before the original.
    pub fn stops_original(self) -> bool {
        self == FollowUp::Cancel
    }

    /// Whether this follow-up waits for a second person. Stopping is always
    /// allowed alone: a cancel in fixed words (bealert's own cancel wording
    /// or a template a national operator marked as cancel wording) goes at
    /// once. A follow-up that says something of its own (`own_words`: any
    /// text given, or a zone) is a new message to the public and follows
    /// the policy exactly as a new alert with its status would: otherwise
    /// one person could send "EVACUATE NOW" to a country as a "cancel".
    pub fn needs_approval(self, policy: ApprovalPolicy, status: Status, own_words: bool) -> bool {
        if self == FollowUp::Cancel && !own_words {
            return false;
        }
        policy.requires_approval(status)
    }

    /// The text sent when the operator gives none for a language: names
    /// the original's event and its Belgian local time.
    pub fn default_text(self, language: Language, event: &str, at: &str) -> String {
        use Language::*;
        match (self, language) {
            (FollowUp::Cancel, Nl) => format!(
                "INGETROKKEN: het alarm \"{event}\" van {at} is ingetrokken. Er is geen gevaar; volg de instructies ervan niet meer op."
            ),
            (FollowUp::Cancel, Fr) => format!(
                "ANNULÉ : l'alerte « {event} » du {at} est annulée. Il n'y a pas de danger ; ne suivez plus ses consignes."
            ),
            (FollowUp::Cancel, De) => format!(
                "AUFGEHOBEN: Die Warnung „{event}“ vom {at} ist aufgehoben. Es besteht keine Gefahr; befolgen Sie ihre Anweisungen nicht mehr."
            ),
            (FollowUp::Cancel, En) => format!(
                "CANCELLED: the alert \"{event}\" of {at} is cancelled. There is no danger; disregard its instructions."
            ),
            (FollowUp::AllClear, Nl) => format!(
                "EINDE ALARM: het gevaar van \"{event}\" (alarm van {at}) is voorbij. U kunt uw gewone activiteiten hervatten."
            ),
            (FollowUp::AllClear, Fr) => format!(
                "FIN D'ALERTE : le danger « {event} » (alerte du {at}) est passé. Vous pouvez reprendre vos activités normales."
            ),
            (FollowUp::AllClear, De) => format!(
                "ENTWARNUNG: Die Gefahr „{event}“ (Warnung vom {at}) ist vorbei. Sie können Ihre gewohnten Tätigkeiten wieder aufnehmen."
            ),
            (FollowUp::AllClear, En) => format!(
                "ALL CLEAR: the danger of \"{event}\" (alert of {at}) is over. You may resume normal activities."
            ),
            (FollowUp::Update, Nl) => format!(
                "UPDATE: het alarm \"{event}\" van {at} blijft van kracht. Volg de instructies verder op."
            ),
            (FollowUp::Update, Fr) => format!(
                "MISE À JOUR : l'alerte « {event} » du {at} reste en vigueur. Continuez à suivre les consignes."
            ),
            (FollowUp::Update, De) => format!(
                "AKTUALISIERUNG: Die Warnung „{event}“ vom {at} bleibt in Kraft. Befolgen Sie weiter die Anweisungen."
            ),
            (FollowUp::Update, En) => format!(
                "UPDATE: the alert \"{event}\" of {at} remains in force. Keep following its instructions."
            ),
        }
    }
}

/// What a person (or the clock) does to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A draft is handed over: to approval, or straight to sending.
    Submit {
        needs_approval: bool,
    },
    Approve,
    Reject,
    /// Stops whatever is still to be sent.
    Cancel,
    /// Its approval wait, or its CAP `expires`, passed.
    Expire,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Submit { .. } => "submit",
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Cancel => "cancel",
            Action::Expire => "expire",
        }
    }
}

/// Why an action does not apply to an alert in its state (a 409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAllowed {
    pub action: Action,
    pub state: AlertState,
}

impl fmt::Display for NotAllowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.state {
            AlertState::Draft => "it is a draft: submit it first",
            AlertState::AwaitingApproval => "it is awaiting approval",
            AlertState::Resolving | AlertState::Sending => "it is already being sent",
            AlertState::Sent => "it has been sent",
            AlertState::Failed => "it failed",
            AlertState::Cancelled => "it was cancelled",
            AlertState::Expired => "it expired",
        };
        write!(
            f,
            "this alert cannot be {}: {why} (state {})",
            match self.action {
                Action::Submit { .. } => "submitted",
                Action::Approve => "approved",
                Action::Reject => "rejected",
                Action::Cancel => "cancelled",
                Action::Expire => "expired",
            },
            self.state.as_str()
        )
    }
}

/// The state an action moves an alert to, or why it may not.
pub fn next(state: AlertState, action: Action) -> Result<AlertState, NotAllowed> {
    use AlertState::*;
    let to = match (state, action) {
        (Draft, Action::Submit { needs_approval }) => {
            if needs_approval {
                AwaitingApproval
            } else {
                Resolving
            }
        }
        (AwaitingApproval, Action::Approve) => Resolving,
        (AwaitingApproval, Action::Reject) => Cancelled,
        (Draft | AwaitingApproval | Resolving | Sending, Action::Cancel) => Cancelled,
        (AwaitingApproval | Resolving | Sending, Action::Expire) => Expired,
        _ => return Err(NotAllowed { action, state }),
    };
    Ok(to)
}

/// The times a move sets on an alert besides its state, for every store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamps {
    /// When it ended: every move to a final state sets it.
    pub completed_at: Option<i64>,
    /// When a second person approved it: set by the approval only (the
    /// move [`Action::Approve`] makes). An alert rejected, cancelled or
    /// expired while it waited was never approved.
    pub approved_at: Option<i64>,
}

/// The stamps of the move `from` → `to` made at `at` (Unix ms); a store
/// writes them with the move, in the same step, and leaves any time not
/// set here as it was.
pub fn stamps(from: AlertState, to: AlertState, at: i64) -> Stamps {
    Stamps {
        completed_at: to.is_final().then_some(at),
        approved_at: (next(from, Action::Approve) == Ok(to)).then_some(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AlertState::*;

    const ALL: [AlertState; 8] = AlertState::ALL;

    #[test]
    fn the_policy_decides_who_needs_a_second_person() {
        let p: ApprovalPolicy = "actual".parse().unwrap();
        assert_eq!(p, ApprovalPolicy::default());
        assert!(p.requires_approval(Status::Actual));
        assert!(!p.requires_approval(Status::Exercise));
        assert!(!p.requires_approval(Status::Test));
        assert!(ApprovalPolicy::All.requires_approval(Status::Test));
        assert!(!ApprovalPolicy::None.requires_approval(Status::Actual));
        let e = "sometimes".parse::<ApprovalPolicy>().unwrap_err();
        assert!(e.contains("actual") && e.contains("none"), "{e}");
        for p in [
            ApprovalPolicy::Actual,
            ApprovalPolicy::All,
            ApprovalPolicy::None,
        ] {
            assert_eq!(p.to_string().parse::<ApprovalPolicy>().unwrap(), p);
        }
    }

    #[test]
    fn nothing_leaves_a_final_state() {
        for state in ALL.into_iter().filter(|s| s.is_final()) {
            for action in [
                Action::Submit {
                    needs_approval: false,
                },
                Action::Approve,
                Action::Reject,
                Action::Cancel,
                Action::Expire,
            ] {
                let e = next(state, action).unwrap_err();
                assert!(e.to_string().contains(state.as_str()), "{e}");
            }
        }
    }

    #[test]
    fn only_a_cancel_in_fixed_words_skips_the_second_person() {
        let p = ApprovalPolicy::Actual;
        // The hole: a cancel carrying its own text went out at once.
        assert!(FollowUp::Cancel.needs_approval(p, Status::Actual, true));
        assert!(!FollowUp::Cancel.needs_approval(p, Status::Actual, false));
        assert!(!FollowUp::Cancel.needs_approval(p, Status::Exercise, true));
        for kind in [FollowUp::Update, FollowUp::AllClear] {
            for own_words in [true, false] {
                assert!(kind.needs_approval(p, Status::Actual, own_words));
                assert!(!kind.needs_approval(p, Status::Exercise, own_words));
            }
        }
        assert!(FollowUp::Cancel.needs_approval(ApprovalPolicy::All, Status::Test, true));
        assert!(!FollowUp::Cancel.needs_approval(ApprovalPolicy::All, Status::Test, false));
        assert!(!FollowUp::Cancel.needs_approval(ApprovalPolicy::None, Status::Actual, true));
    }

    #[test]
    fn only_an_alert_awaiting_approval_is_approved_or_rejected() {
        for state in ALL {
            let approved = next(state, Action::Approve);
            let rejected = next(state, Action::Reject);
            if state == AwaitingApproval {
                assert_eq!(approved, Ok(Resolving));
                assert_eq!(rejected, Ok(Cancelled));
            } else {
                assert!(approved.is_err() && rejected.is_err(), "{state:?}");
            }
        }
    }

    #[test]
    fn a_cancel_stops_anything_not_yet_final_and_needs_no_approval() {
        for state in ALL {
            match next(state, Action::Cancel) {
                Ok(to) => {
                    assert!(!state.is_final());
                    assert_eq!(to, Cancelled);
                }
                Err(e) => {
                    assert!(state.is_final(), "{state:?}");
                    assert!(e.to_string().starts_with("this alert cannot be cancelled"));
                }
            }
        }
    }

    #[test]
    fn a_draft_goes_to_approval_only_when_the_policy_says_so() {
        assert_eq!(
            next(
                Draft,
                Action::Submit {
                    needs_approval: true
                }
            ),
            Ok(AwaitingApproval)
        );
        assert_eq!(
            next(
                Draft,
                Action::Submit {
                    needs_approval: false
                }
            ),
            Ok(Resolving)
        );
        assert!(next(Draft, Action::Approve).is_err());
        assert!(next(Draft, Action::Expire).is_err());
        assert_eq!(next(Sending, Action::Expire), Ok(Expired));
    }

    #[test]
    fn only_the_approval_stamps_approved_at_and_only_an_end_stamps_completed_at() {
        for from in ALL {
            for to in ALL {
                let s = stamps(from, to, 42);
                let approval = from == AwaitingApproval && to == Resolving;
                assert_eq!(s.approved_at, approval.then_some(42), "{from:?} -> {to:?}");
                assert_eq!(
                    s.completed_at,
                    to.is_final().then_some(42),
                    "{from:?} -> {to:?}"
                );
            }
        }
        // Rejected or expired while waiting: ended, never approved.
        for to in [Cancelled, Expired] {
            assert_eq!(
                stamps(AwaitingApproval, to, 7),
                Stamps {
                    completed_at: Some(7),
                    approved_at: None
                }
            );
        }
    }

    #[test]
    fn states_print_and_parse_back_in_snake_case() {
        for state in ALL {
            assert_eq!(AlertState::parse(state.as_str()), Some(state));
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::String(state.as_str().into())
            );
        }
        assert_eq!(AwaitingApproval.as_str(), "awaiting_approval");
    }
}
