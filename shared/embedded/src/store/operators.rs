//! [`OperatorStore`] on SQLite: operators (name, jurisdiction) in
//! `operators`, their people and rights in `operator_users`, the people's
//! keys by hash (and when they end) in `operator_keys`, the groups an
//! operator may alert in `operator_groups`. A taken name or key violates a
//! unique key, which the store reports as `Conflict`.

use super::{SqliteStore, bad_data, now_ms};
use async_trait::async_trait;
use bealert_app::ports::{OperatorStore, StoreError};
use bealert_core::operator::{KeyGrant, Operator};
use rusqlite::{OptionalExtension, params};

fn operator_exists(tx: &rusqlite::Transaction<'_>, name: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached("SELECT 1 FROM operators WHERE name = ?1")?
        .exists([name])
}

/// A person of an operator and their first key (a taken name or key
/// violates a unique key: `Conflict`).
fn add_person(
    tx: &rusqlite::Transaction<'_>,
    operator: &str,
    user: &str,
    key: &KeyGrant,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO operator_users (operator, user, created_at) VALUES (?1, ?2, ?3)",
        params![operator, user, now],
    )?;
    add_key(tx, operator, user, key, now)
}

fn add_key(
    tx: &rusqlite::Transaction<'_>,
    operator: &str,
    user: &str,
    key: &KeyGrant,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO operator_keys (key_hash, operator, user, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key.hash, operator, user, now, key.expires_at_ms],
    )?;
    Ok(())
}

#[async_trait]
impl OperatorStore for SqliteStore {
    async fn insert_operator(&self, operator: &Operator, key: &KeyGrant) -> Result<(), StoreError> {
        let (op, hash) = (operator.clone(), key.clone());
        self.db
            .write(move |tx| {
                let now = now_ms();
                tx.execute(
                    "INSERT INTO operators (name, jurisdiction, created_at) VALUES (?1, ?2, ?3)",
                    params![op.name, op.jurisdiction.to_string(), now],
                )?;
                add_person(tx, &op.name, &op.user, &hash, now)
            })
            .await
    }

    async fn insert_user(
        &self,
        operator: &str,
        user: &str,
        key: &KeyGrant,
    ) -> Result<bool, StoreError> {
        let (operator, user, hash) = (operator.to_string(), user.to_string(), key.clone());
        self.db
            .write(move |tx| {
                if !operator_exists(tx, &operator)? {
                    return Ok(false);
                }
                add_person(tx, &operator, &user, &hash, now_ms())?;
                Ok(true)
            })
            .await
    }

    async fn replace_keys(
        &self,
        operator: &str,
        user: &str,
        new_key: Option<&KeyGrant>,
        old_until_ms: Option<i64>,
    ) -> Result<Option<usize>, StoreError> {
        let (operator, user) = (operator.to_string(), user.to_string());
        let new = new_key.cloned();
        self.db
            .write(move |tx| {
                let exists = tx
                    .prepare_cached(
                        "SELECT 1 FROM operator_users WHERE operator = ?1 AND user = ?2",
                    )?
                    .exists(params![operator, user])?;
                if !exists {
                    return Ok(None);
                }
                let now = now_ms();
                let ended = match old_until_ms {
                    None => tx.execute(
                        "DELETE FROM operator_keys WHERE operator = ?1 AND user = ?2",
                        params![operator, user],
                    )?,
                    Some(until) => {
                        // Keys already ended go; the others end at the
                        // overlap's end, or sooner if they would anyway.
                        tx.execute(
                            "DELETE FROM operator_keys WHERE operator = ?1 AND user = ?2
                             AND expires_at IS NOT NULL AND expires_at <= ?3",
                            params![operator, user, now],
                        )?;
                        tx.execute(
                            "UPDATE operator_keys SET expires_at = min(coalesce(expires_at, ?3), ?3)
                             WHERE operator = ?1 AND user = ?2",
                            params![operator, user, until],
                        )?
                    }
                };
                if let Some(key) = new {
                    add_key(tx, &operator, &user, &key, now)?;
                }
                Ok(Some(ended))
            })
            .await
    }

    async fn revoke_key(&self, key_hash: &str) -> Result<bool, StoreError> {
        let hash = key_hash.to_string();
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM operator_keys WHERE key_hash = ?1", [hash])
                    .map(|n| n > 0)
            })
            .await
    }

    async fn operator_by_key_hash(&self, key_hash: &str) -> Result<Option<Operator>, StoreError> {
        let hash = key_hash.to_string();
        self.db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT o.name, o.jurisdiction, k.user, u.rights, k.expires_at FROM operator_keys k
                     JOIN operators o ON o.name = k.operator
                     LEFT JOIN operator_users u ON u.operator = k.operator AND u.user = k.user
                     WHERE k.key_hash = ?1",
                )?
                .query_row([hash], |r| {
                    let j: String = r.get(1)?;
                    let rights: Option<String> = r.get(3)?;
                    Ok(Operator {
                        name: r.get(0)?,
                        jurisdiction: j.parse().map_err(bad_data)?,
                        user: r.get(2)?,
                        groups: Vec::new(),
                        rights: match rights {
                            Some(list) => list.parse().map_err(bad_data)?,
                            None => Default::default(),
                        },
                        key_expires_at_ms: r.get(4)?,
                    })
                })
                .optional()?
                .map(|mut op| {
                    op.groups = conn
                        .prepare_cached(
                            "SELECT grp FROM operator_groups WHERE name = ?1 ORDER BY grp",
                        )?
                        .query_map([&op.name], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    Ok(op)
                })
                .transpose()
            })
            .await
    }

    async fn set_rights(
        &self,
        operator: &str,
        user: &str,
        rights: &bealert_core::operator::Rights,
    ) -> Result<bool, StoreError> {
        let (operator, user, list) = (operator.to_string(), user.to_string(), rights.to_list());
        self.db
            .write(move |tx| {
                Ok(tx.execute(
                    "UPDATE operator_users SET rights = ?3 WHERE operator = ?1 AND user = ?2",
                    params![operator, user, list],
                )? == 1)
            })
            .await
    }

    async fn grant_group(&self, name: &str, group: &str) -> Result<bool, StoreError> {
        let (name, group) = (name.to_string(), group.to_string());
        self.db
            .write(move |tx| {
                if !operator_exists(tx, &name)? {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT OR IGNORE INTO operator_groups (name, grp) VALUES (?1, ?2)",
                    params![name, group],
                )?;
                Ok(true)
            })
            .await
    }
}
