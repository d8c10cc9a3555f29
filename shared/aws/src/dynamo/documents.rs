//! Documents (alert templates, drills, drill runs) in the alerts table:
//! `DOC#<kind>` / `<id>|<part>`, the JSON cut into parts under 300 kB (an
//! item holds 400 kB), written in one transaction with a version every
//! part carries, so a reader never joins parts of two versions.

use super::alerts::chunk_str;
use super::{DynamoStore, Item, Tx, built, get_n, get_s, key, n, s};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use bealert_app::ports::{DocumentStore, StoreError};
use std::collections::BTreeMap;

const PART: usize = 300 * 1024;

fn pk(kind: &str) -> String {
    format!("DOC#{kind}")
}

fn sk(id: &str, part: usize) -> String {
    format!("{id}|{part:04}")
}

/// `(id, part)` of a sort key.
fn split_sk(sk: &str) -> Option<(&str, usize)> {
    let (id, part) = sk.rsplit_once('|')?;
    Some((id, part.parse().ok()?))
}

impl DynamoStore {
    /// The parts stored for one id (any version).
    async fn parts(&self, kind: &str, id: &str) -> Result<Vec<Item>, StoreError> {
        self.query_all(
            &self.tables.alerts,
            &pk(kind),
            Some((sk(id, 0), sk(id, 9999))),
            None,
            None,
        )
        .await
    }

    fn delete_part(
        &self,
        kind: &str,
        id: &str,
        part: usize,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .delete(built(
                Delete::builder()
                    .table_name(&self.tables.alerts)
                    .set_key(Some(key(pk(kind), sk(id, part))))
                    .build(),
            )?)
            .build())
    }

    /// Joins the parts of documents, checking each is one version, whole.
    fn join(items: Vec<Item>) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let mut by_id: BTreeMap<String, Vec<(usize, Item)>> = BTreeMap::new();
        for item in items {
            let sk = get_s(&item, "sk")?.to_string();
            let Some((id, part)) = split_sk(&sk) else {
                continue;
            };
            by_id.entry(id.to_string()).or_default().push((part, item));
        }
        let mut out = Vec::new();
        for (id, mut parts) in by_id {
            parts.sort_by_key(|(p, _)| *p);
            let of: usize = get_n(&parts[0].1, "of")?;
            let version = get_s(&parts[0].1, "ver")?.to_string();
            if parts.len() != of
                || parts.iter().enumerate().any(|(i, (p, item))| {
                    *p != i || get_s(item, "ver").ok() != Some(version.as_str())
                })
            {
                return Err(StoreError::Transient(format!(
                    "document {id} is being replaced; read it again"
                )));
            }
            let mut json = String::new();
            for (_, item) in &parts {
                json.push_str(get_s(item, "body")?);
            }
            out.push((
                id,
                serde_json::from_str(&json).map_err(|e| StoreError::Permanent(e.to_string()))?,
            ));
        }
        Ok(out)
    }
}

#[async_trait]
impl DocumentStore for DynamoStore {
    async fn put_document(
        &self,
        kind: &str,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let json = body.to_string();
        let chunks = chunk_str(&json, PART);
        let chunks = if chunks.is_empty() { vec![""] } else { chunks };
        let old = self.parts(kind, id).await?.len();
        let version = bealert_core::AlertId::new().to_string();
        let mut actions = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut item = key(pk(kind), sk(id, i));
            item.insert("body".into(), s(*chunk));
            item.insert("of".into(), n(chunks.len()));
            item.insert("ver".into(), s(&version));
            actions.push(
                TransactWriteItem::builder()
                    .put(built(
                        Put::builder()
                            .table_name(&self.tables.alerts)
                            .set_item(Some(item))
                            .build(),
                    )?)
                    .build(),
            );
        }
        for i in chunks.len()..old {
            actions.push(self.delete_part(kind, id, i)?);
        }
        match self.transact(actions).await? {
            Tx::Committed => Ok(()),
            Tx::Cancelled(_) => Err(StoreError::Transient(format!(
                "document {id} changed meanwhile; write it again"
            ))),
        }
    }

    async fn get_document(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let parts = self.parts(kind, id).await?;
        Ok(Self::join(parts)?.into_iter().next().map(|(_, v)| v))
    }

    async fn documents(
        &self,
        kind: &str,
        prefix: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        // Every sort key starting with the prefix: [prefix, prefix + U+FFFF).
        let items = self
            .query_all(
                &self.tables.alerts,
                &pk(kind),
                (!prefix.is_empty()).then(|| (prefix.to_string(), format!("{prefix}\u{ffff}"))),
                None,
                None,
            )
            .await?;
        Self::join(items)
    }

    async fn delete_document(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
        let parts = self.parts(kind, id).await?;
        if parts.is_empty() {
            return Ok(false);
        }
        let mut actions = Vec::new();
        for i in 0..parts.len() {
            actions.push(self.delete_part(kind, id, i)?);
        }
        Ok(matches!(self.transact(actions).await?, Tx::Committed))
    }
}
