//! Accounts and groups as stored: what the command line (`elsed user`, `elsed group`), the admin
//! API and `elsed setup` share, so that every way in applies the same rules (login names, the
//! password policy, lower-case domains and addresses, the last administrator).
//!
//! Passwords are hashed with Argon2id at the `argon2` crate's default parameters and stored as
//! PHC strings, which carry their parameters: a later change of defaults still verifies old hashes.

use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use omelse::parse::Timestamp;
use serde::{Deserialize, Serialize};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient};

use super::Role;

/// The password policy: length is what matters (NIST SP 800-63B), no composition rules.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Hashing is deliberately slow; an unbounded input would make it slower still.
pub const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_LOGIN_CHARS: usize = 64;
const MAX_NAME_CHARS: usize = 200;
const MAX_ADDRESS_BYTES: usize = 254;
const MAX_DOMAIN_BYTES: usize = 253;
/// Addresses of one end user, domains or servers of one group: a screenful, not a dump.
const MAX_LIST_ITEMS: usize = 1000;

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A value breaks a rule; names the field.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// A login or group name already taken, or the last administrator.
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("password hashing: {0}")]
    Hashing(String),
}

pub type Result<T> = std::result::Result<T, AccountError>;

fn invalid(field: &'static str, message: impl Into<String>) -> AccountError {
    AccountError::Invalid {
        field,
        message: message.into(),
    }
}

/// A new account (also the body of `POST /admin/users`). No `Debug`: it holds a password.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub login: String,
    #[serde(default)]
    pub name: String,
    pub role: Role,
    /// At least 10 characters.
    pub password: String,
    /// Group ids (members see their servers and domains).
    #[serde(default)]
    pub groups: Vec<i64>,
    /// An end user's own addresses.
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// Changes to an account (also the body of `PATCH /admin/users/{id}`): `None` leaves a field as
/// it is, a list replaces the old one.
#[derive(Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub password: Option<String>,
    pub groups: Option<Vec<i64>>,
    pub addresses: Option<Vec<String>>,
}

/// An account as administrators see it (never its hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub groups: Vec<i64>,
    pub addresses: Vec<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_login: Option<Timestamp>,
}

/// A group: its members, servers and mail domains.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Group {
    pub id: i64,
    pub name: String,
    pub server_ids: Vec<i32>,
    /// The servers (among `server_ids`) the group owns whole: its members see every line of
    /// them, the lines that belong to no message (daemon starts, warnings) too.
    pub whole_server_ids: Vec<i32>,
    pub domains: Vec<String>,
    pub user_ids: Vec<i64>,
}

/// A new group, or changes to one (`None` leaves a field; a list replaces the old one); the body
/// of `POST` and `PATCH /admin/groups`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub server_ids: Option<Vec<i32>>,
    /// Replaces the servers the group owns whole; each must be one of its servers.
    pub whole_server_ids: Option<Vec<i32>>,
    pub domains: Option<Vec<String>>,
    pub user_ids: Option<Vec<i64>>,
}

// ---- rules -------------------------------------------------------------------------------

/// Letters, digits and `.-_@+`: what fits in a URL, a log line and a shell without quoting.
pub fn check_login(login: &str) -> Result<()> {
    if login.is_empty() || login.chars().count() > MAX_LOGIN_CHARS {
        return Err(invalid("login", format!("must have 1 to {MAX_LOGIN_CHARS} characters")));
    }
    if !login
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@' | '+'))
    {
        return Err(invalid("login", "may contain only letters, digits and . - _ @ +"));
    }
    Ok(())
}

pub fn check_password(password: &str) -> Result<()> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(invalid(
            "password",
            format!("must have at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A display name or group name: printable, bounded.
fn check_text(field: &'static str, text: &str, max: usize, may_be_empty: bool) -> Result<String> {
    let text = text.trim();
    if text.is_empty() && !may_be_empty {
        return Err(invalid(field, "is empty"));
    }
    if text.chars().count() > max {
        return Err(invalid(field, format!("must have at most {max} characters")));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(text.to_owned())
}

/// A mail address as the scope compares it: lower case, one `@`, no spaces or brackets.
pub fn normalize_address(address: &str) -> Result<String> {
    let address = address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_lowercase();
    let ok = address.len() <= MAX_ADDRESS_BYTES
        && address.matches('@').count() == 1
        && !address.starts_with('@')
        && !address.ends_with('@')
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
    if !ok {
        return Err(invalid("addresses", format!("'{address}' is not a mail address")));
    }
    Ok(address)
}

/// A mail domain as `else_domain()` gives it: lower case, without `@`.
pub fn normalize_domain(domain: &str) -> Result<String> {
    let domain = domain.trim().trim_start_matches('@').to_lowercase();
    let ok = !domain.is_empty()
        && domain.len() <= MAX_DOMAIN_BYTES
        && !domain
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "@<>,;\"/".contains(c));
    if !ok {
        return Err(invalid("domains", format!("'{domain}' is not a mail domain")));
    }
    Ok(domain)
}

/// Normalizes every item, drops duplicates, bounds the count.
fn normalize_list(field: &'static str, items: &[String], normalize: fn(&str) -> Result<String>) -> Result<Vec<String>> {
    if items.len() > MAX_LIST_ITEMS {
        return Err(invalid(field, format!("at most {MAX_LIST_ITEMS} entries")));
    }
    let mut out: Vec<String> = items.iter().map(|i| normalize(i)).collect::<Result<_>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn bounded<T: Clone + Ord>(field: &'static str, items: &[T]) -> Result<Vec<T>> {
    if items.len() > MAX_LIST_ITEMS {
        return Err(invalid(field, format!("at most {MAX_LIST_ITEMS} entries")));
    }
    let mut out = items.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

// ---- passwords ---------------------------------------------------------------------------

/// Argon2id PHC string of a password (on a blocking thread: it takes tens of milliseconds).
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| AccountError::Hashing(e.to_string()))
    })
    .await
    .map_err(|e| AccountError::Hashing(e.to_string()))?
}

/// A hash of nothing anyone knows: verifying an unknown login against it costs what verifying
/// a real one costs, so that the answer's delay does not tell which logins exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the system's random source");
    Argon2::default()
        .hash_password(&secret)
        .expect("hashing a fixed-size secret")
        .to_string()
});

/// Whether `password` matches `hash` (the dummy hash when there is no account: always false).
pub async fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let password = password.to_owned();
    let hash = hash.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
        let Ok(parsed) = PasswordHash::new(&hash) else {
            tracing::error!("a stored password hash is not a PHC string");
            return false;
        };
        Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && known
    })
    .await
    .unwrap_or(false)
}

// ---- database errors ---------------------------------------------------------------------

/// What a constraint violation means to the person who caused it.
fn explain(e: tokio_postgres::Error) -> AccountError {
    let Some(db) = e.as_db_error() else {
        return AccountError::Database(e);
    };
    let constraint = db.constraint().unwrap_or("");
    match (db.code(), constraint) {
        (&SqlState::UNIQUE_VIOLATION, "users_login_key") => AccountError::Conflict("this login is taken".into()),
        (&SqlState::UNIQUE_VIOLATION, "groups_name_key") => {
            AccountError::Conflict("a group of this name exists".into())
        }
        (&SqlState::FOREIGN_KEY_VIOLATION, c) if c.contains("group_id") => invalid("groups", "unknown group id"),
        (&SqlState::FOREIGN_KEY_VIOLATION, c) if c.contains("server_id") => invalid("server_ids", "unknown server id"),
        (&SqlState::FOREIGN_KEY_VIOLATION, c) if c.contains("user_id") => invalid("user_ids", "unknown user id"),
        _ => AccountError::Database(e),
    }
}

// ---- users -------------------------------------------------------------------------------

/// Creates an account and returns its id (`elsed user add`, `POST /admin/users`, `elsed setup`).
pub async fn create_user(client: &Client, new: NewUser) -> Result<i64> {
    check_login(&new.login)?;
    let name = check_text("name", &new.name, MAX_NAME_CHARS, true)?;
    check_password(&new.password)?;
    let groups = bounded("groups", &new.groups)?;
    let addresses = normalize_list("addresses", &new.addresses, normalize_address)?;
    let hash = hash_password(&new.password).await?;
    // One statement: the account exists with its groups and addresses, or not at all.
    let row = client
        .query_one(
            "WITH u AS (INSERT INTO users (login, name, role, password_hash)
                        VALUES ($1, $2, $3, $4) RETURNING id),
                  g AS (INSERT INTO group_users (group_id, user_id)
                        SELECT g, u.id FROM u, unnest($5::bigint[]) AS g),
                  a AS (INSERT INTO user_addresses (user_id, address)
                        SELECT u.id, a FROM u, unnest($6::text[]) AS a)
             SELECT id FROM u",
            &[&new.login, &name, &new.role.as_str(), &hash, &groups, &addresses],
        )
        .await
        .map_err(explain)?;
    Ok(row.get(0))
}

/// The id of a login (any case), for the command line.
pub async fn user_id(client: &impl GenericClient, login: &str) -> Result<i64> {
    client
        .query_opt("SELECT id FROM users WHERE lower(login) = lower($1)", &[&login])
        .await?
        .map(|row| row.get(0))
        .ok_or_else(|| AccountError::NotFound(format!("user '{login}'")))
}

const USER_COLUMNS: &str = "u.id, u.login, u.name, u.role, u.disabled,
    ARRAY(SELECT group_id FROM group_users WHERE user_id = u.id ORDER BY group_id),
    ARRAY(SELECT address FROM user_addresses WHERE user_id = u.id ORDER BY address),
    u.created_at, u.last_login";

fn user_from_row(row: &tokio_postgres::Row) -> User {
    let role: &str = row.get(3);
    User {
        id: row.get(0),
        login: row.get(1),
        name: row.get(2),
        role: role.parse().unwrap_or(Role::Enduser),
        disabled: row.get(4),
        groups: row.get(5),
        addresses: row.get(6),
        created_at: row.get(7),
        last_login: row.get(8),
    }
}

pub async fn list_users(client: &impl GenericClient) -> Result<Vec<User>> {
    let rows = client
        .query(
            &format!("SELECT {USER_COLUMNS} FROM users u ORDER BY lower(u.login)"),
            &[],
        )
        .await?;
    Ok(rows.iter().map(user_from_row).collect())
}

pub async fn get_user(client: &impl GenericClient, id: i64) -> Result<User> {
    client
        .query_opt(&format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"), &[&id])
        .await?
        .map(|row| user_from_row(&row))
        .ok_or_else(|| AccountError::NotFound(format!("user {id}")))
}

/// Serialises the changes of accounts, so that two administrators demoting each other at once
/// cannot both succeed and leave nobody. Taken first in the transaction (taking it after row
/// locks could deadlock). Accounts change rarely: the wait is nothing.
async fn lock_accounts(tx: &tokio_postgres::Transaction<'_>) -> Result<()> {
    tx.execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE", &[]).await?;
    Ok(())
}

/// Refuses a change that would leave no enabled administrator (nobody could manage accounts
/// from the web any more). Runs inside the changing transaction, after the change.
async fn keep_an_administrator(tx: &tokio_postgres::Transaction<'_>) -> Result<()> {
    let admins: i64 = tx
        .query_one("SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled", &[])
        .await?
        .get(0);
    if admins == 0 {
        return Err(AccountError::Conflict(
            "the last enabled administrator cannot be removed, disabled or demoted".into(),
        ));
    }
    Ok(())
}

/// Applies changes to an account. A new password or disabling ends the account's sessions.
pub async fn update_user(client: &mut Client, id: i64, changes: UserChanges) -> Result<User> {
    let name = changes
        .name
        .as_deref()
        .map(|n| check_text("name", n, MAX_NAME_CHARS, true))
        .transpose()?;
    let groups = changes.groups.as_deref().map(|g| bounded("groups", g)).transpose()?;
    let addresses = changes
        .addresses
        .as_deref()
        .map(|a| normalize_list("addresses", a, normalize_address))
        .transpose()?;
    let hash = match &changes.password {
        Some(password) => {
            check_password(password)?;
            Some(hash_password(password).await?)
        }
        None => None,
    };
    let tx = client.transaction().await?;
    lock_accounts(&tx).await?;
    let was_admin: bool = tx
        .query_opt(
            "SELECT role = 'admin' AND NOT disabled FROM users WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        .ok_or_else(|| AccountError::NotFound(format!("user {id}")))?
        .get(0);
    tx.execute(
        "UPDATE users SET name = coalesce($2, name), role = coalesce($3, role),
                          disabled = coalesce($4, disabled), password_hash = coalesce($5, password_hash)
         WHERE id = $1",
        &[&id, &name, &changes.role.map(Role::as_str), &changes.disabled, &hash],
    )
    .await?;
    if let Some(groups) = &groups {
        tx.execute("DELETE FROM group_users WHERE user_id = $1", &[&id]).await?;
        tx.execute(
            "INSERT INTO group_users (group_id, user_id) SELECT g, $1 FROM unnest($2::bigint[]) AS g",
            &[&id, groups],
        )
        .await
        .map_err(explain)?;
    }
    if let Some(addresses) = &addresses {
        tx.execute("DELETE FROM user_addresses WHERE user_id = $1", &[&id])
            .await?;
        tx.execute(
            "INSERT INTO user_addresses (user_id, address) SELECT $1, a FROM unnest($2::text[]) AS a",
            &[&id, addresses],
        )
        .await?;
    }
    if hash.is_some() || changes.disabled == Some(true) {
        tx.execute("DELETE FROM web_sessions WHERE user_id = $1", &[&id])
            .await?;
    }
    if was_admin {
        keep_an_administrator(&tx).await?;
    }
    let user = get_user(&tx, id).await?;
    tx.commit().await?;
    Ok(user)
}

/// Deletes an account (its sessions and search history go with it); returns its login.
pub async fn delete_user(client: &mut Client, id: i64) -> Result<String> {
    let tx = client.transaction().await?;
    lock_accounts(&tx).await?;
    let row = tx
        .query_opt(
            "DELETE FROM users WHERE id = $1 RETURNING login, role = 'admin' AND NOT disabled",
            &[&id],
        )
        .await?
        .ok_or_else(|| AccountError::NotFound(format!("user {id}")))?;
    if row.get::<_, bool>(1) {
        keep_an_administrator(&tx).await?;
    }
    tx.commit().await?;
    Ok(row.get(0))
}

// ---- groups ------------------------------------------------------------------------------

fn check_group_name(name: &str) -> Result<String> {
    check_text("name", name, 100, false)
}

/// Checked lists of a group's changes.
struct GroupLists {
    server_ids: Option<Vec<i32>>,
    whole_server_ids: Option<Vec<i32>>,
    domains: Option<Vec<String>>,
    user_ids: Option<Vec<i64>>,
}

fn group_lists(changes: &GroupChanges) -> Result<GroupLists> {
    Ok(GroupLists {
        server_ids: changes
            .server_ids
            .as_deref()
            .map(|s| bounded("server_ids", s))
            .transpose()?,
        whole_server_ids: changes
            .whole_server_ids
            .as_deref()
            .map(|s| bounded("whole_server_ids", s))
            .transpose()?,
        domains: changes
            .domains
            .as_deref()
            .map(|d| normalize_list("domains", d, normalize_domain))
            .transpose()?,
        user_ids: changes
            .user_ids
            .as_deref()
            .map(|u| bounded("user_ids", u))
            .transpose()?,
    })
}

/// Replaces the lists that are given, inside the caller's transaction.
async fn replace_group_lists(tx: &tokio_postgres::Transaction<'_>, id: i64, lists: &GroupLists) -> Result<()> {
    if let Some(servers) = &lists.server_ids {
        // The servers kept keep whether the group owns them whole.
        tx.execute(
            "DELETE FROM group_servers WHERE group_id = $1 AND server_id <> ALL($2::int[])",
            &[&id, servers],
        )
        .await?;
        tx.execute(
            "INSERT INTO group_servers (group_id, server_id) SELECT $1, s FROM unnest($2::int[]) AS s
             ON CONFLICT DO NOTHING",
            &[&id, servers],
        )
        .await
        .map_err(explain)?;
    }
    if let Some(whole) = &lists.whole_server_ids {
        tx.execute(
            "UPDATE group_servers SET owns_whole = (server_id = ANY($2::int[])) WHERE group_id = $1",
            &[&id, whole],
        )
        .await?;
        let owned = tx
            .query_one(
                "SELECT count(*) FROM group_servers WHERE group_id = $1 AND owns_whole",
                &[&id],
            )
            .await?
            .get::<_, i64>(0);
        if owned != whole.len() as i64 {
            return Err(invalid(
                "whole_server_ids",
                "a server the group owns whole must be one of its servers",
            ));
        }
    }
    if let Some(domains) = &lists.domains {
        tx.execute("DELETE FROM group_domains WHERE group_id = $1", &[&id])
            .await?;
        tx.execute(
            "INSERT INTO group_domains (group_id, domain) SELECT $1, d FROM unnest($2::text[]) AS d",
            &[&id, domains],
        )
        .await?;
    }
    if let Some(users) = &lists.user_ids {
        tx.execute("DELETE FROM group_users WHERE group_id = $1", &[&id])
            .await?;
        tx.execute(
            "INSERT INTO group_users (group_id, user_id) SELECT $1, u FROM unnest($2::bigint[]) AS u",
            &[&id, users],
        )
        .await
        .map_err(explain)?;
    }
    Ok(())
}

/// Creates a group (name required) with the lists given; returns it.
pub async fn create_group(client: &mut Client, group: GroupChanges) -> Result<Group> {
    let name = check_group_name(group.name.as_deref().unwrap_or(""))?;
    let lists = group_lists(&group)?;
    let tx = client.transaction().await?;
    let id: i64 = tx
        .query_one("INSERT INTO groups (name) VALUES ($1) RETURNING id", &[&name])
        .await
        .map_err(explain)?
        .get(0);
    replace_group_lists(&tx, id, &lists).await?;
    let group = get_group(&tx, id).await?;
    tx.commit().await?;
    Ok(group)
}

pub async fn update_group(client: &mut Client, id: i64, changes: GroupChanges) -> Result<Group> {
    let name = changes.name.as_deref().map(check_group_name).transpose()?;
    let lists = group_lists(&changes)?;
    let tx = client.transaction().await?;
    let found = tx
        .execute(
            "UPDATE groups SET name = coalesce($2, name) WHERE id = $1",
            &[&id, &name],
        )
        .await
        .map_err(explain)?;
    if found == 0 {
        return Err(AccountError::NotFound(format!("group {id}")));
    }
    replace_group_lists(&tx, id, &lists).await?;
    let group = get_group(&tx, id).await?;
    tx.commit().await?;
    Ok(group)
}

/// Deletes a group; returns its name.
pub async fn delete_group(client: &impl GenericClient, id: i64) -> Result<String> {
    client
        .query_opt("DELETE FROM groups WHERE id = $1 RETURNING name", &[&id])
        .await?
        .map(|row| row.get(0))
        .ok_or_else(|| AccountError::NotFound(format!("group {id}")))
}

const GROUP_COLUMNS: &str = "g.id, g.name,
    ARRAY(SELECT server_id FROM group_servers WHERE group_id = g.id ORDER BY server_id),
    ARRAY(SELECT server_id FROM group_servers WHERE group_id = g.id AND owns_whole ORDER BY server_id),
    ARRAY(SELECT domain FROM group_domains WHERE group_id = g.id ORDER BY domain),
    ARRAY(SELECT user_id FROM group_users WHERE group_id = g.id ORDER BY user_id)";

fn group_from_row(row: &tokio_postgres::Row) -> Group {
    Group {
        id: row.get(0),
        name: row.get(1),
        server_ids: row.get(2),
        whole_server_ids: row.get(3),
        domains: row.get(4),
        user_ids: row.get(5),
    }
}

pub async fn list_groups(client: &impl GenericClient) -> Result<Vec<Group>> {
    let rows = client
        .query(&format!("SELECT {GROUP_COLUMNS} FROM groups g ORDER BY g.name"), &[])
        .await?;
    Ok(rows.iter().map(group_from_row).collect())
}

pub async fn get_group(client: &impl GenericClient, id: i64) -> Result<Group> {
    client
        .query_opt(&format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE g.id = $1"), &[&id])
        .await?
        .map(|row| group_from_row(&row))
        .ok_or_else(|| AccountError::NotFound(format!("group {id}")))
}

/// The id of a group by name, for the command line.
pub async fn group_id(client: &impl GenericClient, name: &str) -> Result<i64> {
    client
        .query_opt("SELECT id FROM groups WHERE name = $1", &[&name])
        .await?
        .map(|row| row.get(0))
        .ok_or_else(|| AccountError::NotFound(format!("group '{name}'")))
}

/// What `elsed group add-*` attaches to a group.
#[derive(Debug, Clone)]
pub enum Member {
    User(String),
    /// A server by name, as its log lines name it, and whether the group owns it whole (sees
    /// every line of it, not only those of its own mail).
    Server {
        name: String,
        whole: bool,
    },
    Domain(String),
}

/// Attaches one user, server or domain to a group (nothing happens if it is there already).
pub async fn add_to_group(client: &Client, group: &str, member: &Member) -> Result<()> {
    let group = group_id(client, group).await?;
    match member {
        Member::User(login) => {
            let user = user_id(client, login).await?;
            client
                .execute(
                    "INSERT INTO group_users (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&group, &user],
                )
                .await?;
        }
        Member::Server { name, whole } => {
            let server: i32 = client
                .query_opt("SELECT id FROM servers WHERE name = $1", &[name])
                .await?
                .map(|row| row.get(0))
                .ok_or_else(|| AccountError::NotFound(format!("server '{name}'")))?;
            client
                .execute(
                    "INSERT INTO group_servers (group_id, server_id, owns_whole) VALUES ($1, $2, $3)
                     ON CONFLICT (group_id, server_id) DO UPDATE SET owns_whole = EXCLUDED.owns_whole",
                    &[&group, &server, whole],
                )
                .await?;
        }
        Member::Domain(domain) => {
            let domain = normalize_domain(domain)?;
            client
                .execute(
                    "INSERT INTO group_domains (group_id, domain) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&group, &domain],
                )
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_passwords_addresses_and_domains_follow_the_rules() {
        assert!(check_login("alice.b-c_d@x+y").is_ok());
        for bad in ["", "a b", "x'; DROP TABLE users; --", &"a".repeat(65), "é"] {
            assert!(check_login(bad).is_err(), "{bad}");
        }
        assert!(check_password("0123456789").is_ok());
        assert!(check_password("ééééééééé").is_err(), "nine characters");
        assert!(check_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert_eq!(normalize_address(" <Bob@Example.COM> ").unwrap(), "bob@example.com");
        for bad in ["bob", "@example.com", "bob@", "a@b@c", "a b@c", "a@b,c@d"] {
            assert!(normalize_address(bad).is_err(), "{bad}");
        }
        assert_eq!(normalize_domain("@Example.COM").unwrap(), "example.com");
        for bad in ["", "@", "a b", "x@y"] {
            assert!(normalize_domain(bad).is_err(), "{bad}");
        }
        let list = normalize_list(
            "domains",
            &["B.org".into(), "b.org".into(), "a.org".into()],
            normalize_domain,
        );
        assert_eq!(list.unwrap(), ["a.org", "b.org"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_enabled_administrator_always_remains() {
        let url = else_tests::PgCluster::shared().create_database().await;
        let mut client = omelse::store::connect(&url).await.unwrap();
        omelse::store::migrate(&mut client).await.unwrap();
        let new = |login: &str, role: Role| NewUser {
            login: login.into(),
            name: String::new(),
            role,
            password: "0123456789".into(),
            groups: vec![],
            addresses: vec![],
        };
        // No administrator yet (a database being set up): users come and go.
        let user = create_user(&client, new("u", Role::User)).await.unwrap();
        assert_eq!(delete_user(&mut client, user).await.unwrap(), "u");
        let a1 = create_user(&client, new("a1", Role::Admin)).await.unwrap();
        let a2 = create_user(&client, new("a2", Role::Admin)).await.unwrap();
        let disable = UserChanges {
            disabled: Some(true),
            ..Default::default()
        };
        update_user(&mut client, a1, disable.clone()).await.unwrap();
        let demote = UserChanges {
            role: Some(Role::User),
            ..Default::default()
        };
        for outcome in [
            update_user(&mut client, a2, demote.clone()).await.map(|_| ()),
            update_user(&mut client, a2, disable).await.map(|_| ()),
            delete_user(&mut client, a2).await.map(|_| ()),
        ] {
            assert!(matches!(outcome, Err(AccountError::Conflict(_))), "{outcome:?}");
        }
        assert_eq!(
            get_user(&client, a2).await.unwrap().role,
            Role::Admin,
            "refusals changed nothing"
        );
        let enable = UserChanges {
            disabled: Some(false),
            ..Default::default()
        };
        update_user(&mut client, a1, enable).await.unwrap();
        update_user(&mut client, a2, demote).await.unwrap();
        assert!(matches!(
            create_user(&client, new("A1", Role::User)).await,
            Err(AccountError::Conflict(_))
        ));
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", Some(&hash)).await);
        assert!(!verify_password("correct horse batterY", Some(&hash)).await);
        assert!(
            !verify_password("correct horse battery", None).await,
            "no account, no login"
        );
        assert!(!verify_password("x", Some("not a hash")).await);
    }
}
