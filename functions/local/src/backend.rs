//! Which home a command runs on (`--backend`), and the stores it opens there.

use anyhow::Context;
use clap::ValueEnum;
use std::path::PathBuf;
use std::sync::Arc;

use crate::local;
use crate::unit_loading::shipped_units;

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum Backend {
    /// SQLite files and outbox gateways in the data directory.
    Embedded,
    /// DynamoDB, SQS, SNS and SES (real AWS or LocalStack).
    Aws,
}

/// The operator and geography stores alone: safe beside a running server.
/// A new embedded data directory gets the shipped units first.
pub async fn operator_stores(
    backend: Backend,
    data_dir: &std::path::Path,
) -> anyhow::Result<(
    Arc<dyn bealert_app::ports::OperatorStore>,
    Arc<dyn bealert_app::ports::GeoStore>,
    Arc<dyn bealert_app::ports::SubscriberStore>,
)> {
    let s = stores(backend, data_dir).await?;
    Ok((s.operators, s.geography, s.subscribers))
}

/// The stores a command beside a server uses.
pub struct Stores {
    pub operators: Arc<dyn bealert_app::ports::OperatorStore>,
    pub geography: Arc<dyn bealert_app::ports::GeoStore>,
    pub subscribers: Arc<dyn bealert_app::ports::SubscriberStore>,
    /// Drills, templates, outlets and the sending switch live here.
    pub documents: Arc<dyn bealert_app::ports::DocumentStore>,
}

/// [`operator_stores`], with the document store beside them.
pub async fn stores(backend: Backend, data_dir: &std::path::Path) -> anyhow::Result<Stores> {
    match backend {
        Backend::Embedded => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let store = Arc::new(bealert_embedded::SqliteStore::open(
                &data_dir.join("store.db"),
            )?);
            let geo = Arc::new(bealert_embedded::SqliteGeography::beside(&store)?);
            shipped_units(geo.as_ref(), store.as_ref()).await?;
            Ok(Stores {
                operators: store.clone(),
                geography: geo,
                subscribers: store.clone(),
                documents: store,
            })
        }
        #[cfg(feature = "aws")]
        Backend::Aws => {
            let store = Arc::new(bealert_aws::DynamoStore::new(
                aws_sdk_dynamodb_client().await,
                bealert_aws::Settings::from_env().tables,
            ));
            Ok(Stores {
                operators: store.clone(),
                geography: store.clone(),
                subscribers: store.clone(),
                documents: store,
            })
        }
        #[cfg(not(feature = "aws"))]
        Backend::Aws => no_aws(),
    }
}

/// The document store of a home (approver contacts, templates, drills).
pub async fn document_store(
    backend: Backend,
    data_dir: &std::path::Path,
) -> anyhow::Result<Arc<dyn bealert_app::ports::DocumentStore>> {
    match backend {
        Backend::Embedded => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            Ok(Arc::new(bealert_embedded::SqliteStore::open(
                &data_dir.join("store.db"),
            )?))
        }
        #[cfg(feature = "aws")]
        Backend::Aws => Ok(Arc::new(bealert_aws::DynamoStore::new(
            aws_sdk_dynamodb_client().await,
            bealert_aws::Settings::from_env().tables,
        ))),
        #[cfg(not(feature = "aws"))]
        Backend::Aws => no_aws(),
    }
}

/// Only the network store: safe beside a running server.
pub async fn network_store(
    backend: Backend,
    data_dir: &std::path::Path,
) -> anyhow::Result<Box<dyn bealert_app::ports::NetworkStore>> {
    match backend {
        Backend::Embedded => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let store = bealert_embedded::SqliteStore::open(&data_dir.join("store.db"))?;
            Ok(Box::new(bealert_embedded::SqliteNetworks::beside(&store)?))
        }
        #[cfg(feature = "aws")]
        Backend::Aws => Ok(Box::new(bealert_aws::DynamoStore::new(
            aws_sdk_dynamodb_client().await,
            bealert_aws::Settings::from_env().tables,
        ))),
        #[cfg(not(feature = "aws"))]
        Backend::Aws => no_aws(),
    }
}

/// The local runtime's home for a backend.
pub fn home(backend: Backend, data_dir: PathBuf) -> local::Home {
    match backend {
        Backend::Embedded => local::Home::Embedded(data_dir),
        Backend::Aws => local::Home::Aws,
    }
}

#[cfg(feature = "aws")]
async fn aws_sdk_dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&bealert_aws::sdk_config().await)
}

/// What a build without the AWS home says when asked for it.
#[cfg(not(feature = "aws"))]
pub fn no_aws<T>() -> anyhow::Result<T> {
    anyhow::bail!(
        "this bealert was built without the AWS home; rebuild with --features aws \
         (cargo run --release -p bealert --features aws -- ...)"
    )
}
