//! Operator items: one per operator by name (`N#<name>`: jurisdiction,
//! groups), one per person (`P#<operator>#<user>`: their key hashes) and one
//! per key (`K#<hash>`: whose it is), written together in transactions.
//!
//! Before people had keys of their own, an operator had one key whose item
//! carried the operator's name, jurisdiction and groups; such a key still
//! authenticates, as the operator's first person (named as the operator).

use super::{DynamoStore, Item, Tx, built, get_s, key, n, opt_n, opt_s, put_new, s, sdk_err};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, TransactWriteItem, Update};
use bealert_app::ports::{OperatorStore, StoreError};
use bealert_core::operator::{KeyGrant, Operator, overlap_end};

fn person_key(operator: &str, user: &str) -> Item {
    key(format!("P#{operator}#{user}"), "P")
}

fn string_set(item: &Item, k: &str) -> Vec<String> {
    match item.get(k) {
        Some(AttributeValue::Ss(v)) => {
            let mut v = v.clone();
            v.sort();
            v
        }
        _ => Vec::new(),
    }
}

impl DynamoStore {
    fn key_item(&self, grant: &KeyGrant, operator: &str, user: &str) -> Item {
        let mut item = key(format!("K#{}", grant.hash), "K");
        item.insert("operator".into(), s(operator));
        item.insert("user".into(), s(user));
        if let Some(end) = grant.expires_at_ms {
            item.insert("expires_at".into(), n(end));
        }
        item
    }

    fn person_item(&self, operator: &str, user: &str, hash: &str) -> Item {
        let mut item = person_key(operator, user);
        item.insert("keys".into(), AttributeValue::Ss(vec![hash.to_string()]));
        item
    }

    async fn get_operator_item(&self, k: Item) -> Result<Option<Item>, StoreError> {
        self.usage.request();
        Ok(self
            .client
            .get_item()
            .table_name(&self.tables.operators)
            .set_key(Some(k))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?
            .item)
    }
}

#[async_trait]
impl OperatorStore for DynamoStore {
    async fn insert_operator(&self, op: &Operator, grant: &KeyGrant) -> Result<(), StoreError> {
        let key_hash = grant.hash.as_str();
        let mut by_name = key(format!("N#{}", op.name), "N");
        by_name.insert("jurisdiction".into(), s(op.jurisdiction.to_string()));
        let actions = vec![
            put_new(&self.tables.operators, by_name)?,
            put_new(
                &self.tables.operators,
                self.person_item(&op.name, &op.user, key_hash),
            )?,
            put_new(
                &self.tables.operators,
                self.key_item(grant, &op.name, &op.user),
            )?,
        ];
        match self.transact(actions).await? {
            Tx::Committed => Ok(()),
            Tx::Cancelled(_) => Err(StoreError::Conflict(format!(
                "operator {:?} exists",
                op.name
            ))),
        }
    }

    async fn insert_user(
        &self,
        operator: &str,
        user: &str,
        grant: &KeyGrant,
    ) -> Result<bool, StoreError> {
        let key_hash = grant.hash.as_str();
        let check = built(
            ConditionCheck::builder()
                .table_name(&self.tables.operators)
                .set_key(Some(key(format!("N#{operator}"), "N")))
                .condition_expression("attribute_exists(pk)")
                .build(),
        )?;
        let actions = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            put_new(
                &self.tables.operators,
                self.person_item(operator, user, key_hash),
            )?,
            put_new(&self.tables.operators, self.key_item(grant, operator, user))?,
        ];
        match self.transact(actions).await? {
            Tx::Committed => Ok(true),
            Tx::Cancelled(reasons) if reasons.first().is_some_and(|(r, _)| r != "None") => {
                Ok(false)
            }
            Tx::Cancelled(_) => Err(StoreError::Conflict(format!(
                "{operator:?} already has a person named {user:?}, or the key is taken"
            ))),
        }
    }

    async fn replace_keys(
        &self,
        operator: &str,
        user: &str,
        new_key: Option<&KeyGrant>,
        old_until_ms: Option<i64>,
    ) -> Result<Option<usize>, StoreError> {
        let Some(person) = self.get_operator_item(person_key(operator, user)).await? else {
            return Ok(None);
        };
        let old = string_set(&person, "keys");
        let now = bealert_app::now_ms();
        let mut actions = Vec::with_capacity(old.len() + 2);
        // With an overlap, the keys still working stay (ending at the
        // overlap's end, or sooner); the others go.
        let mut kept = Vec::new();
        for hash in &old {
            let by_key = key(format!("K#{hash}"), "K");
            let keep = match old_until_ms {
                None => None,
                Some(until) => match self.get_operator_item(by_key.clone()).await? {
                    None => None,
                    Some(item) => {
                        let end = opt_n::<i64>(&item, "expires_at")?;
                        (end.is_none_or(|e| e > now)).then(|| overlap_end(end, until))
                    }
                },
            };
            let action = match keep {
                Some(end) => {
                    kept.push(hash.clone());
                    TransactWriteItem::builder()
                        .update(built(
                            Update::builder()
                                .table_name(&self.tables.operators)
                                .set_key(Some(by_key))
                                .update_expression("SET expires_at = :end")
                                .condition_expression("attribute_exists(pk)")
                                .expression_attribute_values(":end", n(end))
                                .build(),
                        )?)
                        .build()
                }
                None => TransactWriteItem::builder()
                    .delete(built(
                        Delete::builder()
                            .table_name(&self.tables.operators)
                            .set_key(Some(by_key))
                            .build(),
                    )?)
                    .build(),
            };
            actions.push(action);
        }
        // The person's key set is replaced only if it is still the one read.
        let mut keys = kept.clone();
        keys.extend(new_key.map(|k| k.hash.clone()));
        let mut update = Update::builder()
            .table_name(&self.tables.operators)
            .set_key(Some(person_key(operator, user)));
        update = if keys.is_empty() {
            update.update_expression("REMOVE #k")
        } else {
            update
                .update_expression("SET #k = :new")
                .expression_attribute_values(":new", AttributeValue::Ss(keys))
        };
        update = if old.is_empty() {
            update.condition_expression("attribute_exists(pk) AND attribute_not_exists(#k)")
        } else {
            update
                .condition_expression("#k = :old")
                .expression_attribute_values(":old", AttributeValue::Ss(old.clone()))
        };
        let update = built(update.expression_attribute_names("#k", "keys").build())?;
        actions.push(TransactWriteItem::builder().update(update).build());
        if let Some(grant) = new_key {
            actions.push(put_new(
                &self.tables.operators,
                self.key_item(grant, operator, user),
            )?);
        }
        let ended = match old_until_ms {
            None => old.len(),
            Some(_) => kept.len(),
        };
        match self.transact(actions).await? {
            Tx::Committed => Ok(Some(ended)),
            Tx::Cancelled(_) => Err(StoreError::Conflict(format!(
                "the keys of {user:?} of {operator:?} changed meanwhile (or the new key is taken); try again"
            ))),
        }
    }

    async fn revoke_key(&self, key_hash: &str) -> Result<bool, StoreError> {
        let by_key = key(format!("K#{key_hash}"), "K");
        let Some(item) = self.get_operator_item(by_key.clone()).await? else {
            return Ok(false);
        };
        let delete = built(
            Delete::builder()
                .table_name(&self.tables.operators)
                .set_key(Some(by_key))
                .condition_expression("attribute_exists(pk)")
                .build(),
        )?;
        let mut actions = vec![TransactWriteItem::builder().delete(delete).build()];
        if let (Some(operator), Some(user)) = (opt_s(&item, "operator"), opt_s(&item, "user")) {
            let update = built(
                Update::builder()
                    .table_name(&self.tables.operators)
                    .set_key(Some(person_key(&operator, &user)))
                    .update_expression("DELETE #k :h")
                    .expression_attribute_names("#k", "keys")
                    .expression_attribute_values(
                        ":h",
                        AttributeValue::Ss(vec![key_hash.to_string()]),
                    )
                    .build(),
            )?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        match self.transact(actions).await? {
            Tx::Committed => Ok(true),
            // Revoked meanwhile by someone else.
            Tx::Cancelled(_) => Ok(false),
        }
    }

    async fn operator_by_key_hash(&self, key_hash: &str) -> Result<Option<Operator>, StoreError> {
        let Some(by_key) = self
            .get_operator_item(key(format!("K#{key_hash}"), "K"))
            .await?
        else {
            return Ok(None);
        };
        // A key from before people had keys names the operator as `name`.
        let name = match opt_s(&by_key, "operator") {
            Some(name) => name,
            None => get_s(&by_key, "name")?.to_string(),
        };
        let user = opt_s(&by_key, "user").unwrap_or_else(|| name.clone());
        let Some(by_name) = self
            .get_operator_item(key(format!("N#{name}"), "N"))
            .await?
        else {
            return Ok(None);
        };
        let mut groups = string_set(&by_name, "groups");
        groups.extend(string_set(&by_key, "groups"));
        groups.sort();
        groups.dedup();
        // (and its jurisdiction on the key item).
        let jurisdiction = match by_name.get("jurisdiction") {
            Some(_) => get_s(&by_name, "jurisdiction")?,
            None => get_s(&by_key, "jurisdiction")?,
        };
        // The person's rights (absent: the defaults).
        let rights = match self
            .get_operator_item(person_key(&name, &user))
            .await?
            .and_then(|p| opt_s(&p, "may"))
        {
            Some(list) => list.parse().map_err(StoreError::Permanent)?,
            None => Default::default(),
        };
        Ok(Some(Operator {
            jurisdiction: jurisdiction.parse().map_err(StoreError::Permanent)?,
            name,
            user,
            groups,
            rights,
            key_expires_at_ms: opt_n(&by_key, "expires_at")?,
        }))
    }

    async fn set_rights(
        &self,
        operator: &str,
        user: &str,
        rights: &bealert_core::operator::Rights,
    ) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        self.usage.request();
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.operators)
            .set_key(Some(person_key(operator, user)))
            .update_expression("SET #may = :may")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#may", "may")
            .expression_attribute_values(":may", AttributeValue::S(rights.to_list()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(super::sdk_err(e)),
        }
    }

    async fn grant_group(&self, name: &str, group: &str) -> Result<bool, StoreError> {
        let update = built(
            Update::builder()
                .table_name(&self.tables.operators)
                .set_key(Some(key(format!("N#{name}"), "N")))
                .update_expression("ADD #g :g")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#g", "groups")
                .expression_attribute_values(":g", AttributeValue::Ss(vec![group.to_string()]))
                .build(),
        )?;
        match self
            .transact(vec![TransactWriteItem::builder().update(update).build()])
            .await?
        {
            Tx::Committed => Ok(true),
            Tx::Cancelled(_) => Ok(false),
        }
    }
}
