//! SNMP credentials at rest: encrypted in the database with XChaCha20-Poly1305 (the RustCrypto
//! `chacha20poly1305` crate), the key in a file only elsed's user can read.
//!
//! Why not a root-only file of credentials: the web application edits the server inventory, and
//! a file it could write would need the same protection as this key anyway. Encrypting in elsed
//! (not with pgcrypto) keeps the key out of SQL statements and PostgreSQL's logs; a database dump
//! or a read-only SQL account reveals no passphrase.

use std::path::Path;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

/// The passphrases and communities of one agent (only those its version uses are set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSecrets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_community: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_community: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_auth_pass: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_priv_pass: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_auth_pass: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_priv_pass: Option<String>,
}

/// The encryption key (32 bytes).
#[derive(Clone)]
pub struct SecretKey(XChaCha20Poly1305);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    /// Reads the key file: 64 hexadecimal digits, a secret file (`else:else`, mode 0600; see
    /// [`crate::secret_file`]).
    pub fn load(path: &Path) -> anyhow::Result<SecretKey> {
        if !path.exists() {
            anyhow::bail!(
                "SNMP key file {0}: not found (create it with `elsed snmp keygen {0}`)",
                path.display()
            );
        }
        let text = crate::secret_file::read(path, "SNMP key file")?;
        SecretKey::from_hex(text.trim())
            .ok_or_else(|| anyhow::anyhow!("SNMP key file {}: not 64 hexadecimal digits", path.display()))
    }

    fn from_hex(text: &str) -> Option<SecretKey> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect();
        XChaCha20Poly1305::new_from_slice(&bytes?).ok().map(SecretKey)
    }

    /// Writes a new random key to `path` as a secret file (mode 0600, `else:else` when root
    /// runs it); never overwrites. Returns the file's owner.
    pub fn generate(path: &Path) -> anyhow::Result<String> {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        crate::secret_file::create(path, format!("{hex}\n").as_bytes())
    }

    /// nonce (24 bytes) ‖ ciphertext of the JSON form.
    pub fn seal(&self, secrets: &AgentSecrets) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let plain = serde_json::to_vec(secrets).expect("secrets serialise");
        let sealed = self
            .0
            .encrypt(&nonce, plain.as_slice())
            .expect("encryption of a small buffer");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// The secrets, or an error when the key is not the one they were sealed with.
    pub fn open(&self, sealed: &[u8]) -> anyhow::Result<AgentSecrets> {
        if sealed.len() < 24 {
            anyhow::bail!("stored SNMP secrets are truncated");
        }
        let (nonce, cipher) = sealed.split_at(24);
        let plain = self.0.decrypt(XNonce::from_slice(nonce), cipher).map_err(|_| {
            anyhow::anyhow!("stored SNMP secrets do not open with this key (was the key file replaced?)")
        })?;
        Ok(serde_json::from_slice(&plain)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_a_wrong_key_is_an_error() {
        let dir = std::env::temp_dir().join(format!("else-snmp-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.key"), dir.join("b.key"));
        SecretKey::generate(&a).unwrap();
        SecretKey::generate(&b).unwrap();
        assert!(SecretKey::generate(&a).is_err(), "never overwrites");
        let key = SecretKey::load(&a).unwrap();
        let secrets = AgentSecrets {
            read_auth_pass: Some("poll passphrase".into()),
            read_priv_pass: Some("privacy passphrase".into()),
            ..AgentSecrets::default()
        };
        let sealed = key.seal(&secrets);
        assert!(!String::from_utf8_lossy(&sealed).contains("passphrase"));
        assert_eq!(key.open(&sealed).unwrap(), secrets);
        assert!(SecretKey::load(&b).unwrap().open(&sealed).is_err());
        assert!(key.open(&sealed[..10]).is_err());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(SecretKey::load(&a).unwrap_err().to_string().contains("chmod 600"));
        assert!(SecretKey::load(&dir.join("none"))
            .unwrap_err()
            .to_string()
            .contains("elsed snmp keygen"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
