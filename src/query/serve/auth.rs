//! Who may connect to `serve`: a users file, one `name:secret` a line, checked by SCRAM-SHA-256
//! (the password never crosses the wire, with or without TLS).
//!
//! A secret is the password itself, or what `auditlake serve --hash-password` prints:
//! `scram-sha-256:<iterations>:<salt>:<salted password>` (base64), so that the file does not
//! hold the password. The salted password still lets whoever reads the file log in to this
//! server (SCRAM needs it), but not reuse the password elsewhere; keep the file private either
//! way. Blank lines and lines starting with `#` are ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use datafusion_postgres::pgwire::api::auth::sasl::scram::{SCRAM_ITERATIONS, gen_salted_password};
use datafusion_postgres::pgwire::api::auth::{AuthSource, LoginInfo, Password};
use datafusion_postgres::pgwire::error::PgWireResult;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, Result};

const HASHED_PREFIX: &str = "scram-sha-256:";

/// The users allowed to connect, with their salted passwords.
#[derive(Clone)]
pub struct Users {
    /// name -> (salt, salted password)
    by_name: HashMap<String, (Vec<u8>, Vec<u8>)>,
    /// Whence they came, for messages.
    pub path: PathBuf,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: the salted passwords are credentials for this server.
        let mut names: Vec<&String> = self.by_name.keys().collect();
        names.sort();
        f.debug_struct("Users").field("names", &names).field("path", &self.path).finish()
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    SystemRandom::new().fill(&mut out).expect("the system's random source");
    out
}

/// The hashed form of `password` for a users file.
pub fn hash_password(password: &str) -> String {
    let salt = random_bytes(16);
    let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
    format!("{HASHED_PREFIX}{SCRAM_ITERATIONS}:{}:{}", STANDARD.encode(&salt), STANDARD.encode(salted))
}

impl Users {
    /// Reads a users file; names the line of any mistake.
    pub fn read(path: &Path) -> Result<Users> {
        let bad = |line: usize, reason: String| Error::UsersFile { path: path.display().to_string(), line, reason };
        let text = std::fs::read_to_string(path).map_err(|e| bad(0, e.to_string()))?;
        let mut by_name = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, secret)) = line.split_once(':') else {
                return Err(bad(i + 1, "expected name:password".into()));
            };
            let (name, secret) = (name.trim(), secret.trim());
            if name.is_empty() || secret.is_empty() {
                return Err(bad(i + 1, "empty name or password".into()));
            }
            let entry = match secret.strip_prefix(HASHED_PREFIX) {
                Some(hashed) => parse_hashed(hashed).map_err(|reason| bad(i + 1, reason))?,
                None => {
                    let salt = random_bytes(16);
                    let salted = gen_salted_password(secret, &salt, SCRAM_ITERATIONS);
                    (salt, salted)
                }
            };
            if by_name.insert(name.to_string(), entry).is_some() {
                return Err(bad(i + 1, format!("user '{name}' is listed twice")));
            }
        }
        if by_name.is_empty() {
            return Err(bad(0, "no users: add a line name:password".into()));
        }
        Ok(Users { by_name, path: path.to_path_buf() })
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

fn parse_hashed(hashed: &str) -> std::result::Result<(Vec<u8>, Vec<u8>), String> {
    let mut parts = hashed.split(':');
    let (Some(iterations), Some(salt), Some(salted), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("a hashed password is scram-sha-256:<iterations>:<salt>:<salted password>".into());
    };
    if iterations.parse::<usize>().ok() != Some(SCRAM_ITERATIONS) {
        return Err(format!("iterations must be {SCRAM_ITERATIONS} (as `serve --hash-password` writes)"));
    }
    let decode = |s: &str| STANDARD.decode(s).map_err(|e| format!("not base64: {e}"));
    Ok((decode(salt)?, decode(salted)?))
}

#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        match login.user().and_then(|u| self.by_name.get(u)) {
            Some((salt, salted)) => Ok(Password::new(Some(salt.clone()), salted.clone())),
            // An unknown user goes through the same exchange and fails at the proof, like a wrong
            // password: the answer does not tell which names exist.
            None => Ok(Password::new(Some(random_bytes(16)), random_bytes(32))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_and_hashed_passwords_and_names_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let hashed = hash_password("s3cret");
        std::fs::write(&path, format!("# analysts\nann:pencil\n\nbob:{hashed}\n")).unwrap();
        let users = Users::read(&path).unwrap();
        assert_eq!(users.len(), 2);
        let (salt, salted) = &users.by_name["bob"];
        assert_eq!(*salted, gen_salted_password("s3cret", salt, SCRAM_ITERATIONS));
        assert!(!format!("{users:?}").contains("pencil"));

        std::fs::write(&path, "ann:pencil\nno-colon\n").unwrap();
        let err = Users::read(&path).unwrap_err().to_string();
        assert!(err.contains(":2:") && err.contains("name:password"), "{err}");
        std::fs::write(&path, "ann:a\nann:b\n").unwrap();
        assert!(Users::read(&path).unwrap_err().to_string().contains("twice"));
        std::fs::write(&path, "ann:scram-sha-256:10:AA==:AA==\n").unwrap();
        assert!(Users::read(&path).unwrap_err().to_string().contains("iterations"));
    }
}
