//! `oci://HOST[:PORT]/REPO(:TAG|@sha256:HEX)` references.

use std::fmt;
use std::str::FromStr;

use super::OciError;

/// The scheme every reference starts with.
pub const SCHEME: &str = "oci://";

/// A reference to an artifact in a registry: `oci://HOST[:PORT]/REPO(:TAG|@sha256:HEX)`.
///
/// With both (`REPO:TAG@sha256:…`, as `publish` prints it) the digest is what is fetched and the
/// tag is only shown. Without a tag or digest the reference names the repository only; `publish` then tags with
/// the package version and `pull` refuses it (there is no implicit `latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `HOST[:PORT]`, lower-cased host.
    pub registry: String,
    /// The repository path, e.g. `team/orders`.
    pub repository: String,
    /// The tag, if the reference has one.
    pub tag: Option<String>,
    /// The manifest digest (`sha256:<64 hex>`), if the reference has one.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `oci://HOST[:PORT]/REPO(:TAG|@sha256:HEX)`, naming what is wrong on failure.
    pub fn parse(text: &str) -> Result<Reference, OciError> {
        let shown = redact(text);
        let bad = |reason: &str| OciError::Reference {
            reference: shown.clone(),
            reason: reason.to_string(),
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("it must start with oci://"))?;
        let (host, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("it needs a repository after the host (oci://HOST/REPO:TAG)"))?;
        check_host(host).map_err(|r| bad(&r))?;
        let (path, digest) = match path.split_once('@') {
            Some((p, d)) => {
                check_digest(d).map_err(|r| bad(&r))?;
                (p, Some(d.to_string()))
            }
            None => (path, None),
        };
        // A tag follows the last ':' after the last '/'.
        let last = path.rsplit('/').next().unwrap_or(path);
        let (repository, tag) = match last.rsplit_once(':') {
            Some((_, tag)) => {
                let cut = path.len() - tag.len() - 1;
                (&path[..cut], Some(tag.to_string()))
            }
            None => (path, None),
        };
        check_repository(repository).map_err(|r| bad(&r))?;
        if let Some(tag) = &tag {
            check_tag(tag).map_err(|r| bad(&r))?;
        }
        Ok(Reference {
            registry: host.to_ascii_lowercase(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The tag or digest the registry is asked for (`/v2/<repo>/manifests/<this>`).
    pub(crate) fn manifest_reference(&self) -> Option<&str> {
        self.digest.as_deref().or(self.tag.as_deref())
    }

    /// Refuses a reference with a digest as a place to publish to (a publish writes a tag).
    pub fn check_publishable(&self) -> Result<(), OciError> {
        if self.digest.is_some() {
            return Err(OciError::Reference {
                reference: self.to_string(),
                reason: "publish writes a tag: give oci://HOST/REPO:TAG (or no tag for the \
                         package version), not a digest"
                    .into(),
            });
        }
        Ok(())
    }

    /// This reference with `tag` and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// `oci://HOST/REPO[:TAG]@DIGEST`: the reference pinned to `digest`, keeping the tag for
    /// readers.
    pub fn pinned(&self, digest: &str) -> String {
        let mut s = format!("{SCHEME}{}/{}", self.registry, self.repository);
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        s.push('@');
        s.push_str(digest);
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Reference, OciError> {
        Reference::parse(s)
    }
}

/// Whether `text` looks like an `oci://` reference (for commands that take a file or a reference).
pub fn is_reference(text: &str) -> bool {
    text.starts_with(SCHEME)
}

/// `text` with any `user:password@` before the host masked, so an error never shows it.
fn redact(text: &str) -> String {
    let rest = text.strip_prefix(SCHEME).unwrap_or(text);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rfind('@') {
        Some(at) => {
            let prefix = &text[..text.len() - rest.len()];
            format!("{prefix}{}@{}", crate::http::MASK, &rest[at + 1..])
        }
        None => text.to_string(),
    }
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.contains('@') {
        return Err("credentials do not belong in the reference: use FLOWPACK_REGISTRY_USER and FLOWPACK_REGISTRY_PASSWORD".into());
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(format!("{host:?} is not a host name"));
    }
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |n| n == 0)
    {
        return Err(format!("{p:?} is not a port"));
    }
    Ok(())
}

/// Repository names as the distribution spec allows them: lowercase path components of
/// `[a-z0-9]+` joined by `.`, `_`, `__` or `-` runs, separated by `/`.
fn check_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("the repository is empty".into());
    }
    if repo.len() > 255 {
        return Err("the repository is longer than 255 characters".into());
    }
    for component in repo.split('/') {
        let ok = !component.is_empty()
            && component
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && component.as_bytes()[0].is_ascii_alphanumeric()
            && component.as_bytes()[component.len() - 1].is_ascii_alphanumeric();
        if !ok {
            return Err(format!(
                "repository component {component:?} must be lowercase letters and digits, \
                 joined by '.', '_' or '-'"
            ));
        }
    }
    Ok(())
}

/// Tags: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub(crate) fn check_tag(tag: &str) -> Result<(), String> {
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be letters, digits, '_', '.' or '-' (at most 128, not starting with '.' or '-')"
        ))
    }
}

/// Digests: `sha256:` and 64 lowercase hex digits (the only algorithm flowpack checks).
pub(crate) fn check_digest(digest: &str) -> Result<(), String> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Err(format!("digest {digest:?} must be sha256:<64 hex digits>"));
    };
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(format!(
            "digest {digest:?} must be sha256:<64 lowercase hex digits>"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_tags_digests_ports_and_nested_repositories() {
        let r = Reference::parse("oci://127.0.0.1:5000/team/orders:1.2.0").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/orders");
        assert_eq!(r.tag.as_deref(), Some("1.2.0"));
        assert_eq!(r.digest, None);
        assert_eq!(r.to_string(), "oci://127.0.0.1:5000/team/orders:1.2.0");
        assert_eq!(
            r.pinned(D),
            format!("oci://127.0.0.1:5000/team/orders:1.2.0@{D}")
        );

        let r = Reference::parse(&format!("oci://Registry.Example.com/a/b/c@{D}")).unwrap();
        assert_eq!(r.registry, "registry.example.com");
        assert_eq!(r.repository, "a/b/c");
        assert_eq!(r.manifest_reference(), Some(D));

        let r = Reference::parse("oci://ghcr.io/org/app").unwrap();
        assert_eq!((r.tag, r.digest), (None, None));
    }

    #[test]
    fn refuses_malformed_references_saying_why() {
        let cases = [
            ("https://ghcr.io/a:1", "must start with oci://"),
            ("oci://ghcr.io", "needs a repository"),
            ("oci:///a:1", "host is empty"),
            ("oci://u:p@ghcr.io/a:1", "credentials do not belong"),
            ("oci://ghcr.io:99999/a:1", "not a port"),
            ("oci://ghcr.io/Upper:1", "must be lowercase"),
            ("oci://ghcr.io/a//b:1", "must be lowercase"),
            ("oci://ghcr.io/a:-x", "tag \"-x\""),
            ("oci://ghcr.io/a@sha256:abc", "64 lowercase hex"),
            ("oci://ghcr.io/a@md5:abc", "must be sha256"),
        ];
        for (text, want) in cases {
            let err = Reference::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
            assert!(!err.contains("u:p"), "{err}");
        }
        let err = Reference::parse("oci://u:p@ghcr.io/a:1")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("oci://••••@ghcr.io/a:1: "), "{err}");
        // Tag and digest: the digest is fetched, the printed form parses back.
        let r = Reference::parse(&format!("oci://h/a:1@{D}")).unwrap();
        assert_eq!(r.manifest_reference(), Some(D));
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
    }
}
