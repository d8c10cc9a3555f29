//! Operators: creating them with a fresh API key, and authenticating requests.

use super::App;
use crate::AppError;
use crate::ports::{GeoStore, OperatorStore};
use base64::Engine;
use bealert_core::operator::{
    DEFAULT_KEY_LIFETIME_MS, Jurisdiction, KEY_PREFIX, KeyGrant, Operator, Task, hash_key,
    validate_name, validate_user,
};

/// A new API key: the prefix and 256 random bits, base64url.
pub fn generate_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Creates an operator with its first person (`user`, or named as the
/// operator); returns it with that person's key (shown once, stored hashed),
/// which works for `lifetime_ms`.
/// A municipality or province must have its boundary loaded: its alerts are
/// checked against it. Needs only the operator and geography stores, so a
/// CLI can run it beside a live server.
pub async fn create_operator(
    operators: &dyn OperatorStore,
    geography: &dyn GeoStore,
    name: &str,
    jurisdiction: &str,
    user: Option<&str>,
    lifetime_ms: i64,
) -> Result<(Operator, String), AppError> {
    let now = crate::now_ms();
    create_operator_at(
        operators,
        geography,
        name,
        jurisdiction,
        user,
        lifetime_ms,
        now,
    )
    .await
}

/// [`create_operator`] at `now` (the app's clock).
async fn create_operator_at(
    operators: &dyn OperatorStore,
    geography: &dyn GeoStore,
    name: &str,
    jurisdiction: &str,
    user: Option<&str>,
    lifetime_ms: i64,
    now: i64,
) -> Result<(Operator, String), AppError> {
    validate_name(name).map_err(AppError::BadRequest)?;
    let user = user.unwrap_or(name);
    validate_user(user).map_err(AppError::BadRequest)?;
    let jurisdiction: Jurisdiction = jurisdiction.parse().map_err(AppError::BadRequest)?;
    let loaded = jurisdiction.is_national()
        || super::geography::jurisdiction_unit(geography, &jurisdiction)
            .await?
            .is_some();
    if !loaded {
        return Err(AppError::BadRequest(format!(
            "{jurisdiction}: its boundary is not loaded, so its alerts could not be kept inside it; \
             load it first with `bealert geo load FILE` (a GeoJSON of units, see the README)"
        )));
    }
    let key = generate_key();
    let grant = KeyGrant::new(&key, now, lifetime_ms);
    let operator = Operator {
        name: name.to_string(),
        jurisdiction,
        user: user.to_string(),
        groups: Vec::new(),
        rights: Default::default(),
        key_expires_at_ms: grant.expires_at_ms,
    };
    operators
        .insert_operator(&operator, &grant)
        .await
        .map_err(|e| match e {
            crate::ports::StoreError::Conflict(_) => {
                AppError::Conflict(format!("an operator named {name:?} already exists"))
            }
            other => other.into(),
        })?;
    Ok((operator, key))
}

/// Adds a person to an operator; returns their key (shown once), which
/// works for `lifetime_ms`.
pub async fn create_user(
    operators: &dyn OperatorStore,
    operator: &str,
    user: &str,
    lifetime_ms: i64,
) -> Result<String, AppError> {
    validate_user(user).map_err(AppError::BadRequest)?;
    let key = generate_key();
    let grant = KeyGrant::new(&key, crate::now_ms(), lifetime_ms);
    match operators.insert_user(operator, user, &grant).await {
        Ok(true) => Ok(key),
        Ok(false) => Err(AppError::NotFound(format!(
            "no operator is named {operator:?}; create it with `bealert operator create`"
        ))),
        Err(crate::ports::StoreError::Conflict(_)) => Err(AppError::Conflict(format!(
            "{operator:?} already has a person named {user:?}; rotate their key with `bealert key rotate`"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Sets what a person may do (`--may send,approve,...`).
pub async fn set_rights(
    operators: &dyn OperatorStore,
    operator: &str,
    user: &str,
    rights: &bealert_core::operator::Rights,
) -> Result<(), AppError> {
    if operators.set_rights(operator, user, rights).await? {
        Ok(())
    } else {
        Err(AppError::NotFound(format!(
            "{operator:?} has no person named {user:?} (or no operator has that name)"
        )))
    }
}

/// How a person's keys are replaced (`bealert key rotate|revoke`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Give a new key working this long; `None`: revoke only.
    pub new_key_lifetime_ms: Option<i64>,
    /// Let the old keys work this much longer (`--overlap 1h`), so that a
    /// script can switch keys without failing; `None`: refused at once.
    pub overlap_ms: Option<i64>,
}

/// The longest overlap `bealert key rotate --overlap` grants: a rotation
/// is for a key that may have leaked, so the old one must end soon.
pub const MAX_KEY_OVERLAP_MS: i64 = 7 * 24 * 3600 * 1000;

/// Ends every key of a person and gives them a new one (returned, shown
/// once) in the same step, as `rotation` says.
pub async fn replace_keys(
    operators: &dyn OperatorStore,
    operator: &str,
    user: &str,
    rotation: Rotation,
) -> Result<(usize, Option<String>), AppError> {
    if let Some(overlap) = rotation.overlap_ms
        && !(1..=MAX_KEY_OVERLAP_MS).contains(&overlap)
    {
        return Err(AppError::BadRequest(format!(
            "the overlap must be more than 0 and at most 7 days (168h); got {}s",
            overlap / 1000
        )));
    }
    let now = crate::now_ms();
    let key = rotation.new_key_lifetime_ms.map(|_| generate_key());
    let grant = key
        .as_deref()
        .zip(rotation.new_key_lifetime_ms)
        .map(|(key, life)| KeyGrant::new(key, now, life));
    let until = rotation.overlap_ms.map(|o| now.saturating_add(o));
    match operators
        .replace_keys(operator, user, grant.as_ref(), until)
        .await?
    {
        Some(revoked) => Ok((revoked, key)),
        None => Err(AppError::NotFound(format!(
            "{operator:?} has no person named {user:?} (or no operator has that name)"
        ))),
    }
}

/// Revokes the key given: refused from the next request on.
pub async fn revoke_key(operators: &dyn OperatorStore, key: &str) -> Result<(), AppError> {
    if operators.revoke_key(&hash_key(key.trim())).await? {
        Ok(())
    } else {
        Err(AppError::NotFound(
            "no person has this key (already revoked, or mistyped)".into(),
        ))
    }
}

/// Lets an operator alert a group.
pub async fn grant_group(
    operators: &dyn OperatorStore,
    name: &str,
    group: &str,
) -> Result<(), AppError> {
    bealert_core::subscriber::validate_group(group).map_err(AppError::BadRequest)?;
    if operators.grant_group(name, group).await? {
        Ok(())
    } else {
        Err(AppError::NotFound(format!("no operator is named {name:?}")))
    }
}

impl App {
    pub async fn create_operator(
        &self,
        name: &str,
        jurisdiction: &str,
    ) -> Result<(Operator, String), AppError> {
        create_operator_at(
            self.ports.operators.as_ref(),
            self.ports.geography.as_ref(),
            name,
            jurisdiction,
            None,
            DEFAULT_KEY_LIFETIME_MS,
            self.now_ms(),
        )
        .await
    }

    /// Lets an operator alert a group (`bealert operator grant`).
    pub async fn grant_group(&self, name: &str, group: &str) -> Result<(), AppError> {
        grant_group(self.ports.operators.as_ref(), name, group).await
    }

    /// Finds the operator of an `Authorization: Bearer <key>` header; an
    /// ended key is refused, saying when it ended and how to get another.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Operator, AppError> {
        let key = bearer(authorization, "operator key")?;
        let operator = self
            .ports
            .operators
            .operator_by_key_hash(&hash_key(key))
            .await?
            .ok_or_else(|| {
                AppError::Unauthorized(
                    "this operator key is not known or was revoked: check it, or get one with \
                     `bealert operator create`, `bealert user create` or `bealert key rotate`"
                        .into(),
                )
            })?;
        match operator.key_expired(self.now_ms()) {
            Some(why) => Err(AppError::Unauthorized(why)),
            None => Ok(operator),
        }
    }
}

/// The key of an `Authorization: Bearer <key>` header; `what` names the
/// kind of key the route needs.
pub(crate) fn bearer<'a>(authorization: Option<&'a str>, what: &str) -> Result<&'a str, AppError> {
    let header = authorization.ok_or_else(|| {
        let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        AppError::Unauthorized(format!(
            "this route needs {article} {what}: send the header Authorization: Bearer <key>"
        ))
    })?;
    header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, k)| k.trim())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            AppError::Unauthorized(format!(
                "the Authorization header must read: Bearer <{what}>"
            ))
        })
}

/// Refuses a task the person's operator may not do (the national tasks:
/// imports, networks, invitations, templates, outlets), saying what.
pub(crate) fn require(op: &Operator, task: Task, action: &str) -> Result<(), AppError> {
    match op.refusal(task) {
        None => Ok(()),
        Some(why) => Err(AppError::Forbidden(format!("you may not {action}: {why}"))),
    }
}
