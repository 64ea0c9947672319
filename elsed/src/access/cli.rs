//! `elsed user …` and `elsed group …`: the accounts of the web application from the command line
//! (the first administrator, scripts, a forgotten password). Same rules as the admin API
//! ([`super::accounts`]); every change is audited with the actor `cli:<unix user>`.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;
use tokio_postgres::Client;

use super::audit;
use super::caller::Role;
use crate::access::accounts::{self, AccountError, Member, NewUser, UserChanges};
use crate::{db, Settings};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (the password is asked for, or read from --password-file)
    Add(UserAddArgs),
    /// Set an account's password; its sessions end
    Passwd {
        login: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// List the accounts
    List {
        /// One JSON object per line
        #[arg(long)]
        json: bool,
    },
    /// Disable an account (its sessions end), or enable it again
    Disable {
        login: String,
        /// Enable the account instead
        #[arg(long)]
        enable: bool,
    },
    /// Delete an account
    Delete { login: String },
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    login: String,
    /// admin (everything), user (their groups' servers and domains), enduser (their own addresses)
    #[arg(long, default_value = "user", value_parser = parse_role)]
    role: Role,
    /// Full name, for display
    #[arg(long, default_value = "")]
    name: String,
    /// A group to join (by name), repeatable
    #[arg(long = "group", value_name = "NAME")]
    groups: Vec<String>,
    /// An end user's own mail address, repeatable
    #[arg(long = "address", value_name = "ADDRESS")]
    addresses: Vec<String>,
    #[command(flatten)]
    password: PasswordSource,
}

#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from the first line of this file (yours, mode 0600; - for standard
    /// input) instead of asking for it
    #[arg(long, value_name = "PATH")]
    password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group
    Add { name: String },
    /// List the groups with their servers, domains and members
    List {
        /// One JSON object per line
        #[arg(long)]
        json: bool,
    },
    /// Delete a group (its members keep their accounts)
    Delete { name: String },
    /// Make a user a member of a group
    AddUser { group: String, login: String },
    /// Let a group see a server (by the name its log lines carry): the lines of the group's
    /// mail, or with --whole every line of it
    AddServer {
        group: String,
        server: String,
        /// The group owns the server whole: its members see every line of it, those that belong
        /// to no message (daemon starts, warnings) too; without it, adding the server again
        /// takes that away
        #[arg(long)]
        whole: bool,
    },
    /// Let a group see a mail domain
    AddDomain { group: String, domain: String },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

/// Who did it, in the audit log.
fn actor() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

/// The password from the file, standard input, or a prompt without echo (asked twice).
fn read_password(source: &PasswordSource) -> anyhow::Result<String> {
    let first_line = |reader: &mut dyn BufRead| -> anyhow::Result<String> {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    };
    match &source.password_file {
        Some(path) => crate::secret_file::read_password(path, "password file"),
        None if !std::io::stdin().is_terminal() => first_line(&mut std::io::stdin().lock()),
        None => {
            let password = rpassword::prompt_password("Password: ")?;
            accounts::check_password(&password)?;
            if rpassword::prompt_password("Again: ")? != password {
                anyhow::bail!("the two passwords differ");
            }
            Ok(password)
        }
    }
}

/// Connected, with the schema up to date (the first account may be made on a new database).
async fn connect(settings: &Settings) -> anyhow::Result<Client> {
    let mut client = db::connect(&settings.database()?).await?;
    db::migrate(&mut client).await?;
    Ok(client)
}

/// Records the outcome in the audit log and passes it on.
async fn audited<T>(
    client: &Client,
    action: &str,
    target: &str,
    details: serde_json::Value,
    outcome: Result<T, AccountError>,
) -> anyhow::Result<T> {
    let result = match &outcome {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("refused: {e}"),
    };
    audit::record(client, &actor(), action, Some(target), details, &result).await?;
    Ok(outcome?)
}

/// `elsed user …`.
pub async fn run_user(command: UserCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    // Asked before connecting: a typo in the prompt should not wait for the database.
    let password = match &command {
        UserCommand::Add(args) => Some(read_password(&args.password)?),
        UserCommand::Passwd { password, .. } => Some(read_password(password)?),
        _ => None,
    };
    let mut client = connect(settings).await?;
    match command {
        UserCommand::Add(args) => {
            let mut groups = Vec::new();
            for name in &args.groups {
                groups.push(accounts::group_id(&client, name).await?);
            }
            let details = json!({ "login": args.login, "role": args.role, "groups": args.groups,
                                  "addresses": args.addresses });
            let new = NewUser {
                login: args.login.clone(),
                name: args.name,
                role: args.role,
                password: password.unwrap_or_default(),
                groups,
                addresses: args.addresses,
            };
            let outcome = accounts::create_user(&client, new).await;
            let id = audited(&client, "user.create", &args.login, details, outcome).await?;
            println!("created {} '{}' (id {id})", args.role.as_str(), args.login);
        }
        UserCommand::Passwd { login, .. } => {
            let id = accounts::user_id(&client, &login).await?;
            let changes = UserChanges {
                password,
                ..UserChanges::default()
            };
            let outcome = accounts::update_user(&mut client, id, changes).await;
            audited(
                &client,
                "user.update",
                &login,
                json!({ "password": "changed" }),
                outcome,
            )
            .await?;
            println!("password of '{login}' changed; its sessions ended");
        }
        UserCommand::Disable { login, enable } => {
            let id = accounts::user_id(&client, &login).await?;
            let changes = UserChanges {
                disabled: Some(!enable),
                ..UserChanges::default()
            };
            let outcome = accounts::update_user(&mut client, id, changes).await;
            audited(&client, "user.update", &login, json!({ "disabled": !enable }), outcome).await?;
            println!("'{login}' {}", if enable { "enabled" } else { "disabled" });
        }
        UserCommand::Delete { login } => {
            let id = accounts::user_id(&client, &login).await?;
            let outcome = accounts::delete_user(&mut client, id).await;
            audited(&client, "user.delete", &login, json!({ "id": id }), outcome).await?;
            println!("deleted '{login}'");
        }
        UserCommand::List { json } => {
            let users = accounts::list_users(&client).await?;
            let groups = accounts::list_groups(&client).await?;
            let group_name = |id: &i64| {
                groups
                    .iter()
                    .find(|g| g.id == *id)
                    .map_or_else(|| id.to_string(), |g| g.name.clone())
            };
            for user in users {
                if json {
                    println!("{}", serde_json::to_string(&user)?);
                    continue;
                }
                let groups: Vec<String> = user.groups.iter().map(group_name).collect();
                println!(
                    "{:<6} {:<24} {:<8} {:<9} {:<24} groups: {}  addresses: {}",
                    user.id,
                    user.login,
                    user.role.as_str(),
                    if user.disabled { "disabled" } else { "enabled" },
                    user.name,
                    groups.join(","),
                    user.addresses.join(",")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `elsed group …`.
pub async fn run_group(command: GroupCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let mut client = connect(settings).await?;
    let (group, member) = match command {
        GroupCommand::Add { name } => {
            let changes = accounts::GroupChanges {
                name: Some(name.clone()),
                ..Default::default()
            };
            let outcome = accounts::create_group(&mut client, changes).await;
            let group = audited(&client, "group.create", &name, json!({ "name": name }), outcome).await?;
            println!("created group '{}' (id {})", group.name, group.id);
            return Ok(ExitCode::SUCCESS);
        }
        GroupCommand::Delete { name } => {
            let id = accounts::group_id(&client, &name).await?;
            let outcome = accounts::delete_group(&client, id).await;
            audited(&client, "group.delete", &name, json!({ "id": id }), outcome).await?;
            println!("deleted group '{name}'");
            return Ok(ExitCode::SUCCESS);
        }
        GroupCommand::List { json } => {
            list_groups(&client, json).await?;
            return Ok(ExitCode::SUCCESS);
        }
        GroupCommand::AddUser { group, login } => (group, Member::User(login)),
        GroupCommand::AddServer { group, server, whole } => (group, Member::Server { name: server, whole }),
        GroupCommand::AddDomain { group, domain } => (group, Member::Domain(domain)),
    };
    let details = match &member {
        Member::User(login) => json!({ "user": login }),
        Member::Server { name, whole } => json!({ "server": name, "whole": whole }),
        Member::Domain(domain) => json!({ "domain": domain }),
    };
    let outcome = accounts::add_to_group(&client, &group, &member).await;
    audited(&client, "group.update", &group, details, outcome).await?;
    println!("group '{group}' updated");
    Ok(ExitCode::SUCCESS)
}

async fn list_groups(client: &Client, json: bool) -> anyhow::Result<()> {
    let groups = accounts::list_groups(client).await?;
    let servers: Vec<(i32, String)> = client
        .query("SELECT id, name FROM servers", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let users = accounts::list_users(client).await?;
    for group in groups {
        let server_names: Vec<String> = group
            .server_ids
            .iter()
            .map(|id| {
                let name = servers
                    .iter()
                    .find(|s| s.0 == *id)
                    .map_or_else(|| id.to_string(), |s| s.1.clone());
                // A server the group owns whole is marked in the text listing.
                if group.whole_server_ids.contains(id) && !json {
                    format!("{name}(whole)")
                } else {
                    name
                }
            })
            .collect();
        let logins: Vec<String> = group
            .user_ids
            .iter()
            .map(|id| {
                users
                    .iter()
                    .find(|u| u.id == *id)
                    .map_or_else(|| id.to_string(), |u| u.login.clone())
            })
            .collect();
        if json {
            let mut value = serde_json::to_value(&group)?;
            value["servers"] = json!(server_names);
            value["users"] = json!(logins);
            println!("{value}");
        } else {
            println!(
                "{:<6} {:<24} servers: {}  domains: {}  users: {}",
                group.id,
                group.name,
                server_names.join(","),
                group.domains.join(","),
                logins.join(",")
            );
        }
    }
    Ok(())
}
