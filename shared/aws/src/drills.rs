//! Drills in the AWS home: each drill is an EventBridge Scheduler
//! schedule (`drill-<id>`, time zone Europe/Brussels) that invokes the
//! drill function with `{"drill_id": ..., "scheduled_time": ...}`.

use async_trait::async_trait;
use aws_sdk_scheduler::error::ProvideErrorMetadata;
use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, Target};
use bealert_app::ports::{DrillScheduler, StoreError};

pub struct EventBridgeDrills {
    client: aws_sdk_scheduler::Client,
    /// The drill function.
    target_arn: String,
    /// The role EventBridge Scheduler takes to invoke it.
    role_arn: String,
    group: String,
}

/// A schedule's name for a drill (at most 64 characters).
pub fn schedule_name(drill_id: &str) -> String {
    format!("drill-{drill_id}")
}

impl EventBridgeDrills {
    pub fn new(
        sdk: &aws_config::SdkConfig,
        target_arn: String,
        role_arn: String,
        group: String,
    ) -> Self {
        Self {
            client: aws_sdk_scheduler::Client::new(sdk),
            target_arn,
            role_arn,
            group,
        }
    }

    pub fn client(&self) -> &aws_sdk_scheduler::Client {
        &self.client
    }

    fn target(&self, drill_id: &str) -> Result<Target, StoreError> {
        // EventBridge Scheduler puts each run's time in the input.
        let input = serde_json::json!({
            "drill_id": drill_id,
            "scheduled_time": "<aws.scheduler.scheduled-time>",
        });
        Target::builder()
            .arn(&self.target_arn)
            .role_arn(&self.role_arn)
            .input(input.to_string())
            .build()
            .map_err(|e| StoreError::Permanent(e.to_string()))
    }
}

fn err<E: std::fmt::Debug + ProvideErrorMetadata>(
    e: aws_sdk_scheduler::error::SdkError<E>,
) -> StoreError {
    let code = e.code().unwrap_or("").to_string();
    let message = e.message().unwrap_or("").to_string();
    if code.contains("Throttling") || code.contains("InternalServer") {
        StoreError::Transient(format!("{code}: {message}"))
    } else {
        StoreError::Permanent(format!("EventBridge Scheduler: {code} {message} {e:?}"))
    }
}

#[async_trait]
impl DrillScheduler for EventBridgeDrills {
    async fn schedule(&self, drill_id: &str, expression: &str) -> Result<(), StoreError> {
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| StoreError::Permanent(e.to_string()))?;
        let created = self
            .client
            .create_schedule()
            .name(schedule_name(drill_id))
            .group_name(&self.group)
            .schedule_expression(expression)
            .schedule_expression_timezone("Europe/Brussels")
            .flexible_time_window(window.clone())
            .target(self.target(drill_id)?)
            .description("bealert drill: an Exercise alert from its template")
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConflictException") => self
                .client
                .update_schedule()
                .name(schedule_name(drill_id))
                .group_name(&self.group)
                .schedule_expression(expression)
                .schedule_expression_timezone("Europe/Brussels")
                .flexible_time_window(window)
                .target(self.target(drill_id)?)
                .send()
                .await
                .map(|_| ())
                .map_err(err),
            Err(e) => Err(err(e)),
        }
    }

    async fn unschedule(&self, drill_id: &str) -> Result<(), StoreError> {
        match self
            .client
            .delete_schedule()
            .name(schedule_name(drill_id))
            .group_name(&self.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(err(e)),
        }
    }
}
