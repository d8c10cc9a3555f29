//! Several providers behind one channel, and faults to test them with.
//!
//! A [`ProviderChain`] is a channel's gateway: it hands each message to
//! the first provider that takes it. A provider that certainly did not
//! take a message (it is down, refuses the account, or throttles) passes it
//! on to the next one at once. One that may have sent it (a timeout, a
//! server error) keeps it: the message is pinned to that provider, and
//! only that provider is asked again, so no message leaves through two.
//! A permanent refusal (an invalid number, an opted-out recipient) is final.
//!
//! [`FaultyGateway`] wraps a provider with injected faults (a share of calls
//! failing, an outage, throttling), for the fault-injection tests and drills
//! of both homes.

pub use crate::ports::ProviderHealth;
use crate::ports::{Gateway, GatewayError, OutboundMessage, Sent};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One provider of a channel: a name (kept with each delivery it takes)
/// and its gateway.
#[derive(Clone)]
pub struct Provider {
    pub name: String,
    pub gateway: Arc<dyn Gateway>,
}

impl Provider {
    pub fn new(name: &str, gateway: Arc<dyn Gateway>) -> Self {
        Self {
            name: name.to_string(),
            gateway,
        }
    }
}

/// Refusals in a row after which a provider is passed by for a while.
pub const SKIP_AFTER: u64 = 3;
/// How long a provider that keeps refusing is passed by.
pub const SKIP_FOR: Duration = Duration::from_secs(2);

struct State {
    health: ProviderHealth,
    skip_until: Option<Instant>,
}

impl State {
    /// Whether the chain passes the provider by now.
    fn skipped(&self) -> bool {
        self.skip_until.is_some_and(|t| t > Instant::now())
    }
}

pub struct ProviderChain {
    providers: Vec<Provider>,
    state: Vec<Mutex<State>>,
}

impl ProviderChain {
    pub fn new(providers: Vec<Provider>) -> Self {
        assert!(!providers.is_empty(), "a channel needs a provider");
        let state = providers
            .iter()
            .map(|p| {
                Mutex::new(State {
                    health: ProviderHealth {
                        name: p.name.clone(),
                        ..ProviderHealth::default()
                    },
                    skip_until: None,
                })
            })
            .collect();
        Self { providers, state }
    }

    /// One provider named `name`.
    pub fn single(name: &str, gateway: Arc<dyn Gateway>) -> Self {
        Self::new(vec![Provider::new(name, gateway)])
    }

    pub fn names(&self) -> Vec<String> {
        self.providers.iter().map(|p| p.name.clone()).collect()
    }

    pub fn health(&self) -> Vec<ProviderHealth> {
        self.state
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|e| e.into_inner());
                ProviderHealth {
                    skipped: s.skipped(),
                    ..s.health.clone()
                }
            })
            .collect()
    }

    fn skipped(&self, i: usize) -> bool {
        self.state[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .skipped()
    }

    fn note(&self, i: usize, result: &Result<Sent, GatewayError>) {
        let mut s = self.state[i].lock().unwrap_or_else(|e| e.into_inner());
        let h = &mut s.health;
        match result {
            Ok(_) => {
                h.accepted += 1;
                h.refused_in_a_row = 0;
            }
            Err(e) => {
                match e {
                    GatewayError::Refused(_) => {
                        h.refused += 1;
                        h.refused_in_a_row += 1;
                    }
                    GatewayError::Throttled(_) => h.throttled += 1,
                    GatewayError::Permanent(_) => h.permanent += 1,
                    GatewayError::Retryable(_) | GatewayError::Unsure { .. } => h.unsure += 1,
                }
                h.last_error = Some(e.to_string());
            }
        }
        if s.health.refused_in_a_row >= SKIP_AFTER && self.providers.len() > 1 {
            s.skip_until = Some(Instant::now() + SKIP_FOR);
            s.health.refused_in_a_row = 0;
        }
    }

    /// The providers a message may go to, in order: its pinned one only,
    /// or every provider (those passed by for now last).
    fn route(&self, pinned: Option<&str>) -> Result<Vec<usize>, GatewayError> {
        if let Some(name) = pinned {
            return match self.providers.iter().position(|p| p.name == name) {
                Some(i) => Ok(vec![i]),
                // Its provider is no longer configured: it may have sent it,
                // and nobody else may. Give up with the reason.
                None => Err(GatewayError::Permanent(format!(
                    "provider {name}, which may have sent it, is no longer configured"
                ))),
            };
        }
        let (mut up, down): (Vec<usize>, Vec<usize>) =
            (0..self.providers.len()).partition(|i| !self.skipped(*i));
        up.extend(down);
        Ok(up)
    }
}

#[async_trait]
impl Gateway for ProviderChain {
    fn providers(&self) -> Vec<ProviderHealth> {
        self.health()
    }

    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>> {
        let mut results: Vec<Option<Result<Sent, GatewayError>>> = vec![None; messages.len()];
        // Each message's remaining route.
        let mut routes: Vec<std::vec::IntoIter<usize>> = Vec::with_capacity(messages.len());
        for (k, m) in messages.iter().enumerate() {
            match self.route(m.provider.as_deref()) {
                Ok(r) => routes.push(r.into_iter()),
                Err(e) => {
                    results[k] = Some(Err(e));
                    routes.push(Vec::new().into_iter());
                }
            }
        }
        // Round by round: each provider gets, in one call, the messages
        // whose route now reaches it (none for those already answered).
        let mut next: Vec<Option<usize>> = routes.iter_mut().map(Iterator::next).collect();
        while next.iter().any(Option::is_some) {
            let mut by_provider: HashMap<usize, Vec<usize>> = HashMap::new();
            for (k, p) in next.iter().enumerate() {
                if let Some(p) = p {
                    by_provider.entry(*p).or_default().push(k);
                }
            }
            for (p, ks) in by_provider {
                // A message whose claim may have run out goes to nobody
                // (and stays unpinned: it certainly did not leave).
                let now = crate::now_ms();
                let (late, ks): (Vec<usize>, Vec<usize>) = ks
                    .into_iter()
                    .partition(|k| messages[*k].too_late(now).is_some());
                for k in late {
                    next[k] = None;
                    results[k] = messages[k].too_late(now).map(Err);
                }
                let batch: Vec<OutboundMessage> = ks.iter().map(|k| messages[*k].clone()).collect();
                let answers = self.providers[p].gateway.send(&batch).await;
                let name = &self.providers[p].name;
                for (k, answer) in ks.into_iter().zip(answers) {
                    self.note(p, &answer);
                    next[k] = None;
                    let result = match answer {
                        Ok(Sent::Accepted(mut h)) => {
                            h.provider = name.clone();
                            Ok(Sent::Accepted(h))
                        }
                        Ok(Sent::AlreadySent) => Ok(Sent::AlreadySent),
                        // Certainly not taken: the next provider, if any.
                        Err(e @ (GatewayError::Refused(_) | GatewayError::Throttled(_))) => {
                            match routes[k].next() {
                                Some(q) => {
                                    tracing::debug!(provider = %name, next = %self.providers[q].name, error = %e, "not taken; the next provider tries");
                                    next[k] = Some(q);
                                    continue;
                                }
                                None => Err(e),
                            }
                        }
                        // May have left: pinned to this provider.
                        Err(GatewayError::Retryable(reason)) => Err(GatewayError::Unsure {
                            provider: name.clone(),
                            reason,
                        }),
                        Err(e) => Err(e),
                    };
                    results[k] = Some(result);
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(GatewayError::Refused("no provider took it".into()))))
            .collect()
    }
}

/// Faults per provider name, from `BEALERT_PROVIDER_FAULTS`:
/// `outbox:fail=0.5;backup:down=30s,throttle=0.1`.
pub fn parse_faults(s: &str) -> Result<HashMap<String, Faults>, String> {
    let mut out = HashMap::new();
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, faults) = part
            .split_once(':')
            .ok_or_else(|| format!("`{part}`: expected PROVIDER:FAULTS, e.g. sns:fail=0.5"))?;
        out.insert(name.trim().to_string(), faults.parse()?);
    }
    Ok(out)
}

/// Faults to inject into a provider, parsed from `fail=0.5,down=30s,throttle=0.2`:
/// * `fail=R`: a share R of calls fail; half of those are refused before
///   sending, half time out after the message left (the worst case: the
///   provider sent it but said nothing);
/// * `down=D`: refuses everything for D from its first call;
/// * `throttle=R`: a share R of calls is throttled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    pub fail: f64,
    pub down_for: Option<Duration>,
    pub throttle: f64,
}

impl std::str::FromStr for Faults {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut f = Faults::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected fail=R, down=D or throttle=R"))?;
            let share = |v: &str| {
                v.parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| format!("`{part}`: a share between 0 and 1"))
            };
            match k {
                "fail" => f.fail = share(v)?,
                "throttle" => f.throttle = share(v)?,
                "down" => {
                    let secs = v
                        .strip_suffix("ms")
                        .map(|n| n.parse::<f64>().map(|n| n / 1000.0))
                        .or_else(|| v.strip_suffix('s').map(str::parse::<f64>))
                        .and_then(Result::ok)
                        .filter(|n| *n >= 0.0)
                        .ok_or_else(|| format!("`{part}`: a duration like 30s or 500ms"))?;
                    f.down_for = Some(Duration::from_secs_f64(secs));
                }
                _ => {
                    return Err(format!(
                        "`{part}`: unknown fault {k} (fail, down, throttle)"
                    ));
                }
            }
        }
        Ok(f)
    }
}

/// A provider with injected faults. Calls are decided per message by a
/// counter, so a run is reproducible: of every 1,000 calls, the shares ask
/// for exactly so many failures.
pub struct FaultyGateway {
    inner: Arc<dyn Gateway>,
    faults: Faults,
    calls: AtomicU64,
    started: Mutex<Option<Instant>>,
}

impl FaultyGateway {
    pub fn new(inner: Arc<dyn Gateway>, faults: Faults) -> Self {
        Self {
            inner,
            faults,
            calls: AtomicU64::new(0),
            started: Mutex::new(None),
        }
    }

    fn down(&self) -> bool {
        let Some(d) = self.faults.down_for else {
            return false;
        };
        let mut s = self.started.lock().unwrap_or_else(|e| e.into_inner());
        let start = *s.get_or_insert_with(Instant::now);
        start.elapsed() < d
    }
}

/// Where call `n` falls in a spread of shares: a low-discrepancy sequence,
/// so any stretch of calls gets close to its share of each fault.
fn spot(n: u64) -> f64 {
    // The golden-ratio (Weyl) sequence.
    (n as f64 * 0.618_033_988_749_894_9).fract()
}

#[async_trait]
impl Gateway for FaultyGateway {
    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>> {
        if self.down() {
            return vec![
                Err(GatewayError::Refused("injected: provider down".into()));
                messages.len()
            ];
        }
        enum Plan {
            Pass,
            Refuse,
            Throttle,
            TimeoutAfterSending,
        }
        let plans: Vec<Plan> = messages
            .iter()
            .map(|_| {
                let x = spot(self.calls.fetch_add(1, Ordering::Relaxed));
                let f = &self.faults;
                if x < f.fail / 2.0 {
                    Plan::Refuse
                } else if x < f.fail {
                    Plan::TimeoutAfterSending
                } else if x < f.fail + f.throttle {
                    Plan::Throttle
                } else {
                    Plan::Pass
                }
            })
            .collect();
        let through: Vec<OutboundMessage> = messages
            .iter()
            .zip(&plans)
            .filter(|(_, p)| matches!(p, Plan::Pass | Plan::TimeoutAfterSending))
            .map(|(m, _)| m.clone())
            .collect();
        let mut answers = self.inner.send(&through).await.into_iter();
        plans
            .into_iter()
            .map(|p| match p {
                Plan::Refuse => Err(GatewayError::Refused("injected: connection refused".into())),
                Plan::Throttle => Err(GatewayError::Throttled(
                    "injected: too many requests".into(),
                )),
                Plan::Pass => answers
                    .next()
                    .unwrap_or_else(|| Err(GatewayError::Retryable("no answer".into()))),
                Plan::TimeoutAfterSending => {
                    let _ = answers.next();
                    Err(GatewayError::Retryable(
                        "injected: timed out after sending".into(),
                    ))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_say_what_is_wrong() {
        let f: Faults = "fail=0.5,down=30s,throttle=0.1".parse().unwrap();
        assert_eq!(f.fail, 0.5);
        assert_eq!(f.down_for, Some(Duration::from_secs(30)));
        assert_eq!(f.throttle, 0.1);
        assert_eq!(
            "down=250ms".parse::<Faults>().unwrap().down_for,
            Some(Duration::from_millis(250))
        );
        assert!(
            "fail=2"
                .parse::<Faults>()
                .unwrap_err()
                .contains("between 0 and 1")
        );
        assert!(
            "loss=0.1"
                .parse::<Faults>()
                .unwrap_err()
                .contains("unknown fault")
        );
    }

    #[test]
    fn the_spread_gives_each_stretch_its_share() {
        let hits = (0..1000).filter(|n| spot(*n) < 0.5).count();
        assert!((490..=510).contains(&hits), "{hits}");
    }
}

#[cfg(test)]
mod chain_tests {
    use super::*;
    use crate::ports::{Handover, MessageKind};
    use bealert_core::{AlertId, Channel, Language, SubscriberId};

    /// A provider that answers every message the same way and counts what
    /// it was handed.
    struct Fixed {
        answer: Result<Sent, GatewayError>,
        seen: Mutex<Vec<String>>,
    }

    impl Fixed {
        fn new(answer: Result<Sent, GatewayError>) -> Arc<Self> {
            Arc::new(Self {
                answer,
                seen: Mutex::new(Vec::new()),
            })
        }
        fn seen(&self) -> Vec<String> {
            self.seen.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Gateway for Fixed {
        async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>> {
            self.seen
                .lock()
                .unwrap()
                .extend(messages.iter().map(|m| m.key.clone()));
            vec![self.answer.clone(); messages.len()]
        }
    }

    fn message(n: u64, pinned: Option<&str>) -> OutboundMessage {
        let alert = AlertId::new();
        let sub = SubscriberId::from_random(n);
        OutboundMessage {
            key: format!("k{n}"),
            kind: MessageKind::Alert {
                alert_id: alert,
                subscriber_id: sub,
            },
            channel: Channel::Sms,
            to: "+32470000001".into(),
            language: Language::Nl,
            subject: None,
            text: "t".into(),
            signature: None,
            not_after: i64::MAX,
            provider: pinned.map(str::to_string),
            unsubscribe: None,
        }
    }

    fn chain(a: Arc<Fixed>, b: Arc<Fixed>) -> ProviderChain {
        ProviderChain::new(vec![Provider::new("a", a), Provider::new("b", b)])
    }

    #[tokio::test]
    async fn a_refusal_or_throttling_passes_the_message_to_the_next_provider() {
        for refusal in [
            GatewayError::Refused("down".into()),
            GatewayError::Throttled("slow down".into()),
        ] {
            let (a, b) = (
                Fixed::new(Err(refusal)),
                Fixed::new(Ok(Sent::accepted_as("b-1"))),
            );
            let r = chain(a.clone(), b.clone()).send(&[message(1, None)]).await;
            assert_eq!(
                r,
                vec![Ok(Sent::Accepted(Handover {
                    provider: "b".into(),
                    id: Some("b-1".into())
                }))]
            );
            assert_eq!((a.seen().len(), b.seen().len()), (1, 1));
        }
    }

    #[tokio::test]
    async fn a_message_that_may_have_left_stays_with_its_provider() {
        let (a, b) = (
            Fixed::new(Err(GatewayError::Retryable("timed out".into()))),
            Fixed::new(Ok(Sent::accepted())),
        );
        let c = chain(a.clone(), b.clone());
        let r = c.send(&[message(1, None)]).await;
        assert_eq!(
            r,
            vec![Err(GatewayError::Unsure {
                provider: "a".into(),
                reason: "timed out".into()
            })]
        );
        assert!(b.seen().is_empty(), "the next provider never saw it");
        // Pinned: even when a refuses it now, b is not asked.
        let (a, b) = (
            Fixed::new(Err(GatewayError::Refused("down".into()))),
            Fixed::new(Ok(Sent::accepted())),
        );
        let r = chain(a.clone(), b.clone())
            .send(&[message(2, Some("a")), message(3, Some("b"))])
            .await;
        assert_eq!(r[0], Err(GatewayError::Refused("down".into())));
        assert!(matches!(&r[1], Ok(Sent::Accepted(h)) if h.provider == "b"));
        assert_eq!(
            (a.seen(), b.seen()),
            (vec!["k2".to_string()], vec!["k3".to_string()])
        );
        // A pin to a provider no longer configured is final, with the reason.
        let r = chain(a, b).send(&[message(4, Some("gone"))]).await;
        assert!(matches!(&r[0], Err(GatewayError::Permanent(e)) if e.contains("gone")));
    }

    #[tokio::test]
    async fn a_permanent_refusal_is_final_and_when_all_refuse_the_last_refusal_is_kept() {
        let (a, b) = (
            Fixed::new(Err(GatewayError::Permanent("invalid number".into()))),
            Fixed::new(Ok(Sent::accepted())),
        );
        let r = chain(a, b.clone()).send(&[message(1, None)]).await;
        assert_eq!(
            r,
            vec![Err(GatewayError::Permanent("invalid number".into()))]
        );
        assert!(b.seen().is_empty());
        let (a, b) = (
            Fixed::new(Err(GatewayError::Refused("a down".into()))),
            Fixed::new(Err(GatewayError::Throttled("b busy".into()))),
        );
        let r = chain(a, b).send(&[message(1, None)]).await;
        assert_eq!(r, vec![Err(GatewayError::Throttled("b busy".into()))]);
    }

    #[tokio::test]
    async fn a_provider_that_keeps_refusing_is_passed_by_for_a_while() {
        let (a, b) = (
            Fixed::new(Err(GatewayError::Refused("down".into()))),
            Fixed::new(Ok(Sent::accepted())),
        );
        let c = chain(a.clone(), b.clone());
        for n in 0..SKIP_AFTER {
            c.send(&[message(n, None)]).await;
        }
        assert_eq!(a.seen().len() as u64, SKIP_AFTER);
        c.send(&[message(99, None)]).await;
        assert_eq!(a.seen().len() as u64, SKIP_AFTER, "a was passed by");
        let h = c.health();
        assert!(h[0].skipped && !h[1].skipped, "{h:?}");
        assert_eq!((h[0].refused, h[1].accepted), (SKIP_AFTER, SKIP_AFTER + 1));
    }

    #[tokio::test]
    async fn faults_refuse_or_time_out_after_sending_their_share() {
        let inner = Fixed::new(Ok(Sent::accepted()));
        let f = FaultyGateway::new(inner.clone(), "fail=0.5".parse().unwrap());
        let msgs: Vec<OutboundMessage> = (0..1000).map(|n| message(n, None)).collect();
        let r = f.send(&msgs).await;
        let refused = r
            .iter()
            .filter(|r| matches!(r, Err(GatewayError::Refused(_))))
            .count();
        let unsure = r
            .iter()
            .filter(|r| matches!(r, Err(GatewayError::Retryable(_))))
            .count();
        assert!((240..=260).contains(&refused), "{refused}");
        assert!((240..=260).contains(&unsure), "{unsure}");
        // What timed out had left: the provider saw it.
        assert_eq!(inner.seen().len(), 1000 - refused);
        let down = FaultyGateway::new(inner, "down=10s".parse().unwrap());
        assert!(matches!(
            &down.send(&msgs[..1]).await[0],
            Err(GatewayError::Refused(_))
        ));
    }
}
