//! `elsed setup`: the first run on a new ELSE server. Over a superuser's connection it creates the
//! role ELSE connects as, the database that role owns, and the schema (as that role, so that it
//! owns the tables and `elsed migrate` can upgrade them later without a superuser). Every step
//! is skipped when already done, so running it again is harmless.
//!
//! Names cannot be bound parameters in `CREATE ROLE`/`CREATE DATABASE`; they are checked to be
//! plain identifiers and still quoted by the server (`format('%I')`). The password never travels
//! in clear: the SCRAM verifier is computed here, as `psql`'s `\password` does.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use omelse::store;
use tokio_postgres::Client;

use crate::access::Role;
use crate::access::{accounts, audit};
use crate::{db, secret_file, Settings};

/// The superuser connection when none is given: the local socket, as the OS user running setup
/// (`sudo -u postgres elsed setup`).
pub const DEFAULT_SUPERUSER_URL: &str = "host=/run/postgresql dbname=postgres";

/// What ELSE's own connection defaults to (the package's unit runs as the `else` OS user, which
/// peer authentication maps to the role of the same name).
const DEFAULT_NAME: &str = "else";

#[derive(Debug, Args)]
#[command(long_about = "Create the database role, the database and the schema ELSE needs \
    (first run on a new server; running it again only does what is missing).\n\n\
    --database-url is here a SUPERUSER's connection [default: host=/run/postgresql dbname=postgres, \
    as the current OS user, e.g. `sudo -u postgres elsed setup`]. Setup reads no configuration \
    file unless --config names one; the role and database default to the user and dbname of its \
    database.url, else `else`. Password files are secret files (the caller's, mode 0600), or - \
    (or /dev/stdin) for standard input. At the end it prints the pg_ident.conf and pg_hba.conf \
    lines that let the services and rsyslogd in as the role.")]
pub struct SetupArgs {
    /// Role that owns the database and that elsed and omelse.so connect as [default: database.url's user, else `else`]
    #[arg(long, value_name = "NAME")]
    owner_role: Option<String>,
    /// Database to create [default: database.url's dbname, else `else`]
    #[arg(long = "database", value_name = "NAME")]
    database: Option<String>,
    /// File whose first line is the owner role's password, - for standard input (without it: no password, local peer authentication only)
    #[arg(long, value_name = "PATH")]
    owner_password_file: Option<PathBuf>,
    /// First administrator account of the web application
    #[arg(long, value_name = "NAME", requires = "admin_password_file")]
    admin_user: Option<String>,
    /// File whose first line is the first administrator's password, - for standard input
    #[arg(long, value_name = "PATH", requires = "admin_user")]
    admin_password_file: Option<PathBuf>,
}

pub async fn run(args: &SetupArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    // Only an explicit connection is a superuser's: database.url of the file is ELSE's own.
    let superuser_url = settings.database_url.as_deref().unwrap_or(DEFAULT_SUPERUSER_URL);
    let configured: Option<tokio_postgres::Config> =
        settings.config.database.url.as_deref().and_then(|u| u.parse().ok());
    let role = args
        .owner_role
        .clone()
        .or_else(|| configured.as_ref().and_then(|c| c.get_user().map(str::to_owned)))
        .unwrap_or_else(|| DEFAULT_NAME.to_owned());
    let database = args
        .database
        .clone()
        .or_else(|| configured.as_ref().and_then(|c| c.get_dbname().map(str::to_owned)))
        .unwrap_or_else(|| DEFAULT_NAME.to_owned());
    check_identifier("--owner-role", &role)?;
    check_identifier("--database", &database)?;
    let stdin_files = [&args.owner_password_file, &args.admin_password_file]
        .into_iter()
        .flatten()
        .filter(|p| secret_file::is_stdin(p))
        .count();
    anyhow::ensure!(
        stdin_files <= 1,
        "only one of --owner-password-file and --admin-password-file may be standard input"
    );
    let password = args
        .owner_password_file
        .as_deref()
        .map(|p| secret_file::read_password(p, "--owner-password-file"))
        .transpose()?;
    let admin = match (&args.admin_user, &args.admin_password_file) {
        (Some(user), Some(file)) => Some((user.clone(), secret_file::read_password(file, "--admin-password-file")?)),
        _ => None,
    };

    let options = store::ConnectOptions {
        application_name: Some("elsed setup".into()),
        ca_file: settings.config.database.ca_file.clone(),
    };
    let connect = |url: String| {
        let options = options.clone();
        async move {
            store::connect_with(&url, &options)
                .await
                .map_err(|e| db::connect_error("as a superuser", &url, &e))
        }
    };
    let admin_client = connect(superuser_url.to_owned()).await?;
    require_privileges(&admin_client).await?;

    ensure_role(&admin_client, &role, password.as_deref()).await?;
    ensure_database(&admin_client, &database, &role).await?;
    drop(admin_client);

    // The schema, created by the owner role (SET ROLE from the superuser session) so it owns it.
    let mut client = connect(with_dbname(superuser_url, &database)).await?;
    client
        .batch_execute(&format!("SET ROLE {}", quote_identifier(&role)))
        .await?;
    let applied = db::migrate(&mut client).await?;
    let version = store::schema_version(&client).await?;
    if applied.is_empty() {
        println!("schema: up to date (version {version})");
    } else {
        println!("schema: created/upgraded to version {version}");
    }
    db::sync_servers(&client, &settings.config.servers).await?;

    match admin {
        Some((login, password)) => ensure_admin(&client, &login, password).await?,
        None => {
            let admins: i64 = client
                .query_one("SELECT count(*) FROM users WHERE role = 'admin'", &[])
                .await?
                .get(0);
            if admins == 0 {
                println!("admin account: none yet (elsed user add --role admin LOGIN, or setup --admin-user)");
            }
        }
    }
    client.batch_execute("RESET ROLE").await?;

    let url = format!("host=/run/postgresql dbname={database} user={role}");
    println!("done. In /etc/else/elsed.toml: [database] url = \"{url}\"");
    println!("     In /etc/rsyslog.d/else-server.conf: conninfo=\"{url}\"");
    print!("{}", authentication_lines(&role, &database, password.is_some()));
    Ok(ExitCode::SUCCESS)
}

/// What PostgreSQL on this machine needs to let ELSE in as `role`: peer authentication through
/// a map that admits the services' OS user and root (rsyslogd, which loads omelse.so), and, with
/// a password, SCRAM over TCP from this machine.
fn authentication_lines(role: &str, database: &str, password: bool) -> String {
    let user = secret_file::SERVICE_USER;
    let mut text = format!(
        "PostgreSQL on this machine: let the services ({user}) and rsyslogd (root) in as {role}\n\
         \x20 pg_ident.conf:\n\
         \x20   {role}  {user}  {role}\n\
         \x20   {role}  root  {role}\n\
         \x20 pg_hba.conf, before the generic \"local all all peer\" line:\n\
         \x20   local  {database}  {role}  peer  map={role}\n"
    );
    if password {
        text.push_str(&format!(
            "\x20   host   {database}  {role}  127.0.0.1/32  scram-sha-256\n"
        ));
    }
    text.push_str("  then reload PostgreSQL (systemctl reload postgresql)\n");
    text
}

/// The first administrator of the web application, made as `elsed user add --role admin` makes
/// it (same checks, audited); an account of that name already there is left as it is.
async fn ensure_admin(client: &Client, login: &str, password: String) -> anyhow::Result<()> {
    if accounts::user_id(client, login).await.is_ok() {
        println!("admin account {login}: exists (left as it is)");
        return Ok(());
    }
    let new = accounts::NewUser {
        login: login.to_owned(),
        name: String::new(),
        role: Role::Admin,
        password,
        groups: Vec::new(),
        addresses: Vec::new(),
    };
    let outcome = accounts::create_user(client, new).await;
    let result = match &outcome {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("refused: {e}"),
    };
    let details = serde_json::json!({ "login": login, "role": "admin", "by": "elsed setup" });
    audit::record(client, "cli:elsed setup", "user.create", Some(login), details, &result).await?;
    let id = outcome.map_err(|e| anyhow::anyhow!("admin account {login}: {e}"))?;
    println!("admin account {login}: created (id {id})");
    Ok(())
}

/// Role and database names: plain identifiers, so that they need no quoting in connection strings.
fn check_identifier(flag: &str, name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let plain = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63;
    anyhow::ensure!(
        plain,
        "{flag} {name:?}: use letters, digits and _ (not first), at most 63 characters"
    );
    Ok(())
}

/// `"name"`, for the one statement that takes no format(): SET ROLE (the name is checked plain).
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The connection string pointed at another database: `dbname` given again wins, in both forms.
fn with_dbname(url: &str, database: &str) -> String {
    if url.contains("://") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}dbname={database}")
    } else {
        format!("{url} dbname={database}")
    }
}

async fn require_privileges(client: &Client) -> anyhow::Result<()> {
    let row = client
        .query_one(
            "SELECT current_user::text, rolsuper OR (rolcreaterole AND rolcreatedb)
             FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?;
    let (user, able): (String, bool) = (row.get(0), row.get(1));
    anyhow::ensure!(
        able,
        "the role {user:?} may not create roles and databases: give a superuser's connection with \
         --database-url (or run `sudo -u postgres elsed setup`)"
    );
    Ok(())
}

async fn ensure_role(client: &Client, role: &str, password: Option<&str>) -> anyhow::Result<()> {
    let exists = client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
        .await?
        .is_some();
    if exists {
        println!("role {role}: exists");
    } else {
        execute_formatted(client, "SELECT format('CREATE ROLE %I LOGIN', $1::text)", &[&role]).await?;
        println!("role {role}: created");
    }
    if let Some(password) = password {
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        execute_formatted(
            client,
            "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)",
            &[&role, &verifier],
        )
        .await?;
        println!("role {role}: password set");
    }
    Ok(())
}

async fn ensure_database(client: &Client, database: &str, role: &str) -> anyhow::Result<()> {
    let owner: Option<String> = client
        .query_opt(
            "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1",
            &[&database],
        )
        .await?
        .map(|row| row.get(0));
    match owner {
        None => {
            execute_formatted(
                client,
                "SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8'' TEMPLATE template0', $1::text, $2::text)",
                &[&database, &role],
            )
            .await?;
            println!("database {database}: created, owned by {role}");
        }
        Some(owner) if owner == role => println!("database {database}: exists"),
        Some(owner) => anyhow::bail!(
            "database {database} exists but belongs to {owner}, not {role}: choose another \
             --database, or give it with ALTER DATABASE {database} OWNER TO {role}"
        ),
    }
    Ok(())
}

/// Runs the statement the server built with `format()` from bound values.
async fn execute_formatted(
    client: &Client,
    builder: &str,
    values: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> anyhow::Result<()> {
    let statement: String = client.query_one(builder, values).await?.get(0);
    client.batch_execute(&statement).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_identifiers() {
        for good in ["else", "_x", "Else_2"] {
            assert!(check_identifier("--database", good).is_ok(), "{good}");
        }
        for bad in ["", "2x", "a-b", "a\"b", "a b", &"x".repeat(64)] {
            let e = check_identifier("--database", bad).unwrap_err().to_string();
            assert!(e.contains("--database"), "{e}");
        }
    }

    #[test]
    fn another_database_in_both_connection_forms() {
        assert_eq!(
            with_dbname("host=/run/postgresql dbname=postgres", "else"),
            "host=/run/postgresql dbname=postgres dbname=else"
        );
        assert_eq!(
            with_dbname("postgresql://u@h/postgres", "else"),
            "postgresql://u@h/postgres?dbname=else"
        );
        assert_eq!(
            with_dbname("postgresql://u@h/postgres?sslmode=require", "else"),
            "postgresql://u@h/postgres?sslmode=require&dbname=else"
        );
        for url in [
            "host=/run/postgresql dbname=postgres",
            "postgresql://u@h/postgres?sslmode=require",
        ] {
            let parsed: tokio_postgres::Config = with_dbname(url, "else").parse().unwrap();
            assert_eq!(parsed.get_dbname(), Some("else"));
        }
    }
}
