//! `elsed`: ELSE's daemon and command line.
//!
//! Every subcommand reads the same settings: flags first, then `ELSE_*` environment variables, then
//! the configuration file (`/etc/else/elsed.toml` or `--config`), then the defaults.

#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use elsed::config::Config;
use elsed::{
    access, check_config, greylist, import, maintain, migrate, ndr, parse, report, search, setup, shutdown, snmp,
    status, web, Settings,
};

#[derive(Debug, Parser)]
#[command(
    name = "elsed",
    version,
    about = "ELSE: Postfix logs of a whole fleet, per message, in PostgreSQL",
    long_about = "ELSE: Postfix logs of a whole fleet, per message, in PostgreSQL.\n\n\
                  Settings come from the flags, then ELSE_* environment variables, then the \
                  configuration file (/etc/else/elsed.toml or --config), then the defaults."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
struct Common {
    /// Configuration file [default: /etc/else/elsed.toml, if it exists]
    #[arg(long, global = true, value_name = "PATH", env = "ELSE_CONFIG")]
    config: Option<PathBuf>,
    /// PostgreSQL connection: a URL (postgresql://user@host/db) or `key=value` words
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "ELSE_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or upgrade the database schema
    Migrate,
    /// Import Postfix log files (plain or gzip, or - for standard input) into the database
    Import(import::ImportArgs),
    /// Parse log lines from standard input and print one JSON object per line
    Parse(parse::ParseArgs),
    /// Find messages in the database
    Search(search::SearchArgs),
    /// Schema version, servers and the ingest counters of the rsyslog module
    Status(status::StatusArgs),
    /// pflogsumm's report from the database: totals, traffic, domains, senders, problems
    Report(report::ReportArgs),
    /// Housekeeping: retention (drop old partitions), rollups, expired greylisting state
    Maintain(maintain::MaintainArgs),
    /// Run GreyLSE, the greylisting policy service for Postfix (`[greylist]` of the configuration)
    Greylist,
    /// Receive the NDRs of the Postfix servers over LMTP/SMTP and store them
    Ndr(ndr::NdrArgs),
    /// Serve the web application and its JSON API
    Serve(web::ServeArgs),
    /// First run: create the database role, the database and the schema (a superuser's --database-url)
    Setup(setup::SetupArgs),
    /// Check the configuration (file and ELSE_* environment): names the key and the problem
    CheckConfig,
    /// SNMP: poll the Postfix servers' agents, act on their queues, configure agents
    Snmp(snmp::cli::SnmpArgs),
    /// Accounts of the web application: add, passwd, list, disable, delete
    #[command(subcommand)]
    User(access::cli::UserCommand),
    /// Groups of the web application: which servers and domains their members see
    #[command(subcommand)]
    Group(access::cli::GroupCommand),
    /// Print the OpenAPI document of the JSON API (what web/'s `npm run api-types` reads)
    #[command(hide = true)]
    Openapi,
}

fn main() -> ExitCode {
    snmp::load_no_mib_modules();
    let cli = Cli::parse();
    // Logs go to stderr (stdout is for results); RUST_LOG overrides the default level. The
    // database's notices (`relation already exists, skipping`) are not news. Colours only on a
    // terminal; under systemd (JOURNAL_STREAM set, stderr not a terminal) no timestamp either:
    // the journal stamps every line itself.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(terminal)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn")),
        );
    if !terminal && std::env::var_os("JOURNAL_STREAM").is_some() {
        logs.without_time().init();
    } else {
        logs.init();
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("elsed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = match (&cli.command, &cli.common.config) {
        // Setup runs as the PostgreSQL superuser: the services' file is not its to read.
        (Command::Setup(_), None) => Config::load_environment_only()?,
        (_, explicit) => Config::load(explicit.as_deref())?,
    };
    let settings = Settings::new(config, cli.common.database_url);
    match cli.command {
        // Parsing needs neither the database nor an async runtime.
        Command::Parse(args) => parse::run(&args, &settings),
        Command::CheckConfig => check_config::run(&settings),
        Command::Openapi => web::print_openapi(),
        Command::Migrate => block_on(migrate::run(&settings)),
        Command::Setup(args) => block_on(setup::run(&args, &settings)),
        Command::Import(args) => block_on(import::run(args, &settings)),
        Command::Search(args) => block_on(search::run(&args, &settings)),
        Command::Status(args) => block_on(status::run(&args, &settings)),
        Command::Report(args) => block_on(report::run(&args, &settings)),
        Command::Maintain(args) => block_on(shutdown::or_signal("maintain", maintain::run(&args, &settings))),
        Command::Greylist => block_on(shutdown::or_signal("greylist", greylist::run(&settings))),
        Command::Ndr(args) => block_on(shutdown::or_signal("ndr", ndr::run(&args, &settings))),
        Command::Serve(args) => block_on(web::run(&args, &settings)),
        Command::Snmp(args) => block_on(snmp::cli::run(&args, &settings)),
        Command::User(command) => block_on(access::cli::run_user(command, &settings)),
        Command::Group(command) => block_on(access::cli::run_group(command, &settings)),
    }
}

/// Runs a database command on a small runtime: the work is one connection and one parser thread.
fn block_on(command: impl std::future::Future<Output = anyhow::Result<ExitCode>>) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
