//! The AWS home: every port on AWS services, configured from the environment.
//!
//! | variable | default | |
//! | --- | --- | --- |
//! | `BEALERT_TABLE_PREFIX` | `bealert-` | tables are `<prefix>subscribers`, `alerts`, `deliveries`, `operators` |
//! | `BEALERT_SUBSCRIBERS_TABLE`, `_ALERTS_TABLE`, `_DELIVERIES_TABLE`, `_OPERATORS_TABLE`, `_REGISTRATIONS_TABLE`, `_NETWORKS_TABLE`, `_GEOGRAPHY_TABLE` | from the prefix | explicit names (the Lambda functions set these) |
//! | `BEALERT_QUEUE_PREFIX` | `bealert-` | queues are `<prefix>resolve`, `send-sms`, `send-voice`, `send-email`, each with a `-dlq` |
//! | `BEALERT_RESOLVE_QUEUE_URL`, `_SMS_QUEUE_URL`, `_SMS_CANCEL_QUEUE_URL`, `_SMS_ROUTINE_QUEUE_URL` (and so for voice and e-mail) | looked up by name | explicit URLs |
//! | `BEALERT_SMS_SENDER_ID` | none | alphanumeric sender id of SMS |
//! | `BEALERT_EMAIL_FROM` | none | verified SES sender; without it e-mail deliveries fail, saying so |
//! | `BEALERT_VOICE_ORIGINATION` | none | phone number or pool that calls; without it voice deliveries fail, saying so |
//! | `BEALERT_EMAIL_CONFIGURATION_SET`, `BEALERT_VOICE_CONFIGURATION_SET` | none | the SES / End User Messaging configuration set whose event destination brings delivery receipts back (the template's) |
//! | `BEALERT_RECEIPT_TOKENS` | none | `NAME=TOKEN,...`: the token each aggregator's receipts webhook presents (or `BEALERT_RECEIPT_TOKEN_<NAME>`) |
//! | `BEALERT_UPLOADS_BUCKET` | none | S3 bucket of presigned uploads (networks' cell files over 6 MB); without it `cells:upload` says to PUT the file directly |
//! | `BEALERT_NETWORK_GATEWAYS` | none | each network's alerting API, `NAME=URL,...` (Lambda functions; `serve` has `--network-gateway` and simulates the rest) |
//! | `BEALERT_CODES_EMAIL_FROM`, `BEALERT_CODES_EMAIL_CONFIGURATION_SET` | none | the signup's own SES sender and configuration set: codes and self-service links, never the alerts' identity |
//! | `BEALERT_CODES_SMS_ORIGINATION`, `BEALERT_CODES_CONFIGURATION_SET`, `BEALERT_CODES_SMS_MAX_PRICE` | none | codes by SMS through End User Messaging SMS from this pool (or sender id, number) under this configuration set, at most this price a part; without an origination, through SNS with `BEALERT_CODES_SMS_SENDER_ID` (the alerts' account: see the security page) |
//! | `BEALERT_CODES_VOICE_ORIGINATION` | none | the number or pool that calls a fixed line with its code (same configuration set); without it a landline gets no code, saying so |
//! | `BEALERT_CODES_REGION` | the functions' | the region codes are sent from: its own spend limits, SES quota and reputation |
//! | `BEALERT_SIGNUP_CODES_PER_HOUR`, `BEALERT_SIGNUP_NO_SCRIPT_PER_HOUR` | 2000, 200 | the signup's hourly budgets of codes (every channel) and of phone signups without the page's script |

#[cfg(feature = "email")]
use crate::gateways::SesEmail;
use crate::gateways::{LoggedGateway, SnsSms, VoiceCalls};
use crate::{DynamoStore, SqsQueue, Tables};
use async_trait::async_trait;
use aws_config::SdkConfig;
use bealert_app::jobs::{BROADCAST_QUEUE, RESOLVE_QUEUE, all_queues};
use bealert_app::ports::{Gateway, GatewayError, Gateways, OutboundMessage, Ports, Sent};
use bealert_core::Channel;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// What the AWS home needs to know, from `BEALERT_*` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub tables: Tables,
    pub queue_prefix: String,
    pub queue_urls: HashMap<String, String>,
    pub sms_sender_id: Option<String>,
    pub email_from: Option<String>,
    pub voice_origination: Option<String>,
    /// The SES configuration set (and the End User Messaging one) whose
    /// event destination brings delivery receipts back (the template's).
    pub email_configuration_set: Option<String>,
    pub voice_configuration_set: Option<String>,
    /// Days deliveries (recipients' contact data) are kept: their DynamoDB
    /// TTL (`BEALERT_RETENTION_DAYS`, default 90).
    pub retention_days: u32,
    /// The Amazon Location place index of the signup's geocoder.
    pub place_index: Option<String>,
    /// The signup's key (`BEALERT_SIGNUP_SECRET`, at least 32 characters;
    /// the template generates one in Secrets Manager).
    pub signup_secret: Option<String>,
    /// Where citizens reach the signup page (`BEALERT_PUBLIC_URL`).
    pub public_url: Option<String>,
    /// The S3 bucket of presigned uploads (networks' cell files over 6 MB).
    pub uploads_bucket: Option<String>,
    /// Drills as EventBridge schedules: the drill function's ARN
    /// (`BEALERT_DRILL_FUNCTION_ARN`), the role that invokes it
    /// (`BEALERT_SCHEDULER_ROLE_ARN`) and the schedule group
    /// (`BEALERT_SCHEDULE_GROUP`, default `default`). Without them, the
    /// process runs drills itself.
    pub drill_function_arn: Option<String>,
    pub scheduler_role_arn: Option<String>,
    pub schedule_group: String,
    /// The signup's own sending identity (`BEALERT_CODES_*`).
    pub codes: CodeSending,
    /// `BEALERT_SIGNUP_CODES_PER_HOUR`, `BEALERT_SIGNUP_NO_SCRIPT_PER_HOUR`.
    pub signup_codes_per_hour: Option<u64>,
    pub signup_no_script_per_hour: Option<u64>,
}

/// How the signup sends codes and self-service links: an identity and a
/// configuration apart from the alerts', so that signup traffic cannot
/// spend the alerts' budget or get their sender suspended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodeSending {
    /// Another region than the functions' (its own SMS spend limit, SES
    /// quota and reputation).
    pub region: Option<String>,
    /// End User Messaging SMS pool, sender id or number of code SMS.
    pub sms_origination: Option<String>,
    /// Without an origination: the SNS sender id of code SMS.
    pub sms_sender_id: Option<String>,
    /// Highest price per SMS part (US dollars) a code is sent at.
    pub sms_max_price: Option<String>,
    /// The number or pool that calls fixed lines with their code.
    pub voice_origination: Option<String>,
    /// The End User Messaging configuration set of code SMS and calls.
    pub configuration_set: Option<String>,
    pub email_from: Option<String>,
    pub email_configuration_set: Option<String>,
}

/// The queue URL variable of each bealert queue.
pub const QUEUE_URL_VARS: [(&str, &str); 14] = [
    (RESOLVE_QUEUE, "BEALERT_RESOLVE_QUEUE_URL"),
    ("send-sms", "BEALERT_SMS_QUEUE_URL"),
    ("send-sms-cancel", "BEALERT_SMS_CANCEL_QUEUE_URL"),
    ("send-sms-routine", "BEALERT_SMS_ROUTINE_QUEUE_URL"),
    ("send-voice", "BEALERT_VOICE_QUEUE_URL"),
    ("send-voice-cancel", "BEALERT_VOICE_CANCEL_QUEUE_URL"),
    ("send-voice-routine", "BEALERT_VOICE_ROUTINE_QUEUE_URL"),
    ("send-email", "BEALERT_EMAIL_QUEUE_URL"),
    ("send-email-cancel", "BEALERT_EMAIL_CANCEL_QUEUE_URL"),
    ("send-email-routine", "BEALERT_EMAIL_ROUTINE_QUEUE_URL"),
    (BROADCAST_QUEUE, "BEALERT_BROADCAST_QUEUE_URL"),
    ("public-social", "BEALERT_PUBLIC_SOCIAL_QUEUE_URL"),
    ("public-siren", "BEALERT_PUBLIC_SIREN_QUEUE_URL"),
    ("public-sign", "BEALERT_PUBLIC_SIGN_QUEUE_URL"),
];

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Settings {
    pub fn from_env() -> Self {
        let table_prefix = var("BEALERT_TABLE_PREFIX").unwrap_or_else(|| "bealert-".into());
        let defaults = Tables::with_prefix(&table_prefix);
        let tables = Tables {
            subscribers: var("BEALERT_SUBSCRIBERS_TABLE").unwrap_or(defaults.subscribers),
            alerts: var("BEALERT_ALERTS_TABLE").unwrap_or(defaults.alerts),
            deliveries: var("BEALERT_DELIVERIES_TABLE").unwrap_or(defaults.deliveries),
            operators: var("BEALERT_OPERATORS_TABLE").unwrap_or(defaults.operators),
            registrations: var("BEALERT_REGISTRATIONS_TABLE").unwrap_or(defaults.registrations),
            networks: var("BEALERT_NETWORKS_TABLE").unwrap_or(defaults.networks),
            geography: var("BEALERT_GEOGRAPHY_TABLE").unwrap_or(defaults.geography),
        };
        let queue_urls = QUEUE_URL_VARS
            .iter()
            .filter_map(|(q, v)| var(v).map(|url| (q.to_string(), url)))
            .collect();
        Self {
            tables,
            queue_prefix: var("BEALERT_QUEUE_PREFIX").unwrap_or_else(|| "bealert-".into()),
            queue_urls,
            sms_sender_id: var("BEALERT_SMS_SENDER_ID"),
            email_from: var("BEALERT_EMAIL_FROM"),
            voice_origination: var("BEALERT_VOICE_ORIGINATION"),
            email_configuration_set: var("BEALERT_EMAIL_CONFIGURATION_SET"),
            voice_configuration_set: var("BEALERT_VOICE_CONFIGURATION_SET"),
            retention_days: var("BEALERT_RETENTION_DAYS")
                .and_then(|d| d.parse().ok())
                .unwrap_or(90),
            place_index: var("BEALERT_PLACE_INDEX"),
            signup_secret: var("BEALERT_SIGNUP_SECRET"),
            public_url: var("BEALERT_PUBLIC_URL"),
            uploads_bucket: var("BEALERT_UPLOADS_BUCKET"),
            drill_function_arn: var("BEALERT_DRILL_FUNCTION_ARN"),
            scheduler_role_arn: var("BEALERT_SCHEDULER_ROLE_ARN"),
            schedule_group: var("BEALERT_SCHEDULE_GROUP").unwrap_or_else(|| "default".into()),
            codes: CodeSending {
                region: var("BEALERT_CODES_REGION"),
                sms_origination: var("BEALERT_CODES_SMS_ORIGINATION"),
                sms_sender_id: var("BEALERT_CODES_SMS_SENDER_ID"),
                sms_max_price: var("BEALERT_CODES_SMS_MAX_PRICE"),
                voice_origination: var("BEALERT_CODES_VOICE_ORIGINATION"),
                configuration_set: var("BEALERT_CODES_CONFIGURATION_SET"),
                email_from: var("BEALERT_CODES_EMAIL_FROM"),
                email_configuration_set: var("BEALERT_CODES_EMAIL_CONFIGURATION_SET"),
            },
            signup_codes_per_hour: var("BEALERT_SIGNUP_CODES_PER_HOUR")
                .and_then(|v| v.parse().ok()),
            signup_no_script_per_hour: var("BEALERT_SIGNUP_NO_SCRIPT_PER_HOUR")
                .and_then(|v| v.parse().ok()),
        }
    }

    /// Fails naming every variable of `names` that is not set: a Lambda
    /// function checks its configuration before it serves anything.
    pub fn require(names: &[&str]) -> Result<(), ConfigError> {
        let missing: Vec<&str> = names.iter().copied().filter(|n| var(n).is_none()).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(format!(
                "set {} (see infra/template.yaml)",
                missing.join(", ")
            )))
        }
    }
}

/// A network without a configured gateway: every broadcast fails, saying how to configure one.
#[cfg(feature = "http")]
struct UnconfiguredNetwork;

#[cfg(feature = "http")]
#[async_trait]
impl bealert_app::ports::NetworkGateway for UnconfiguredNetwork {
    async fn broadcast(
        &self,
        m: &bealert_app::ports::BroadcastMessage,
    ) -> Result<bealert_core::broadcast::NetworkReport, GatewayError> {
        Err(GatewayError::Permanent(format!(
            "no gateway is configured for network {:?}: add {}=URL to BEALERT_NETWORK_GATEWAYS",
            m.network, m.network
        )))
    }

    async fn follow_up(
        &self,
        m: &bealert_app::ports::FollowUpMessage,
    ) -> Result<bealert_core::broadcast::NetworkReport, GatewayError> {
        Err(GatewayError::Permanent(format!(
            "no gateway is configured for network {:?}: add {}=URL to BEALERT_NETWORK_GATEWAYS",
            m.network, m.network
        )))
    }
}

#[cfg(feature = "http")]
impl bealert_app::ports::NetworkGateways for UnconfiguredNetwork {
    fn gateway(&self, _network: &str) -> Arc<dyn bealert_app::ports::NetworkGateway> {
        Arc::new(UnconfiguredNetwork)
    }
}

/// Alert-SMS's settings from `BEALERT_DEVICES_PER_PERSON`,
/// `BEALERT_CELLS_STALE_AFTER_HOURS`, `BEALERT_NETWORK_TIMEOUT_SECS`.
pub fn broadcast_config_from_env() -> bealert_app::usecases::networks::BroadcastConfig {
    let mut c = bealert_app::usecases::networks::BroadcastConfig::default();
    if let Some(d) = var("BEALERT_DEVICES_PER_PERSON")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0)
    {
        c.devices_per_person = d;
    }
    if let Some(h) = var("BEALERT_CELLS_STALE_AFTER_HOURS").and_then(|v| v.parse::<u64>().ok()) {
        c.stale_after = Duration::from_secs(h * 3600);
    }
    if let Some(t) = var("BEALERT_NETWORK_TIMEOUT_SECS").and_then(|v| v.parse::<u64>().ok()) {
        c.gateway_timeout = Duration::from_secs(t.max(1));
    }
    c
}

/// A gateway whose service is not configured: every send fails, saying why.
struct Unconfigured {
    what: &'static str,
    variable: &'static str,
}

#[async_trait]
impl Gateway for Unconfigured {
    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>> {
        let e = GatewayError::Permanent(format!(
            "{} is not configured: set {}",
            self.what, self.variable
        ));
        vec![Err(e); messages.len()]
    }
}

/// An adapter this build leaves out (its feature is off, so its client is
/// not linked): every call fails for good, saying which feature brings it.
#[cfg(any(not(feature = "http"), not(feature = "email")))]
struct NotInThisBuild(&'static str);

#[cfg(not(feature = "email"))]
#[async_trait]
impl Gateway for NotInThisBuild {
    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>> {
        vec![Err(GatewayError::Permanent(self.0.into())); messages.len()]
    }
}

#[cfg(not(feature = "http"))]
#[async_trait]
impl bealert_app::ports::NetworkGateway for NotInThisBuild {
    async fn broadcast(
        &self,
        _: &bealert_app::ports::BroadcastMessage,
    ) -> Result<bealert_core::broadcast::NetworkReport, GatewayError> {
        Err(GatewayError::Permanent(self.0.into()))
    }

    async fn follow_up(
        &self,
        _: &bealert_app::ports::FollowUpMessage,
    ) -> Result<bealert_core::broadcast::NetworkReport, GatewayError> {
        Err(GatewayError::Permanent(self.0.into()))
    }
}

#[cfg(not(feature = "http"))]
impl bealert_app::ports::NetworkGateways for NotInThisBuild {
    fn gateway(&self, _network: &str) -> Arc<dyn bealert_app::ports::NetworkGateway> {
        Arc::new(NotInThisBuild(self.0))
    }
}

#[cfg(not(feature = "http"))]
#[async_trait]
impl bealert_app::ports::PublicGateway for NotInThisBuild {
    async fn publish(
        &self,
        _: &bealert_app::ports::PublicMessage,
    ) -> Result<bealert_core::broadcast::NetworkReport, GatewayError> {
        Err(GatewayError::Permanent(self.0.into()))
    }
}

pub struct AwsHome {
    pub store: Arc<DynamoStore>,
    pub queue: Arc<SqsQueue>,
    pub settings: Settings,
    sdk: SdkConfig,
    dynamodb: aws_sdk_dynamodb::Client,
}

impl AwsHome {
    /// EventBridge Scheduler for drills, when the drill function and its
    /// role are configured.
    pub fn drill_scheduler(&self) -> Option<Arc<crate::drills::EventBridgeDrills>> {
        match (
            &self.settings.drill_function_arn,
            &self.settings.scheduler_role_arn,
        ) {
            (Some(f), Some(r)) => Some(Arc::new(crate::drills::EventBridgeDrills::new(
                &self.sdk,
                f.clone(),
                r.clone(),
                self.settings.schedule_group.clone(),
            ))),
            _ => None,
        }
    }

    /// Clients from the SDK configuration (region, credentials, endpoints).
    pub fn new(sdk: &SdkConfig, settings: Settings) -> Self {
        Self::with_dynamodb(sdk, aws_sdk_dynamodb::Client::new(sdk), settings)
    }

    /// As [`AwsHome::new`], with DynamoDB through its own client (DynamoDB
    /// Local beside LocalStack in tests).
    pub fn with_dynamodb(
        sdk: &SdkConfig,
        dynamodb: aws_sdk_dynamodb::Client,
        settings: Settings,
    ) -> Self {
        let store = Arc::new(
            DynamoStore::new(dynamodb.clone(), settings.tables.clone()).with_retention(
                Duration::from_secs(u64::from(settings.retention_days) * 86_400),
            ),
        );
        let queue = Arc::new(SqsQueue::with_urls(
            aws_sdk_sqs::Client::new(sdk),
            &settings.queue_prefix,
            settings.queue_urls.clone(),
        ));
        Self {
            store,
            queue,
            settings,
            sdk: sdk.clone(),
            dynamodb,
        }
    }

    /// The home's own provider of a kind: `sns` (SMS), `ses` (e-mail) or
    /// `voice` (voice calls), for a channel it serves.
    pub fn own_provider(&self, channel: Channel, kind: &str) -> Result<Arc<dyn Gateway>, String> {
        match (channel, kind) {
            (Channel::Sms, "sns") => Ok(self.sms()),
            (Channel::Email, "ses") => Ok(self.email()),
            (Channel::Voice, "voice") => Ok(self.voice()),
            (c, k) => Err(format!(
                "{k}: not a {c} provider of the AWS home (sns for SMS, ses for e-mail, voice for voice; http:NAME=URL for an aggregator)"
            )),
        }
    }

    /// A channel's providers in order, from `BEALERT_SMS_PROVIDERS`,
    /// `BEALERT_VOICE_PROVIDERS`, `BEALERT_EMAIL_PROVIDERS` (default: the
    /// home's own), with faults from `BEALERT_PROVIDER_FAULTS` in builds
    /// with the `faults` feature ([`injected_faults`]). A list that
    /// cannot be read leaves the channel refusing, with the reason.
    pub fn chain(&self, channel: Channel) -> Arc<dyn Gateway> {
        let var = format!("BEALERT_{}_PROVIDERS", channel.code().to_uppercase());
        let default = match channel {
            Channel::Sms => "sns",
            Channel::Email => "ses",
            Channel::Voice => "voice",
        };
        let list = std::env::var(&var).ok().filter(|l| !l.trim().is_empty());
        let built = injected_faults().and_then(|faults| {
            bealert_providers::chain::build_chain(
                channel,
                list.as_deref().unwrap_or(default),
                &faults,
                &|kind, _| self.own_provider(channel, kind),
            )
        });
        match built {
            Ok(chain) => Arc::new(chain),
            Err(e) => {
                tracing::error!(variable = %var, error = %e, "the channel's providers cannot be built");
                Arc::new(Misconfigured(format!("{var}: {e}")))
            }
        }
    }

    /// SMS through SNS.
    pub fn sms(&self) -> Arc<dyn Gateway> {
        Arc::new(LoggedGateway::new(
            SnsSms {
                client: aws_sdk_sns::Client::new(&self.sdk),
                sender_id: self.settings.sms_sender_id.clone(),
            },
            self.store.clone(),
        ))
    }

    /// E-mail through SES, if a sender is configured.
    #[cfg(feature = "email")]
    pub fn email(&self) -> Arc<dyn Gateway> {
        match &self.settings.email_from {
            Some(from) => Arc::new(LoggedGateway::new(
                SesEmail {
                    client: aws_sdk_ses::Client::new(&self.sdk),
                    from: from.clone(),
                    configuration_set: self.settings.email_configuration_set.clone(),
                },
                self.store.clone(),
            )),
            None => Arc::new(Unconfigured {
                what: "e-mail",
                variable: "BEALERT_EMAIL_FROM",
            }),
        }
    }

    /// E-mail through SES: not in a build without the `email` feature
    /// (a function that sends no e-mail leaves lettre out).
    #[cfg(not(feature = "email"))]
    pub fn email(&self) -> Arc<dyn Gateway> {
        Arc::new(NotInThisBuild(
            "e-mail through SES is not in this build (bealert-aws's email feature)",
        ))
    }

    /// Voice calls, if an origination identity is configured.
    pub fn voice(&self) -> Arc<dyn Gateway> {
        match &self.settings.voice_origination {
            Some(origination) => Arc::new(LoggedGateway::new(
                VoiceCalls {
                    client: aws_sdk_pinpointsmsvoicev2::Client::new(&self.sdk),
                    origination: origination.clone(),
                    configuration_set: self.settings.voice_configuration_set.clone(),
                },
                self.store.clone(),
            )),
            None => Arc::new(Unconfigured {
                what: "voice",
                variable: "BEALERT_VOICE_ORIGINATION",
            }),
        }
    }

    /// The signup's own gateways for codes and self-service links
    /// ([`CodeSending`]): End User Messaging SMS from its own pool (SNS
    /// with its own sender id without one), calls from its own number,
    /// SES from its own sender, each under the signup's configuration set,
    /// in `BEALERT_CODES_REGION` if given. Never the alerts' chains.
    pub fn code_gateways(&self) -> Gateways {
        let codes = &self.settings.codes;
        let sdk = match &codes.region {
            Some(region) => self
                .sdk
                .to_builder()
                .region(aws_config::Region::new(region.clone()))
                .build(),
            None => self.sdk.clone(),
        };
        let sms: Arc<dyn Gateway> = match &codes.sms_origination {
            Some(origination) => Arc::new(LoggedGateway::new(
                crate::gateways::EumSms {
                    client: aws_sdk_pinpointsmsvoicev2::Client::new(&sdk),
                    origination: origination.clone(),
                    configuration_set: codes.configuration_set.clone(),
                    max_price: codes.sms_max_price.clone(),
                },
                self.store.clone(),
            )),
            None => Arc::new(LoggedGateway::new(
                SnsSms {
                    client: aws_sdk_sns::Client::new(&sdk),
                    sender_id: codes.sms_sender_id.clone(),
                },
                self.store.clone(),
            )),
        };
        let voice: Arc<dyn Gateway> = match &codes.voice_origination {
            Some(origination) => Arc::new(LoggedGateway::new(
                VoiceCalls {
                    client: aws_sdk_pinpointsmsvoicev2::Client::new(&sdk),
                    origination: origination.clone(),
                    configuration_set: codes.configuration_set.clone(),
                },
                self.store.clone(),
            )),
            None => Arc::new(Unconfigured {
                what: "codes by call (fixed lines)",
                variable: "BEALERT_CODES_VOICE_ORIGINATION",
            }),
        };
        Gateways {
            sms,
            voice,
            email: self.code_email(&sdk),
        }
    }

    #[cfg(feature = "email")]
    fn code_email(&self, sdk: &SdkConfig) -> Arc<dyn Gateway> {
        let codes = &self.settings.codes;
        match &codes.email_from {
            Some(from) => Arc::new(LoggedGateway::new(
                SesEmail {
                    client: aws_sdk_ses::Client::new(sdk),
                    from: from.clone(),
                    configuration_set: codes.email_configuration_set.clone(),
                },
                self.store.clone(),
            )),
            None => Arc::new(Unconfigured {
                what: "codes by e-mail",
                variable: "BEALERT_CODES_EMAIL_FROM",
            }),
        }
    }

    #[cfg(not(feature = "email"))]
    fn code_email(&self, _sdk: &SdkConfig) -> Arc<dyn Gateway> {
        Arc::new(NotInThisBuild(
            "e-mail through SES is not in this build (bealert-aws's email feature)",
        ))
    }

    /// The signup's ports and rules: registrations and counters in
    /// DynamoDB, Amazon Location for addresses, the signup's own gateways.
    pub fn signup(
        &self,
    ) -> Result<
        (
            bealert_app::ports::SignupPorts,
            bealert_app::usecases::signup::SignupConfig,
        ),
        ConfigError,
    > {
        let secret = self
            .settings
            .signup_secret
            .clone()
            .filter(|s| s.len() >= 32)
            .ok_or_else(|| {
                ConfigError("set BEALERT_SIGNUP_SECRET to at least 32 characters".into())
            })?;
        let index = self.settings.place_index.clone().ok_or_else(|| {
            ConfigError("set BEALERT_PLACE_INDEX (an Amazon Location place index)".into())
        })?;
        let mut config =
            bealert_app::usecases::signup::SignupConfig::with_secret(secret.into_bytes());
        if let Some(url) = &self.settings.public_url {
            config.public_url = url.trim_end_matches('/').to_string();
        }
        if let Some(n) = self.settings.signup_codes_per_hour {
            config.codes_per_hour = n;
        }
        if let Some(n) = self.settings.signup_no_script_per_hour {
            config.no_script_per_hour = n;
        }
        let ports = bealert_app::ports::SignupPorts {
            registrations: self.store.clone(),
            counters: self.store.clone(),
            geocoder: Arc::new(crate::location::LocationGeocoder {
                client: aws_sdk_location::Client::new(&self.sdk),
                index,
            }),
            gateways: self.code_gateways(),
        };
        Ok((ports, config))
    }

    /// Alert-SMS on DynamoDB, with these network gateways.
    pub fn broadcast_ports(
        &self,
        gateways: Arc<dyn bealert_app::ports::NetworkGateways>,
    ) -> bealert_app::ports::BroadcastPorts {
        bealert_app::ports::BroadcastPorts {
            networks: self.store.clone(),
            gateways,
            uploads: self.settings.uploads_bucket.as_ref().map(|bucket| {
                Arc::new(crate::uploads::S3Uploads::new(&self.sdk, bucket))
                    as Arc<dyn bealert_app::ports::UploadStore>
            }),
        }
    }

    /// Public channels: every outlet over HTTP (`sim` ones through
    /// `sim`, where given); each outlet's rate limit counted in DynamoDB.
    /// Without the `http` feature (a function that publishes nothing), the
    /// outlets' gateway refuses, saying so.
    pub fn public_ports(
        &self,
        timeout: Duration,
        sim: Option<bealert_providers::publicsim::PublicSimulator>,
    ) -> bealert_app::ports::PublicPorts {
        #[cfg(feature = "http")]
        let gateway = Arc::new(bealert_providers::public_http::HttpPublic::new(
            timeout, sim,
        ));
        #[cfg(not(feature = "http"))]
        let gateway = {
            let _ = (timeout, sim);
            Arc::new(NotInThisBuild(
                "outlets over HTTP are not in this build (bealert-aws's http feature)",
            ))
        };
        bealert_app::ports::PublicPorts {
            gateway,
            counters: self.store.clone(),
        }
    }

    /// Each network's HTTP gateway from `BEALERT_NETWORK_GATEWAYS`
    /// (`proximus=https://…,orange=https://…`; tokens from
    /// `BEALERT_NETWORK_TOKEN_<NAME>`); a network without one fails its
    /// broadcasts, saying so.
    #[cfg(feature = "http")]
    pub fn network_gateways_from_env(
        timeout: Duration,
    ) -> Result<Arc<dyn bealert_app::ports::NetworkGateways>, ConfigError> {
        let mut http = HashMap::new();
        for spec in var("BEALERT_NETWORK_GATEWAYS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (name, gw) = bealert_providers::network_http::parse_gateway(spec, timeout)
                .map_err(|e| ConfigError(format!("BEALERT_NETWORK_GATEWAYS: {e}")))?;
            http.insert(
                name,
                Arc::new(gw) as Arc<dyn bealert_app::ports::NetworkGateway>,
            );
        }
        Ok(Arc::new(bealert_providers::network_http::GatewayRoutes {
            http,
            fallback: Arc::new(UnconfiguredNetwork),
        }))
    }

    /// Networks' gateways in a build without the `http` feature (a
    /// function that broadcasts nothing): every broadcast fails, saying so.
    #[cfg(not(feature = "http"))]
    pub fn network_gateways_from_env(
        _timeout: Duration,
    ) -> Result<Arc<dyn bealert_app::ports::NetworkGateways>, ConfigError> {
        Ok(Arc::new(NotInThisBuild(
            "networks' HTTP gateways are not in this build (bealert-aws's http feature)",
        )))
    }

    /// Gateways for a function that sends on no channel: every send fails.
    /// A function links only the SDK clients of the gateways it builds.
    pub fn no_gateways() -> Gateways {
        let none = |what| -> Arc<dyn Gateway> {
            Arc::new(Unconfigured {
                what,
                variable: "the channel's sender function",
            })
        };
        Gateways {
            sms: none("SMS"),
            voice: none("voice"),
            email: none("e-mail"),
        }
    }

    /// One channel's gateway; the others refuse.
    pub fn only(channel: Channel, gateway: Arc<dyn Gateway>) -> Gateways {
        let mut g = Self::no_gateways();
        match channel {
            Channel::Sms => g.sms = gateway,
            Channel::Voice => g.voice = gateway,
            Channel::Email => g.email = gateway,
        }
        g
    }

    /// Every channel's providers (the local runner).
    pub fn gateways(&self) -> Gateways {
        Gateways {
            sms: self.chain(Channel::Sms),
            voice: self.chain(Channel::Voice),
            email: self.chain(Channel::Email),
        }
    }

    pub fn ports(&self) -> Ports {
        self.ports_with(self.gateways())
    }

    pub fn ports_with(&self, gateways: Gateways) -> Ports {
        Ports {
            subscribers: self.store.clone(),
            alerts: self.store.clone(),
            deliveries: self.store.clone(),
            operators: self.store.clone(),
            geography: self.store.clone(),
            documents: self.store.clone(),
            idempotency: self.store.clone(),
            queue: self.queue.clone(),
            gateways,
            targets: self.store.clone(),
        }
    }

    /// Creates the tables and queues that do not exist and verifies the
    /// e-mail sender: for LocalStack and development (SAM does it in AWS).
    pub async fn setup(&self) -> Result<(), String> {
        crate::dynamo::schema::create_tables(&self.dynamodb, &self.settings.tables).await?;
        for q in all_queues() {
            self.queue
                .create(q, 5, Duration::from_secs(180))
                .await
                .map_err(|e| e.to_string())?;
        }
        if let Some(bucket) = &self.settings.uploads_bucket {
            crate::uploads::S3Uploads::new(&self.sdk, bucket)
                .create_bucket()
                .await?;
        }
        if let Some(from) = &self.settings.email_from {
            aws_sdk_ses::Client::new(&self.sdk)
                .verify_email_identity()
                .email_address(from)
                .send()
                .await
                .map_err(|e| format!("verifying {from} with SES: {}", crate::dynamo::sdk_err(e)))?;
        }
        Ok(())
    }
}

/// A channel whose providers could not be built: every send is refused
/// with the reason (and retried, so a fixed configuration still sends).
struct Misconfigured(String);

#[async_trait]
impl Gateway for Misconfigured {
    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>> {
        vec![Err(GatewayError::Refused(self.0.clone())); messages.len()]
    }
}

/// Faults to inject into providers, from `BEALERT_PROVIDER_FAULTS`: only in
/// builds with the `faults` feature (tests, `bealert serve --backend aws`).
#[cfg(feature = "faults")]
fn injected_faults()
-> Result<std::collections::HashMap<String, bealert_app::providers::Faults>, String> {
    bealert_app::providers::parse_faults(
        &std::env::var("BEALERT_PROVIDER_FAULTS").unwrap_or_default(),
    )
}

/// A deployed home injects no faults: the variable is ignored, and said so.
#[cfg(not(feature = "faults"))]
fn injected_faults()
-> Result<std::collections::HashMap<String, bealert_app::providers::Faults>, String> {
    if std::env::var("BEALERT_PROVIDER_FAULTS").is_ok_and(|v| !v.trim().is_empty()) {
        tracing::warn!(
            "BEALERT_PROVIDER_FAULTS is ignored: this build injects no faults (feature `faults`)"
        );
    }
    Ok(std::collections::HashMap::new())
}
