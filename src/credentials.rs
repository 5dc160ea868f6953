//! Users store in Apache htdigest format: one `user:realm:HA1` per line, where
//! HA1 = lowercase hex MD5("user:realm:password") (RFC 2617 §3.2.2.2).
//!
//! Storing HA1 instead of the password means the file never holds clear-text passwords, and it
//! is exactly what Digest verification needs; it is still password-equivalent for its realm, so
//! the file must be readable only by the relay.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

/// Why a users file could not be loaded. Messages carry the path and, for content errors, the
/// 1-based line number.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read users file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{}:{line}: duplicate entry for user {user:?} in realm {realm:?} (first on line {first})", path.display())]
    Duplicate {
        path: PathBuf,
        line: usize,
        first: usize,
        user: String,
        realm: String,
    },
    #[error("users file {} contains no users", path.display())]
    Empty { path: PathBuf },
}

/// An HA1 digest: exactly 32 lowercase hex digits.
///
/// `Debug` does not show the value, because an HA1 lets anyone authenticate as its user.
#[derive(Clone, PartialEq, Eq)]
pub struct Ha1(String);

impl Ha1 {
    /// Accepts 32 hex digits in either case and normalises them to lowercase, the form used in
    /// Digest computations.
    pub fn parse(s: &str) -> Option<Ha1> {
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Some(Ha1(s.to_ascii_lowercase()))
        } else {
            None
        }
    }

    /// Computes the HA1 of a user's password in a realm.
    pub fn compute(user: &str, realm: &str, password: &str) -> Ha1 {
        Ha1(ha1_hex(user, realm, password))
    }

    /// The 32 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ha1(<redacted>)")
    }
}

/// Lowercase hex MD5 of `user:realm:password`.
pub fn ha1_hex(user: &str, realm: &str, password: &str) -> String {
    let mut h = Md5::new();
    h.update(user.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    hex::encode(h.finalize())
}

/// The loaded users, indexed by realm then user so a lookup needs no allocation.
#[derive(Debug, Clone, Default)]
pub struct UsersFile {
    by_realm: HashMap<String, HashMap<String, Ha1>>,
    len: usize,
}

impl UsersFile {
    /// Reads and parses an htdigest file. Blank lines and lines starting with `#` are skipped.
    pub fn load(path: &Path) -> Result<UsersFile, CredentialsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses htdigest text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<UsersFile, CredentialsError> {
        let mut users = UsersFile::default();
        // Line where each (realm, user) was first seen, to report duplicates precisely.
        let mut first_seen: HashMap<(String, String), usize> = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = |reason: &str| CredentialsError::Malformed {
                path: path.to_owned(),
                line: line_no,
                reason: reason.to_owned(),
            };
            let fields: Vec<&str> = line.split(':').collect();
            let [user, realm, hash] = fields[..] else {
                return Err(malformed(
                    "expected user:realm:HA1 (three fields separated by ':')",
                ));
            };
            if user.is_empty() {
                return Err(malformed("empty user name"));
            }
            if realm.is_empty() {
                return Err(malformed("empty realm"));
            }
            let Some(ha1) = Ha1::parse(hash) else {
                return Err(malformed("HA1 must be 32 hexadecimal digits"));
            };
            let key = (realm.to_owned(), user.to_owned());
            if let Some(&first) = first_seen.get(&key) {
                return Err(CredentialsError::Duplicate {
                    path: path.to_owned(),
                    line: line_no,
                    first,
                    user: user.to_owned(),
                    realm: realm.to_owned(),
                });
            }
            first_seen.insert(key, line_no);
            users.insert(user, realm, ha1);
        }
        if users.is_empty() {
            return Err(CredentialsError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(users)
    }

    /// A store with one user, for development mode when no users file is configured.
    pub fn single(user: &str, realm: &str, password: &str) -> UsersFile {
        let mut users = UsersFile::default();
        users.insert(user, realm, Ha1::compute(user, realm, password));
        users
    }

    fn insert(&mut self, user: &str, realm: &str, ha1: Ha1) {
        let previous = self
            .by_realm
            .entry(realm.to_owned())
            .or_default()
            .insert(user.to_owned(), ha1);
        if previous.is_none() {
            self.len += 1;
        }
    }

    /// The HA1 of `user` in `realm`. User names and realms are compared exactly (case matters),
    /// as Digest hashes them verbatim.
    pub fn lookup(&self, user: &str, realm: &str) -> Option<&Ha1> {
        self.by_realm.get(realm)?.get(user)
    }

    /// Number of users in `realm`; zero means nobody can authenticate with this relay's realm,
    /// usually a realm mismatch between the file and `auth.realm`.
    pub fn users_in_realm(&self, realm: &str) -> usize {
        self.by_realm.get(realm).map_or(0, HashMap::len)
    }

    /// Number of (user, realm) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE_HA1: &str = "228077dd83232f11146688d20e4810da";

    fn parse(text: &str) -> Result<UsersFile, CredentialsError> {
        UsersFile::parse(text, Path::new("/etc/msrp-relay/users.htdigest"))
    }

    #[test]
    fn ha1_known_vector() {
        assert_eq!(ha1_hex("Alice", "intra.example.com", "secret"), ALICE_HA1);
        assert_eq!(
            Ha1::compute("Alice", "intra.example.com", "secret").as_str(),
            ALICE_HA1
        );
    }

    #[test]
    fn parses_entries_comments_and_blank_lines() {
        let users = parse(&format!(
            "# users\n\nAlice:intra.example.com:{ALICE_HA1}\n  \n\
             bob:intra.example.com:{}\r\nbob:other.example:{}\n",
            ha1_hex("bob", "intra.example.com", "pw"),
            ha1_hex("bob", "other.example", "pw2").to_uppercase(),
        ))
        .unwrap();
        assert_eq!(users.len(), 3);
        assert_eq!(
            users.lookup("Alice", "intra.example.com").unwrap().as_str(),
            ALICE_HA1
        );
        assert_eq!(
            users.lookup("bob", "other.example").unwrap().as_str(),
            ha1_hex("bob", "other.example", "pw2"),
            "uppercase hex is normalised"
        );
        assert!(users.lookup("alice", "intra.example.com").is_none());
        assert!(users.lookup("Alice", "other.example").is_none());
        assert!(users.lookup("carol", "intra.example.com").is_none());
        assert_eq!(users.users_in_realm("intra.example.com"), 2);
        assert_eq!(users.users_in_realm("nowhere.example"), 0);
    }

    #[test]
    fn malformed_lines_report_path_and_line() {
        for (text, reason) in [
            ("# c\nAlice:intra.example.com\n", "three fields"),
            ("# c\nAlice:a:b:c\n", "three fields"),
            (
                "# c\n:realm:228077dd83232f11146688d20e4810da\n",
                "empty user",
            ),
            (
                "# c\nAlice::228077dd83232f11146688d20e4810da\n",
                "empty realm",
            ),
            ("# c\nAlice:realm:228077dd83\n", "32 hexadecimal"),
            (
                "# c\nAlice:realm:228077dd83232f11146688d20e4810dz\n",
                "32 hexadecimal",
            ),
        ] {
            let err = parse(text).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, CredentialsError::Malformed { line: 2, .. }),
                "{msg}"
            );
            assert!(
                msg.starts_with("/etc/msrp-relay/users.htdigest:2: "),
                "{msg}"
            );
            assert!(msg.contains(reason), "{msg}");
        }
    }

    #[test]
    fn duplicates_and_empty_files_are_errors() {
        let err = parse(&format!("a:r:{ALICE_HA1}\n\na:r:{ALICE_HA1}\n")).unwrap_err();
        assert!(
            matches!(
                err,
                CredentialsError::Duplicate {
                    line: 3,
                    first: 1,
                    ..
                }
            ),
            "{err}"
        );
        let err = parse("# nobody here\n\n").unwrap_err();
        assert!(matches!(err, CredentialsError::Empty { .. }), "{err}");
    }

    #[test]
    fn load_reads_file_and_names_missing_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.htdigest");
        std::fs::write(&path, format!("Alice:intra.example.com:{ALICE_HA1}\n")).unwrap();
        let users = UsersFile::load(&path).unwrap();
        assert_eq!(users.len(), 1);

        let missing = dir.path().join("missing.htdigest");
        let err = UsersFile::load(&missing).unwrap_err();
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn single_user_store() {
        let users = UsersFile::single("Alice", "intra.example.com", "secret");
        assert_eq!(users.len(), 1);
        assert!(!users.is_empty());
        assert_eq!(
            users.lookup("Alice", "intra.example.com").unwrap().as_str(),
            ALICE_HA1
        );
    }

    #[test]
    fn debug_does_not_leak_ha1() {
        let users = UsersFile::single("Alice", "intra.example.com", "secret");
        assert!(!format!("{users:?}").contains(ALICE_HA1));
    }
}
