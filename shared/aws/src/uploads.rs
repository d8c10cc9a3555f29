//! Presigned uploads to S3: a network's cell file too large for Lambda's
//! 6 MB payload goes straight to the bucket, then is loaded from there.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use bealert_app::ports::{PresignedUpload, StoreError, UploadStore};
use std::time::Duration;

pub struct S3Uploads {
    client: Client,
    bucket: String,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Transient(format!("S3: {e}"))
}

impl S3Uploads {
    /// Path-style addressing when an endpoint is overridden (LocalStack).
    pub fn new(sdk: &aws_config::SdkConfig, bucket: &str) -> Self {
        let local = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|u| !u.is_empty()));
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(local)
            .build();
        Self {
            client: Client::from_conf(config),
            bucket: bucket.to_string(),
        }
    }

    /// Creates the bucket if it is missing (LocalStack, development).
    pub async fn create_bucket(&self) -> Result<(), String> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(_) => self
                .client
                .create_bucket()
                .bucket(&self.bucket)
                // Outside us-east-1, a bucket names its region.
                .set_create_bucket_configuration(
                    self.client
                        .config()
                        .region()
                        .map(|r| r.as_ref())
                        .filter(|r| *r != "us-east-1")
                        .map(|r| {
                            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                                .location_constraint(r.into())
                                .build()
                        }),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "creating bucket {}: {}",
                        self.bucket,
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )
                }),
        }
    }
}

#[async_trait]
impl UploadStore for S3Uploads {
    async fn presign_put(&self, key: &str, valid: Duration) -> Result<PresignedUpload, StoreError> {
        let config = PresigningConfig::expires_in(valid).map_err(err)?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| err(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(PresignedUpload {
            url: req.uri().to_string(),
            expires_at: bealert_app::now_ms() + valid.as_millis() as i64,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => Ok(Some(
                o.body.collect().await.map_err(err)?.into_bytes().to_vec(),
            )),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(err(aws_sdk_s3::error::DisplayErrorContext(e))),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err(aws_sdk_s3::error::DisplayErrorContext(e)))
    }
}
