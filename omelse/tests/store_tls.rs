//! A TLS connection to PostgreSQL: with the CA that signed the server's certificate it works and
//! is encrypted; with an unknown CA or another host name it is refused, never silently plain.

use std::path::Path;
use std::process::Command;

use else_tests::PgCluster;
use omelse::store::{connect_with, ConnectOptions};

/// A CA and a server certificate for `localhost`, readable by the `postgres` user, and a second
/// CA that signed nothing of it.
fn certificates(dir: &Path) {
    else_tests::tls::certificates(dir, "ELSE test CA", &[("server", "localhost")]);
    let other = else_tests::tls::certificates(&dir.join("other"), "Another CA", &[]);
    std::fs::copy(other.join("ca.pem"), dir.join("other.pem")).unwrap();
    // PostgreSQL runs as `postgres` and wants its key private to it.
    let _ = Command::new("chown").args(["-R", "postgres"]).arg(dir).status();
    let _ = Command::new("chmod").args(["600"]).arg(dir.join("server.key")).status();
    let _ = Command::new("chmod").args(["755"]).arg(dir).status();
}

#[tokio::test]
async fn tls_connections_verify_the_server_certificate() {
    if else_tests::require::tool("/usr/bin/openssl", "openssl").is_none() {
        return;
    }
    let cluster = PgCluster::start().expect("private cluster");
    let dir = std::env::temp_dir().join(format!("else-tls-{}", std::process::id()));
    certificates(&dir);
    let admin = omelse::store::connect(cluster.admin_url()).await.unwrap();
    for statement in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{}/server.pem'", dir.display()),
        format!("ALTER SYSTEM SET ssl_key_file = '{}/server.key'", dir.display()),
        "ALTER SYSTEM SET ssl = on".to_string(),
        "SELECT pg_reload_conf()".to_string(),
    ] {
        admin.simple_query(&statement).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let port = cluster.port().expect("own cluster");
    let url = format!("host=localhost port={port} user=postgres dbname=postgres sslmode=require");

    let trusted = ConnectOptions {
        ca_file: Some(dir.join("ca.pem")),
        ..Default::default()
    };
    let client = connect_with(&url, &trusted).await.expect("TLS with the right CA");
    let encrypted: bool = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(encrypted, "the session is encrypted");

    let untrusted = ConnectOptions {
        ca_file: Some(dir.join("other.pem")),
        ..Default::default()
    };
    let Err(refused) = connect_with(&url, &untrusted).await else {
        panic!("a server certificate from an unknown CA is refused");
    };
    assert!(
        format!("{refused:?}").contains("InvalidCertificate(UnknownIssuer)"),
        "{refused:?}"
    );

    let wrong_name =
        format!("host=127.0.0.1 hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=require");
    assert!(
        connect_with(&wrong_name, &trusted).await.is_err(),
        "a certificate for localhost does not cover 127.0.0.1"
    );

    // A CA file alone asks for TLS, even without sslmode in the connection string.
    let implicit = format!("host=localhost port={port} user=postgres dbname=postgres");
    let client = connect_with(&implicit, &trusted).await.expect("TLS from the CA file");
    let encrypted: bool = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(encrypted);
    let _ = std::fs::remove_dir_all(&dir);
}
