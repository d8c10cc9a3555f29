//! Citizens' registrations and the signup counters, in a table of their
//! own (the functions that resolve zones cannot read it).
//!
//! * `REG#<id>` / `R`: the registration (JSON), its version `v` and its
//!   lookup keys `k`;
//! * `KEY#<lookup key>` / `<id>`: the index of lookup keys, written in the
//!   same transaction as the registration;
//! * `CNT#<key>#<window start>` / `N`: a counter, with a TTL a day after
//!   its window.

use super::{DynamoStore, Item, Tx, built, get_s, item_from, key, n, opt_n, row_from, sdk_err};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use bealert_app::ports::{Counters, RegistrationStore, StoreError};
use bealert_core::signup::Registration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

fn reg_key(id: &str) -> Item {
    key(format!("REG#{id}"), "R")
}

/// A registration's item: its JSON, its version `v`, its lookup keys `k`
/// (a string set, absent when none) and, until verified, a TTL.
#[derive(Serialize, Deserialize)]
struct RegistrationRow {
    body: String,
    #[serde(default)]
    v: u64,
    /// DynamoDB's TTL deletes a registration nobody verified (seconds); a
    /// put without it (once verified) keeps the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(
        default,
        with = "serde_dynamo::string_set",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    k: BTreeSet<String>,
}

fn item_of(r: &Registration) -> Result<Item, StoreError> {
    let row = RegistrationRow {
        body: serde_json::to_string(r).map_err(|e| StoreError::Permanent(e.to_string()))?,
        v: r.version,
        expires_at: r.expires_at().map(|at| at / 1000),
        k: r.lookup_keys.iter().cloned().collect(),
    };
    item_from(reg_key(&r.id), &row)
}

/// An invitation's item (`INV#<key>`/`I`): its group, end (`exp`, ms),
/// uses left, author, and a TTL a day after its end (seconds).
#[derive(Serialize)]
struct InvitationRow<'a> {
    grp: &'a str,
    exp: i64,
    left: u32,
    by: &'a str,
    expires_at: i64,
}

fn put(
    table: &str,
    item: Item,
    condition: Option<(&str, Option<u64>)>,
) -> Result<TransactWriteItem, StoreError> {
    let mut p = Put::builder().table_name(table).set_item(Some(item));
    if let Some((expr, version)) = condition {
        p = p.condition_expression(expr);
        if expr.contains("#pk") {
            p = p.expression_attribute_names("#pk", "pk");
        }
        if let Some(v) = version {
            p = p
                .expression_attribute_names("#v", "v")
                .expression_attribute_values(":v", n(v));
        }
    }
    Ok(TransactWriteItem::builder().put(built(p.build())?).build())
}

fn delete(table: &str, k: Item) -> Result<TransactWriteItem, StoreError> {
    Ok(TransactWriteItem::builder()
        .delete(built(
            Delete::builder().table_name(table).set_key(Some(k)).build(),
        )?)
        .build())
}

fn index_item(lookup: &str, id: &str) -> Item {
    key(format!("KEY#{lookup}"), id)
}

impl DynamoStore {
    async fn stored_keys(&self, id: &str) -> Result<Option<(u64, BTreeSet<String>)>, StoreError> {
        self.usage.request();
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.registrations)
            .set_key(Some(reg_key(id)))
            .projection_expression("v, k")
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?;
        /// What `stored_keys` projects.
        #[derive(Deserialize)]
        struct Keys {
            #[serde(default)]
            v: u64,
            #[serde(default)]
            k: BTreeSet<String>,
        }
        let keys: Option<Keys> = out.item.map(row_from).transpose()?;
        Ok(keys.map(|r| (r.v, r.k)))
    }
}

#[async_trait]
impl RegistrationStore for DynamoStore {
    async fn insert_registration(&self, r: &Registration) -> Result<(), StoreError> {
        let table = &self.tables.registrations;
        let mut actions = vec![put(
            table,
            item_of(r)?,
            Some(("attribute_not_exists(#pk)", None)),
        )?];
        for k in &r.lookup_keys {
            actions.push(put(table, index_item(k, &r.id), None)?);
        }
        match self.transact(actions).await? {
            Tx::Committed => Ok(()),
            Tx::Cancelled(_) => Err(StoreError::Conflict(format!(
                "registration {} exists",
                r.id
            ))),
        }
    }

    async fn get_registration(&self, id: &str) -> Result<Option<Registration>, StoreError> {
        self.usage.request();
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.registrations)
            .set_key(Some(reg_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?;
        out.item
            .map(|i| {
                let row: RegistrationRow = row_from(i)?;
                serde_json::from_str(&row.body).map_err(|e| StoreError::Permanent(e.to_string()))
            })
            .transpose()
    }

    async fn replace_registration(&self, r: &Registration) -> Result<bool, StoreError> {
        let table = &self.tables.registrations;
        let Some((version, old_keys)) = self.stored_keys(&r.id).await? else {
            return Ok(false);
        };
        if version + 1 != r.version {
            return Ok(false);
        }
        let new_keys: BTreeSet<String> = r.lookup_keys.iter().cloned().collect();
        let mut actions = vec![put(table, item_of(r)?, Some(("#v = :v", Some(version))))?];
        for k in new_keys.difference(&old_keys) {
            actions.push(put(table, index_item(k, &r.id), None)?);
        }
        for k in old_keys.difference(&new_keys) {
            actions.push(delete(table, index_item(k, &r.id))?);
        }
        Ok(matches!(self.transact(actions).await?, Tx::Committed))
    }

    async fn delete_registration(&self, id: &str) -> Result<bool, StoreError> {
        let table = &self.tables.registrations;
        let Some((_, keys)) = self.stored_keys(id).await? else {
            return Ok(false);
        };
        let mut actions = vec![delete(table, reg_key(id))?];
        for k in &keys {
            actions.push(delete(table, index_item(k, id))?);
        }
        Ok(matches!(self.transact(actions).await?, Tx::Committed))
    }

    async fn insert_invitation(
        &self,
        i: &bealert_core::signup::Invitation,
    ) -> Result<(), StoreError> {
        let item = item_from(
            key(format!("INV#{}", i.key), "I"),
            &InvitationRow {
                grp: &i.group,
                exp: i.expires_at,
                left: i.uses_left,
                by: &i.created_by,
                expires_at: i.expires_at / 1000 + 86_400,
            },
        )?;
        self.usage.request();
        self.client
            .put_item()
            .table_name(&self.tables.registrations)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }

    async fn use_invitation(&self, k: &str, now: i64) -> Result<Option<String>, StoreError> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        self.usage.request();
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.registrations)
            .set_key(Some(key(format!("INV#{k}"), "I")))
            .update_expression("ADD #left :minus")
            .condition_expression("attribute_exists(pk) AND #left > :zero AND #exp >= :now")
            .expression_attribute_names("#left", "left")
            .expression_attribute_names("#exp", "exp")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", n(now))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(o) => Ok(o
                .attributes
                .as_ref()
                .and_then(|a| get_s(a, "grp").ok())
                .map(str::to_string)),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_err(e)),
        }
    }

    async fn registrations_by_key(&self, lookup: &str) -> Result<Vec<String>, StoreError> {
        let items = self
            .query_all(
                &self.tables.registrations,
                &format!("KEY#{lookup}"),
                None,
                None,
                None,
            )
            .await?;
        items
            .iter()
            .map(|i| get_s(i, "sk").map(str::to_string))
            .collect()
    }
}

fn counter_key(name: &str, window_ms: i64, now_ms: i64) -> (Item, i64) {
    let start = now_ms - now_ms.rem_euclid(window_ms.max(1));
    (key(format!("CNT#{name}#{start}"), "N"), start)
}

#[async_trait]
impl Counters for DynamoStore {
    async fn bump(
        &self,
        name: &str,
        by: u64,
        window_ms: i64,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let (k, start) = counter_key(name, window_ms, now_ms);
        // Gone a day after its window (DynamoDB TTL, seconds).
        let expires = (start + window_ms) / 1000 + 86_400;
        self.usage.request();
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.registrations)
            .set_key(Some(k))
            .update_expression("ADD #n :by SET expires_at = :exp")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":by", n(by))
            .expression_attribute_values(":exp", n(expires))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(sdk_err)?;
        let attrs = out.attributes.unwrap_or_default();
        Ok(opt_n(&attrs, "n")?.unwrap_or(by))
    }

    async fn count(&self, name: &str, window_ms: i64, now_ms: i64) -> Result<u64, StoreError> {
        let (k, _) = counter_key(name, window_ms, now_ms);
        self.read_count(&self.tables.registrations, k).await
    }
}

#[cfg(test)]
mod row_tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue as A;

    /// The items' attributes keep their types: numbers N, strings S, the
    /// lookup keys a string set, absent options absent (not NULL).
    #[test]
    fn rows_store_the_same_attributes_as_before() -> Result<(), StoreError> {
        let row = RegistrationRow {
            body: "{}".into(),
            v: 3,
            expires_at: None,
            k: ["b".to_string(), "a".to_string()].into(),
        };
        let item = item_from(reg_key("r1"), &row)?;
        assert_eq!(item["pk"], A::S("REG#r1".into()));
        assert_eq!(item["sk"], A::S("R".into()));
        assert_eq!(item["body"], A::S("{}".into()));
        assert_eq!(item["v"], A::N("3".into()));
        assert_eq!(item["k"], A::Ss(vec!["a".into(), "b".into()]));
        assert!(!item.contains_key("expires_at"), "{item:?}");
        let none = item_from(
            reg_key("r2"),
            &RegistrationRow {
                k: BTreeSet::new(),
                expires_at: Some(7),
                ..row
            },
        )?;
        assert!(!none.contains_key("k"), "{none:?}");
        assert_eq!(none["expires_at"], A::N("7".into()));
        let back: RegistrationRow = row_from(item)?;
        assert_eq!((back.v, back.k.len(), back.expires_at), (3, 2, None));
        let inv = item_from(
            key("INV#x", "I"),
            &InvitationRow {
                grp: "g",
                exp: 5,
                left: 2,
                by: "me",
                expires_at: 86_400,
            },
        )?;
        assert_eq!(
            (&inv["grp"], &inv["left"], &inv["by"], &inv["expires_at"]),
            (
                &A::S("g".into()),
                &A::N("2".into()),
                &A::S("me".into()),
                &A::N("86400".into())
            )
        );
        Ok(())
    }
}
