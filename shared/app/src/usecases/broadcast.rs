//! Alert-SMS in the alert flow: each network named by an alert gets one
//! delivery (keyed per alert and network) and one job on the broadcast
//! queue, so a network that fails or is slow holds only its own job; the
//! registered channels have queues of their own and never wait for it.

use super::networks::{EstimateZone, NetworksApp};
use super::{App, JobError, JobOutcome};
use crate::AppError;
use crate::jobs::{BROADCAST_QUEUE, BroadcastJob};
use crate::ports::{
    AlertRecord, BroadcastCell, BroadcastMessage, Claim, FollowUpMessage, GatewayError, Outcome,
};
use bealert_core::alert::AlertSpec;
use bealert_core::broadcast::{NetworkReport, Target, message_identifier};
use bealert_core::message::render;
use bealert_core::{AlertId, Channel, ValidationErrors};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

impl App {
    /// At creation: names the networks of a broadcast (every network with
    /// cells when the request named none), refuses unknown ones, and keeps
    /// the Alert-SMS estimate with the alert.
    pub(crate) async fn prepare_broadcast(&self, spec: &mut AlertSpec) -> Result<(), AppError> {
        let networks = self.networks();
        if let Some(b) = spec.broadcast.as_mut() {
            networks
                .ok_or_else(super::networks::not_set_up)?
                .name_networks(&mut b.networks)
                .await?;
        }
        if !spec.area.is_empty() {
            spec.estimate = match networks {
                Some(n) => n.estimate_area(spec.area.clone()).await?,
                None => None,
            };
        }
        Ok(())
    }

    /// Plans one delivery per network and hands each to the broadcast queue
    /// (again on a retried plan: a claim lets only one through).
    pub(crate) async fn plan_broadcast(&self, alert: &AlertRecord) -> Result<(), JobError> {
        match &alert.spec.broadcast {
            Some(b) if !b.networks.is_empty() => {
                self.networks_offered()
                    .map_err(JobError::from)?
                    .plan_networks(alert, &b.networks)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// What one attempt at a target (a network or an outlet) does to its
    /// delivery, in one record call: sent with the report, failed for good
    /// (a refusal, or the last attempt) with `failed_report`, or retried
    /// with backoff; then the alert settles.
    pub(crate) async fn finish_target(
        &self,
        alert: AlertId,
        target: &Target,
        attempt: u32,
        result: Result<NetworkReport, GatewayError>,
        failed_report: Option<NetworkReport>,
    ) -> Result<JobOutcome, JobError> {
        let config = self.broadcast_config();
        let (outcome, report, retry) = match result {
            Ok(report) => (Outcome::Sent, Some(report), None),
            Err(GatewayError::Permanent(e)) => (Outcome::Failed(e), failed_report, None),
            Err(e) if attempt >= config.max_attempts => (
                Outcome::Failed(format!("gave up after {attempt} attempts: {e}")),
                failed_report,
                None,
            ),
            Err(e) => {
                let why = e.to_string();
                let delay = super::backoff(config.retry_base, attempt - 1);
                (Outcome::Retry(why.clone()), None, Some((delay, why)))
            }
        };
        let recorded = self
            .ports
            .targets
            .record_target(
                alert,
                target,
                attempt,
                &outcome,
                report.as_ref(),
                self.now_ms(),
            )
            .await?;
        if !recorded {
            tracing::warn!(%alert, %target, attempt, "the claim was taken over; outcome not recorded");
        }
        if let Some((delay, why)) = retry {
            tracing::warn!(%alert, %target, attempt, ?delay, %why, "target failed; retrying");
            return Ok(JobOutcome::RetryAfter(delay, why));
        }
        if let Some(kind) = target.outlet_kind() {
            let ok = u64::from(outcome == Outcome::Sent);
            crate::metrics::sent_on(kind.code(), ok, 1 - ok, 0);
        }
        self.settle(alert).await?;
        Ok(JobOutcome::Done)
    }

    /// A dead-lettered broadcast job: its network is declared failed.
    pub(crate) async fn dead_broadcast(
        &self,
        job: BroadcastJob,
        why: &str,
    ) -> Result<(), crate::ports::StoreError> {
        self.dead_target(job.alert_id, &Target::Network(job.network), why)
            .await
    }

    /// A dead-lettered job of one target (a network or an outlet): its
    /// delivery is declared failed with the reason, and the alert settles.
    pub(crate) async fn dead_target(
        &self,
        alert: AlertId,
        target: &Target,
        why: &str,
    ) -> Result<(), crate::ports::StoreError> {
        let store = &self.ports.targets;
        let reason = format!(
            "not sent: its job failed {} times ({why})",
            self.config.max_receives
        );
        store
            .fail_target(alert, target, &reason, self.now_ms())
            .await?;
        tracing::error!(%alert, %target, %why, "target job dead-lettered; its delivery is marked failed");
        self.settle(alert).await
    }

    /// Every target delivery of an alert: its networks' and outlets'.
    pub(crate) async fn target_rows(
        &self,
        id: AlertId,
    ) -> Result<Vec<crate::ports::TargetRow>, crate::ports::StoreError> {
        self.ports.targets.targets(id).await
    }
}

impl NetworksApp<'_> {
    /// At creation: names the networks of a broadcast (every network with
    /// cells when the request named none) and refuses unknown ones.
    async fn name_networks(&self, networks: &mut Vec<String>) -> Result<(), AppError> {
        let known = self.ports().networks.networks().await?;
        let ready: Vec<String> = known
            .iter()
            .filter(|n| n.cells > 0)
            .map(|n| n.name.clone())
            .collect();
        if networks.is_empty() {
            if ready.is_empty() {
                return Err(ValidationErrors::single(
                    "broadcast",
                    "no mobile network has uploaded its cells yet, so nobody can be reached by broadcast; \
                     leave broadcast out, or have the networks upload their cells",
                )
                .into());
            }
            *networks = ready;
        } else {
            let mut errors = Vec::new();
            for (i, name) in networks.iter().enumerate() {
                let path = format!("broadcast.networks[{i}]");
                match known.iter().find(|n| &n.name == name) {
                    None => errors.push(bealert_core::FieldError {
                        path,
                        message: format!(
                            "unknown network {name:?}; known: {}",
                            if known.is_empty() {
                                "none yet (`bealert network create`)".to_string()
                            } else {
                                known
                                    .iter()
                                    .map(|n| n.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            }
                        ),
                    }),
                    Some(n) if n.cells == 0 => errors.push(bealert_core::FieldError {
                        path,
                        message: format!("network {name:?} has not uploaded its cells yet"),
                    }),
                    Some(_) => {}
                }
            }
            if !errors.is_empty() {
                return Err(ValidationErrors(errors).into());
            }
            networks.sort();
            networks.dedup();
        }
        Ok(())
    }

    /// [`App::plan_broadcast`] to the networks named.
    pub(crate) async fn plan_networks(
        &self,
        alert: &AlertRecord,
        networks: &[String],
    ) -> Result<(), JobError> {
        if networks.is_empty() {
            return Ok(());
        }
        let targets: Vec<Target> = networks
            .iter()
            .map(|n| Target::Network(n.clone()))
            .collect();
        self.app
            .ports
            .targets
            .plan_targets(alert.id, &targets, self.app.now_ms())
            .await?;
        let bodies: Vec<String> = networks
            .iter()
            .map(|n| {
                serde_json::to_string(&BroadcastJob {
                    alert_id: alert.id,
                    network: n.clone(),
                })
            })
            .collect::<Result<_, _>>()
            .map_err(JobError::from)?;
        for chunk in bodies.chunks(10) {
            self.app.ports.queue.send(BROADCAST_QUEUE, chunk).await?;
        }
        Ok(())
    }

    /// One network's part of one alert.
    pub(crate) async fn handle_broadcast(&self, job: BroadcastJob) -> Result<JobOutcome, JobError> {
        let config = self.config();
        let alert = self.app.job_alert(job.alert_id).await?;
        if alert.state.is_final() {
            return Ok(JobOutcome::Done);
        }
        let target = Target::Network(job.network.clone());
        // The lease outlasts a request to the network, with room to record.
        let lease = config.gateway_timeout * 2 + Duration::from_secs(5);
        let now = self.app.now_ms();
        let attempt = match self
            .app
            .ports
            .targets
            .claim_target(alert.id, &target, now, lease)
            .await?
        {
            Claim::Done | Claim::Unknown => return Ok(JobOutcome::Done),
            Claim::Busy { until } => {
                return Ok(JobOutcome::RetryAfter(
                    Duration::from_millis((until - now).max(10) as u64),
                    format!("{target} is being sent by another worker"),
                ));
            }
            Claim::Claimed { attempt, .. } => attempt,
        };

        let deadline = now + lease.as_millis() as i64 - 2_000;
        let (outcome, planned, overshoot_km2) = match alert.spec.references {
            Some(original) => (
                self.network_follow_up(&alert, original, &job.network, config)
                    .await,
                NetworkReport::default(),
                0.0,
            ),
            None => {
                self.network_broadcast(&alert, &job.network, config, deadline)
                    .await?
            }
        };
        // The network's report, with what bealert knows better; what was
        // asked of it kept when it fails for good.
        let outcome = outcome.map(|mut report| {
            report.overshoot_km2 = overshoot_km2;
            if planned.cells > 0 {
                report.cells = planned.cells;
            }
            report
        });
        self.app
            .finish_target(alert.id, &target, attempt, outcome, Some(planned))
            .await
    }

    /// The network's part of a new alert: the cells it has in the zone,
    /// the message, the network's answer; what was asked of it; the overshoot.
    async fn network_broadcast(
        &self,
        alert: &AlertRecord,
        network: &str,
        config: &super::networks::BroadcastConfig,
        not_after: i64,
    ) -> Result<(Result<NetworkReport, GatewayError>, NetworkReport, f64), JobError> {
        let ports = self.ports();
        let area = alert.spec.area.clone();
        let zone = Arc::new(
            tokio::task::spawn_blocking(move || EstimateZone::new(&area))
                .await
                .map_err(|e| JobError::Transient(format!("zone task failed: {e}")))?,
        );
        let selection = self
            .select_cells(&zone, Some(network))
            .await
            .map_err(JobError::from)?
            .into_iter()
            .next();
        let (cells, overshoot_km2) = match &selection {
            Some(s) => (
                s.figures
                    .selected
                    .iter()
                    .map(|&i| BroadcastCell {
                        cell_id: s.cells[i].cell_id.clone(),
                        active_devices: s.cells[i].active_devices,
                    })
                    .collect::<Vec<_>>(),
                s.figures.overshoot_km2,
            ),
            None => (Vec::new(), 0.0),
        };

        // What was asked of the network, kept even when it fails.
        let planned = NetworkReport {
            cells: cells.len() as u64,
            requested: cells.iter().map(|c| c.active_devices).sum(),
            overshoot_km2,
            ..NetworkReport::default()
        };
        let outcome = if cells.is_empty() {
            // No cell of this network meets the zone: nobody to reach.
            Ok(NetworkReport::default())
        } else {
            let message = broadcast_message(alert, network, cells, config, not_after);
            let gateway = ports.gateways.gateway(network);
            match tokio::time::timeout(config.gateway_timeout, gateway.broadcast(&message)).await {
                Ok(r) => r,
                // A timeout is not a refusal: the network may have sent it;
                // the retry carries the same key, which it never sends twice.
                Err(_) => Err(GatewayError::Retryable(format!(
                    "{} did not answer within {:?}",
                    network, config.gateway_timeout
                ))),
            }
        };
        Ok((outcome, planned, overshoot_km2))
    }

    /// A follow-up (update, cancel, all-clear) to the audience a network
    /// kept for the original: the network's follow-up method.
    async fn network_follow_up(
        &self,
        alert: &AlertRecord,
        original: AlertId,
        network: &str,
        config: &super::networks::BroadcastConfig,
    ) -> Result<NetworkReport, GatewayError> {
        let ports = self.ports();
        let target = Target::Network(network.to_string());
        let plain = broadcast_message(alert, network, Vec::new(), config, 0);
        let message = FollowUpMessage {
            key: plain.key,
            references: format!("{original}:{target}"),
            network: network.to_string(),
            texts: plain.texts,
            message_identifier: plain.message_identifier,
        };
        let gateway = ports.gateways.gateway(network);
        match tokio::time::timeout(config.gateway_timeout, gateway.follow_up(&message)).await {
            Ok(r) => r,
            Err(_) => Err(GatewayError::Retryable(format!(
                "{network} did not answer within {:?}",
                config.gateway_timeout
            ))),
        }
    }
}

/// The message one network gets: the texts as the SMS channel renders
/// them (exercise markers included), the EU-Alert identifiers.
fn broadcast_message(
    alert: &AlertRecord,
    network: &str,
    cells: Vec<BroadcastCell>,
    config: &super::networks::BroadcastConfig,
    not_after: i64,
) -> BroadcastMessage {
    let spec = &alert.spec;
    let texts: BTreeMap<_, _> = spec
        .messages
        .0
        .keys()
        .filter_map(|l| {
            render(spec, Channel::Sms, *l).map(|r| {
                (
                    *l,
                    bealert_core::message::signed(&r.text, spec.signature.as_deref()),
                )
            })
        })
        .collect();
    let id = |additional| {
        message_identifier(
            spec.status,
            spec.severity,
            spec.urgency,
            spec.certainty,
            additional,
        )
    };
    BroadcastMessage {
        key: format!("{}:{}", alert.id, Target::Network(network.to_string())),
        alert_id: alert.id,
        network: network.to_string(),
        mode: spec
            .broadcast
            .as_ref()
            .map(|b| b.mode)
            .unwrap_or(bealert_core::broadcast::BroadcastMode::Lbsms),
        cells,
        texts,
        message_identifier: id(false),
        additional_language_identifier: id(true),
        repetition_period_s: config.repetition_period_s,
        not_after,
    }
}
