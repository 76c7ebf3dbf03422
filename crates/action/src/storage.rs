//! Where archives are written and read: a local path or an `s3://BUCKET/PREFIX` location in
//! S3-compatible object storage.
//!
//! Requests are signed with SigV4 by `rusty-s3` (sans-IO: it only builds presigned URLs) and
//! sent with `ureq`, the one HTTP client of the library. Settings come from the standard
//! variables — `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`
//! (default `us-east-1`), `AWS_ENDPOINT_URL` (default `https://s3.REGION.amazonaws.com`) and
//! `AWS_ALLOW_HTTP` (`true` to allow a plain-HTTP endpoint) — or from a [`StorageConfig`] that
//! names the variables holding the keys. Credentials are never printed and never stored.
//!
//! Writes are whole or absent: an object is created with `If-None-Match: *` (never replacing
//! one unless asked), with its SHA-256 in `x-amz-checksum-sha256` so the store checks the bytes
//! it received, in one PUT up to [`SINGLE_PUT_MAX`] bytes and as a multipart upload above (each
//! part with its checksum; a failed upload is aborted, and an unfinished one is never an
//! object). The SHA-256 is also kept as the object's metadata `flowpack-sha256`. Reads go to a
//! private temporary file, refusing a body longer than the object's size or the archive limit,
//! shorter than announced, or not matching the recorded SHA-256.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, DeleteObject, GetObject,
    HeadObject, ListObjectsV2, PutObject, S3Action, UploadPart,
};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use sha2::{Digest, Sha256};

use crate::error::{Categorize, Category};

/// Objects up to this size are written with one PUT; larger ones as a multipart upload of parts
/// this size.
pub const SINGLE_PUT_MAX: u64 = 8 * 1024 * 1024;

/// The largest object read as an archive (the archive limit on its total size).
pub const MAX_OBJECT_BYTES: u64 = 16 * 1024 * 1024 * 1024;

/// How long a signed request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(15 * 60);

/// An unfinished multipart upload older than this is taken for one a killed or failed writer
/// left behind, and aborted by the next write under the same prefix (a live upload sends a part
/// every few seconds; none lasts this long).
pub const STALE_UPLOAD_AGE: Duration = Duration::from_secs(6 * 60 * 60);

/// The metadata header holding an object's SHA-256 (hex).
const SHA256_META: &str = "x-amz-meta-flowpack-sha256";

/// Errors of object storage; each names the location, never a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The location is not `s3://BUCKET[/PREFIX]`.
    #[error("{location}: not an object storage location ({reason}); expected s3://BUCKET/PREFIX")]
    BadLocation {
        /// The location as given.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A variable the settings need is not set.
    #[error("{location}: the variable {variable} is not set ({what})")]
    MissingVariable {
        /// The location.
        location: String,
        /// The variable.
        variable: String,
        /// What it holds.
        what: &'static str,
    },
    /// The endpoint is not a usable URL, or is plain HTTP without permission.
    #[error("{location}: endpoint {endpoint}: {reason}")]
    Endpoint {
        /// The location.
        location: String,
        /// The endpoint.
        endpoint: String,
        /// What is wrong.
        reason: String,
    },
    /// The store refused the credentials.
    #[error(
        "{location}: the store refused the credentials ({code}); check the access key in \
         {key_variable} and the secret in {secret_variable}"
    )]
    Credentials {
        /// The location.
        location: String,
        /// The store's error code.
        code: String,
        /// The variable holding the access key id.
        key_variable: String,
        /// The variable holding the secret.
        secret_variable: String,
    },
    /// The store denied the request (a policy, not the credentials).
    #[error("{location}: access denied by the store ({code})")]
    Denied {
        /// The location.
        location: String,
        /// The store's error code.
        code: String,
    },
    /// The bucket does not exist.
    #[error("{location}: the bucket {bucket} does not exist")]
    NoSuchBucket {
        /// The location.
        location: String,
        /// The bucket.
        bucket: String,
    },
    /// The object does not exist.
    #[error("{location}: no such object")]
    NotFound {
        /// The object.
        location: String,
    },
    /// The object exists and replacing it was not allowed.
    #[error("{location}: already exists; not replaced")]
    Exists {
        /// The object.
        location: String,
    },
    /// The store answered with an error.
    #[error("{location}: the store answered {status} {code}: {message}")]
    Status {
        /// The location.
        location: String,
        /// HTTP status.
        status: u16,
        /// The store's error code.
        code: String,
        /// The store's message.
        message: String,
    },
    /// The store could not be reached.
    #[error("{location}: cannot reach the store: {cause}")]
    Network {
        /// The location.
        location: String,
        /// What failed.
        cause: String,
    },
    /// The store's answer could not be understood.
    #[error("{location}: unexpected answer from the store: {detail}")]
    Protocol {
        /// The location.
        location: String,
        /// What was wrong.
        detail: String,
    },
    /// The object read does not match what the store announced or recorded.
    #[error("{location}: refused: {detail}")]
    Mismatch {
        /// The object.
        location: String,
        /// What differs.
        detail: String,
    },
    /// The configuration file's `[storage]` table could not be read.
    #[error(transparent)]
    Config(Box<crate::env::EnvError>),
    /// A local file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        #[source]
        cause: std::io::Error,
    },
}

impl Categorize for StorageError {
    fn category(&self) -> Category {
        match self {
            StorageError::Mismatch { .. } => Category::Rejected,
            _ => Category::CouldNotRun,
        }
    }
}

/// Whether a command-line argument names object storage (`s3://…`) rather than a path.
pub fn is_s3(spec: &str) -> bool {
    spec.starts_with("s3://")
}

/// An `s3://BUCKET/PREFIX` location: a bucket and a key prefix (no leading or trailing `/`;
/// empty for the bucket's root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without a leading or trailing `/`.
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://BUCKET[/PREFIX]`.
    pub fn parse(spec: &str) -> Result<S3Location, StorageError> {
        let bad = |reason: &str| StorageError::BadLocation {
            location: spec.to_string(),
            reason: reason.to_string(),
        };
        let rest = spec
            .strip_prefix("s3://")
            .ok_or_else(|| bad("no s3:// scheme"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            return Err(bad(
                "a bucket name is 3 to 63 lowercase letters, digits, `-` and `.`",
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == ".." || p == ".")
            || prefix.contains("//")
            || prefix.chars().any(char::is_control)
        {
            return Err(bad("the prefix has an empty, `.` or `..` segment"));
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The key of `name` under the prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// `s3://BUCKET/KEY`.
    pub fn url_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The location split into its parent prefix and last name (`s3://b/a/x.flowpack`: prefix
    /// `a`, name `x.flowpack`); `None` when the prefix is empty.
    pub fn split_name(&self) -> Option<(S3Location, String)> {
        if self.prefix.is_empty() {
            return None;
        }
        let (parent, name) = self.prefix.rsplit_once('/').unwrap_or(("", &self.prefix));
        Some((
            S3Location {
                bucket: self.bucket.clone(),
                prefix: parent.to_string(),
            },
            name.to_string(),
        ))
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Where archives go or come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local path.
    Local(PathBuf),
    /// Object storage.
    S3(S3Location),
}

impl Location {
    /// `s3://…` as object storage, anything else as a local path.
    pub fn parse(spec: &str) -> Result<Location, StorageError> {
        if is_s3(spec) {
            S3Location::parse(spec).map(Location::S3)
        } else {
            Ok(Location::Local(PathBuf::from(spec)))
        }
    }
}

/// The settings of one bucket, from a `[storage."s3://BUCKET"]` table: the endpoint, region and
/// whether plain HTTP is allowed, and the names of the variables holding the keys (never the
/// keys themselves). Unset fields fall back to the standard `AWS_*` variables.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StorageConfig {
    /// The endpoint URL.
    pub endpoint: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// Whether a plain-HTTP endpoint is allowed.
    pub allow_http: Option<bool>,
    /// The variable holding the access key id (default `AWS_ACCESS_KEY_ID`).
    pub access_key_id_env: Option<String>,
    /// The variable holding the secret access key (default `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key_env: Option<String>,
}

/// An open bucket: signed requests to one S3 endpoint.
pub struct Store {
    location: S3Location,
    bucket: Bucket,
    credentials: Credentials,
    key_variable: String,
    secret_variable: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        f.debug_struct("Store")
            .field("location", &self.location)
            .field("endpoint", &self.bucket.base_url().as_str())
            .finish_non_exhaustive()
    }
}

/// One object listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A condition a write of a small object is made under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Precondition<'a> {
    /// None: the object is created or replaced.
    Always,
    /// Only while no object has the key (`If-None-Match: *`).
    Absent,
    /// Only while the object's ETag is this one (`If-Match`).
    Etag(&'a str),
}

/// A small object read whole, with its ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmallObject {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its ETag, as the store sent it (quoted).
    pub etag: String,
}

/// An object read into a private temporary file, removed when dropped.
#[derive(Debug)]
pub struct Downloaded {
    file: tempfile::NamedTempFile,
    /// `s3://BUCKET/KEY`.
    pub shown: String,
    /// Its size.
    pub size: u64,
}

impl Downloaded {
    /// The temporary file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn truthy(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A tag's text in an XML error body (`<Code>…</Code>`).
fn xml_tag<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(&body[start..end])
}

type Response = ureq::http::Response<ureq::Body>;

impl Store {
    /// Opens `location` with the settings of its bucket's `[storage."s3://BUCKET"]` table in
    /// `flowpack.toml` of the current directory when there is one, else the standard variables.
    pub fn open_configured(location: &S3Location) -> Result<Store, StorageError> {
        let config =
            crate::env::storage_table(Path::new(crate::env::CONFIG_FILE), &location.bucket)
                .map_err(|e| StorageError::Config(Box::new(e)))?;
        Store::open(location, config.as_ref())
    }

    /// Opens `location` with the settings of `config` (or the standard variables).
    pub fn open(
        location: &S3Location,
        config: Option<&StorageConfig>,
    ) -> Result<Store, StorageError> {
        Store::open_with(location, config, &env_var)
    }

    /// [`Store::open`] reading the variables through `var` (an empty value counts as unset).
    pub fn open_with(
        location: &S3Location,
        config: Option<&StorageConfig>,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Store, StorageError> {
        let env_var = |name: &str| var(name).filter(|v| !v.is_empty());
        let config = config.cloned().unwrap_or_default();
        let shown = location.to_string();
        let region = config
            .region
            .or_else(|| env_var("AWS_REGION"))
            .or_else(|| env_var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string());
        let endpoint = config
            .endpoint
            .or_else(|| env_var("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env_var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let allow_http = config
            .allow_http
            .unwrap_or_else(|| env_var("AWS_ALLOW_HTTP").is_some_and(|v| truthy(&v)));
        let bad_endpoint = |reason: &str| StorageError::Endpoint {
            location: shown.clone(),
            endpoint: endpoint.clone(),
            reason: reason.to_string(),
        };
        let url: url::Url = endpoint
            .parse()
            .map_err(|e: url::ParseError| bad_endpoint(&e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad_endpoint(
                "credentials in the URL are refused; set them in the variables",
            ));
        }
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            "http" => {
                return Err(bad_endpoint(
                    "plain HTTP is not allowed (AWS_ALLOW_HTTP=true allows it)",
                ));
            }
            _ => return Err(bad_endpoint("not an http(s) URL")),
        }
        let bucket = Bucket::new(url, UrlStyle::Path, location.bucket.clone(), region.clone())
            .map_err(|e| bad_endpoint(&e.to_string()))?;
        let key_variable = config
            .access_key_id_env
            .unwrap_or_else(|| "AWS_ACCESS_KEY_ID".to_string());
        let secret_variable = config
            .secret_access_key_env
            .unwrap_or_else(|| "AWS_SECRET_ACCESS_KEY".to_string());
        let missing = |variable: &str, what| StorageError::MissingVariable {
            location: shown.clone(),
            variable: variable.to_string(),
            what,
        };
        let key = env_var(&key_variable).ok_or_else(|| missing(&key_variable, "access key id"))?;
        let secret = env_var(&secret_variable)
            .ok_or_else(|| missing(&secret_variable, "secret access key"))?;
        let credentials = match env_var("AWS_SESSION_TOKEN") {
            Some(token) => Credentials::new_with_token(key, secret, token),
            None => Credentials::new(key, secret),
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .max_redirects(0)
            .user_agent(concat!("flowpack/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Store {
            location: location.clone(),
            bucket,
            credentials,
            key_variable,
            secret_variable,
            agent: ureq::Agent::new_with_config(config),
        })
    }

    /// The location this store was opened for.
    pub fn location(&self) -> &S3Location {
        &self.location
    }

    fn network(&self, key: &str, e: ureq::Error) -> StorageError {
        StorageError::Network {
            location: self.location.url_of(key),
            cause: e.to_string(),
        }
    }

    /// The error for a response that is not a success.
    fn refused(&self, key: &str, mut response: Response) -> StorageError {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let code = xml_tag(&body, "Code").unwrap_or("").to_string();
        let message = xml_tag(&body, "Message").unwrap_or("").to_string();
        let location = self.location.url_of(key);
        match (status, code.as_str()) {
            (
                _,
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "InvalidToken"
                | "ExpiredToken"
                | "AuthorizationHeaderMalformed",
            ) => StorageError::Credentials {
                location,
                code,
                key_variable: self.key_variable.clone(),
                secret_variable: self.secret_variable.clone(),
            },
            (_, "NoSuchBucket") => StorageError::NoSuchBucket {
                location,
                bucket: self.location.bucket.clone(),
            },
            (404, _) | (_, "NoSuchKey") => StorageError::NotFound { location },
            (412, _) | (_, "PreconditionFailed") => StorageError::Exists { location },
            (403, _) => StorageError::Denied {
                location,
                code: if code.is_empty() { "403".into() } else { code },
            },
            _ => StorageError::Status {
                location,
                status,
                code,
                message,
            },
        }
    }

    fn ok(&self, key: &str, response: Response) -> Result<Response, StorageError> {
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.refused(key, response))
        }
    }

    fn send<'a>(
        &self,
        key: &str,
        method: &str,
        url: &url::Url,
        headers: &[(&'a str, Cow<'a, str>)],
        body: Option<&[u8]>,
    ) -> Result<Response, StorageError> {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(url.as_str());
        let request = headers
            .iter()
            .fold(request, |r, (k, v)| r.header(*k, v.as_ref()));
        let result = match body {
            Some(body) => request
                .body(body)
                .map_err(|e| StorageError::Protocol {
                    location: self.location.url_of(key),
                    detail: e.to_string(),
                })
                .and_then(|r| self.agent.run(r).map_err(|e| self.network(key, e))),
            None => request
                .body(())
                .map_err(|e| StorageError::Protocol {
                    location: self.location.url_of(key),
                    detail: e.to_string(),
                })
                .and_then(|r| self.agent.run(r).map_err(|e| self.network(key, e))),
        }?;
        self.ok(key, result)
    }

    /// Whether the bucket answers (it exists and the credentials are accepted).
    pub fn check(&self) -> Result<(), StorageError> {
        self.list_page("", None, Some(1)).map(|_| ())
    }

    /// The size of the object `key`, `None` when it does not exist.
    pub fn head(&self, key: &str) -> Result<Option<u64>, StorageError> {
        let url = HeadObject::new(&self.bucket, Some(&self.credentials), key).sign(SIGNED_FOR);
        match self.send(key, "HEAD", &url, &[], None) {
            Ok(response) => Ok(Some(content_length(&response).unwrap_or(0))),
            Err(StorageError::NotFound { .. }) => Ok(None),
            // A HEAD has no body to name the missing bucket: ask once more with a listing.
            Err(StorageError::Status { status: 404, .. }) => {
                self.check()?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes the object `key` (nothing when it does not exist).
    pub fn delete(&self, key: &str) -> Result<(), StorageError> {
        let url = DeleteObject::new(&self.bucket, Some(&self.credentials), key).sign(SIGNED_FOR);
        match self.send(key, "DELETE", &url, &[], None) {
            Ok(_) | Err(StorageError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn list_page(
        &self,
        prefix: &str,
        token: Option<&str>,
        max: Option<usize>,
    ) -> Result<rusty_s3::actions::ListObjectsV2Response, StorageError> {
        let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
        if !prefix.is_empty() {
            action.with_prefix(prefix);
        }
        if let Some(token) = token {
            action.with_continuation_token(token);
        }
        if let Some(max) = max {
            action.with_max_keys(max);
        }
        let url = action.sign(SIGNED_FOR);
        let mut response = self.send(prefix, "GET", &url, &[], None)?;
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| self.network(prefix, e))?;
        ListObjectsV2::parse_response(&body).map_err(|e| StorageError::Protocol {
            location: self.location.url_of(prefix),
            detail: e.to_string(),
        })
    }

    /// The objects whose keys start with `prefix`, in key order.
    pub fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_page(prefix, token.as_deref(), None)?;
            out.extend(page.contents.into_iter().map(|c| ObjectInfo {
                key: c.key,
                size: c.size.unwrap_or(0),
            }));
            match page.next_continuation_token {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Uploads the local file `path` as the object `key`, whole or not at all. Without
    /// `replace`, an existing object is never replaced ([`StorageError::Exists`]).
    pub fn put_file(&self, path: &Path, key: &str, replace: bool) -> Result<(), StorageError> {
        let io = |cause| StorageError::Io {
            path: path.display().to_string(),
            cause,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        // The whole file's SHA-256 first: it goes into the metadata before any byte is sent.
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let digest = hasher.finalize();
        let hex_digest = hex::encode(digest);
        let mut file = std::fs::File::open(path).map_err(io)?;
        // Some stores create a missing bucket on the first write: refuse it instead.
        self.check()?;
        // What a killed or failed writer left under this prefix goes first.
        // (Housekeeping: credentials allowed to write but not to list uploads still write.)
        let prefix = key.rsplit_once('/').map_or("", |(p, _)| p);
        match self.abort_stale_uploads(prefix, stale_upload_age()) {
            Ok(_) | Err(StorageError::Denied { .. }) => {}
            Err(e) => return Err(e),
        }
        if !replace && self.head(key)?.is_some() {
            return Err(StorageError::Exists {
                location: self.location.url_of(key),
            });
        }
        if size <= SINGLE_PUT_MAX {
            let mut body = Vec::with_capacity(size as usize);
            file.read_to_end(&mut body).map_err(io)?;
            let checksum = base64(&digest);
            let mut headers: Vec<(&str, Cow<'_, str>)> = vec![
                ("x-amz-checksum-sha256", Cow::Borrowed(checksum.as_str())),
                (SHA256_META, Cow::Borrowed(hex_digest.as_str())),
            ];
            if !replace {
                headers.push(("if-none-match", Cow::Borrowed("*")));
            }
            let mut action = PutObject::new(&self.bucket, Some(&self.credentials), key);
            for (k, v) in &headers {
                action.headers_mut().insert(*k, v.clone());
            }
            let url = action.sign(SIGNED_FOR);
            self.send(key, "PUT", &url, &headers, Some(&body))?;
            return Ok(());
        }
        self.put_multipart(&mut file, path, key, replace, &hex_digest)
    }

    fn put_multipart(
        &self,
        file: &mut std::fs::File,
        path: &Path,
        key: &str,
        replace: bool,
        hex_digest: &str,
    ) -> Result<(), StorageError> {
        let mut create = CreateMultipartUpload::new(&self.bucket, Some(&self.credentials), key);
        create.headers_mut().insert(SHA256_META, hex_digest);
        let url = create.sign(SIGNED_FOR);
        let mut response = self.send(
            key,
            "POST",
            &url,
            &[(SHA256_META, Cow::Borrowed(hex_digest))],
            Some(&[]),
        )?;
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| self.network(key, e))?;
        let created =
            CreateMultipartUpload::parse_response(&body).map_err(|e| StorageError::Protocol {
                location: self.location.url_of(key),
                detail: e.to_string(),
            })?;
        let upload_id = created.upload_id().to_string();
        let result = self.upload_parts(file, path, key, &upload_id, replace);
        if result.is_err() {
            // An unfinished upload is never an object; abort it so that its parts go too.
            let abort =
                AbortMultipartUpload::new(&self.bucket, Some(&self.credentials), key, &upload_id)
                    .sign(SIGNED_FOR);
            let _ = self.send(key, "DELETE", &abort, &[], None);
        }
        result
    }

    fn upload_parts(
        &self,
        file: &mut std::fs::File,
        path: &Path,
        key: &str,
        upload_id: &str,
        replace: bool,
    ) -> Result<(), StorageError> {
        let mut etags = Vec::new();
        let mut part = vec![0u8; SINGLE_PUT_MAX as usize];
        let mut number: u16 = 0;
        loop {
            let mut filled = 0;
            while filled < part.len() {
                let n = file
                    .read(&mut part[filled..])
                    .map_err(|cause| StorageError::Io {
                        path: path.display().to_string(),
                        cause,
                    })?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 && number > 0 {
                break;
            }
            number = number
                .checked_add(1)
                .ok_or_else(|| StorageError::Protocol {
                    location: self.location.url_of(key),
                    detail: "too many parts".into(),
                })?;
            let checksum = base64(&Sha256::digest(&part[..filled]));
            let mut action = UploadPart::new(
                &self.bucket,
                Some(&self.credentials),
                key,
                number,
                upload_id,
            );
            action
                .headers_mut()
                .insert("x-amz-checksum-sha256", checksum.as_str());
            let url = action.sign(SIGNED_FOR);
            let response = self.send(
                key,
                "PUT",
                &url,
                &[("x-amz-checksum-sha256", Cow::Borrowed(checksum.as_str()))],
                Some(&part[..filled]),
            )?;
            let etag = response
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| StorageError::Protocol {
                    location: self.location.url_of(key),
                    detail: format!("part {number} has no ETag"),
                })?
                .to_string();
            etags.push(etag);
            crash_hook(number);
            if filled < part.len() {
                break;
            }
        }
        let complete = CompleteMultipartUpload::new(
            &self.bucket,
            Some(&self.credentials),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let mut complete = complete;
        let headers: Vec<(&str, Cow<'_, str>)> = if replace {
            Vec::new()
        } else {
            vec![("if-none-match", Cow::Borrowed("*"))]
        };
        for (k, v) in &headers {
            complete.headers_mut().insert(*k, v.clone());
        }
        let url = complete.sign(SIGNED_FOR);
        let body = complete.body();
        let mut response = self.send(key, "POST", &url, &headers, Some(body.as_bytes()))?;
        // A CompleteMultipartUpload can fail after its 200 (an error document in the body).
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| self.network(key, e))?;
        if text.contains("<Error>") {
            return Err(StorageError::Status {
                location: self.location.url_of(key),
                status: 200,
                code: xml_tag(&text, "Code").unwrap_or("").to_string(),
                message: xml_tag(&text, "Message").unwrap_or("").to_string(),
            });
        }
        Ok(())
    }

    /// Writes the small object `key` (`body` in one PUT, its SHA-256 sent for the store to
    /// check) under `precondition`; its new ETag. A precondition that does not hold is
    /// [`StorageError::Exists`].
    pub fn put_bytes(
        &self,
        key: &str,
        body: &[u8],
        precondition: Precondition<'_>,
    ) -> Result<String, StorageError> {
        let checksum = base64(&Sha256::digest(body));
        let mut headers: Vec<(&str, Cow<'_, str>)> =
            vec![("x-amz-checksum-sha256", Cow::Borrowed(checksum.as_str()))];
        match precondition {
            Precondition::Always => {}
            Precondition::Absent => headers.push(("if-none-match", Cow::Borrowed("*"))),
            Precondition::Etag(etag) => headers.push(("if-match", Cow::Borrowed(etag))),
        }
        let mut action = PutObject::new(&self.bucket, Some(&self.credentials), key);
        for (k, v) in &headers {
            action.headers_mut().insert(*k, v.clone());
        }
        let url = action.sign(SIGNED_FOR);
        let response = self.send(key, "PUT", &url, &headers, Some(body))?;
        etag_of(&response).ok_or_else(|| StorageError::Protocol {
            location: self.location.url_of(key),
            detail: "the write was answered without an ETag".into(),
        })
    }

    /// Reads the small object `key` whole (at most `max` bytes) with its ETag; `None` when it
    /// does not exist.
    pub fn get_small(&self, key: &str, max: u64) -> Result<Option<SmallObject>, StorageError> {
        let url = GetObject::new(&self.bucket, Some(&self.credentials), key).sign(SIGNED_FOR);
        let mut response = match self.send(key, "GET", &url, &[], None) {
            Ok(r) => r,
            Err(StorageError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let etag = etag_of(&response).unwrap_or_default();
        let mut bytes = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| StorageError::Network {
                location: self.location.url_of(key),
                cause: e.to_string(),
            })?;
        if bytes.len() as u64 > max {
            return Err(StorageError::Mismatch {
                location: self.location.url_of(key),
                detail: format!("more than {max} bytes"),
            });
        }
        Ok(Some(SmallObject { bytes, etag }))
    }

    /// Deletes the object `key` only while its ETag is `etag` ([`StorageError::Exists`] when
    /// another write replaced it); nothing when it does not exist.
    pub fn delete_if(&self, key: &str, etag: &str) -> Result<(), StorageError> {
        let mut action = DeleteObject::new(&self.bucket, Some(&self.credentials), key);
        action.headers_mut().insert("if-match", etag);
        let url = action.sign(SIGNED_FOR);
        match self.send(
            key,
            "DELETE",
            &url,
            &[("if-match", Cow::Borrowed(etag))],
            None,
        ) {
            Ok(_) | Err(StorageError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The unfinished multipart uploads whose keys start with `prefix`: `(key, upload id,
    /// initiated)` (`ListMultipartUploads`, which `rusty-s3` has no action for: the listing
    /// action's query is changed into it before it is signed).
    pub fn list_uploads(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String, String)>, StorageError> {
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            let query = action.query_mut();
            query.remove("list-type");
            query.remove("encoding-type");
            query.insert("uploads", "");
            if !prefix.is_empty() {
                query.insert("prefix", prefix.to_string());
            }
            if let Some((key, id)) = &markers {
                query.insert("key-marker", key.clone());
                query.insert("upload-id-marker", id.clone());
            }
            let url = action.sign(SIGNED_FOR);
            let mut response = self.send(prefix, "GET", &url, &[], None)?;
            let body = response
                .body_mut()
                .with_config()
                .limit(16 * 1024 * 1024)
                .read_to_string()
                .map_err(|e| self.network(prefix, e))?;
            let mut rest = body.as_str();
            while let Some(start) = rest.find("<Upload>") {
                let Some(end) = rest[start..].find("</Upload>") else {
                    break;
                };
                let upload = &rest[start..start + end];
                if let (Some(key), Some(id)) = (xml_tag(upload, "Key"), xml_tag(upload, "UploadId"))
                {
                    out.push((
                        xml_unescape(key),
                        id.to_string(),
                        xml_tag(upload, "Initiated").unwrap_or("").to_string(),
                    ));
                }
                rest = &rest[start + end..];
            }
            let truncated = xml_tag(&body, "IsTruncated") == Some("true");
            let next = (
                xml_tag(&body, "NextKeyMarker").map(xml_unescape),
                xml_tag(&body, "NextUploadIdMarker").map(str::to_string),
            );
            match next {
                (Some(key), Some(id))
                    if truncated && Some((&key, &id)) != markers.as_ref().map(|(k, i)| (k, i)) =>
                {
                    markers = Some((key, id));
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Aborts the unfinished multipart uploads under `prefix` (a directory-like prefix: `a/b`
    /// covers `a/b/…`) begun more than `age` ago: what killed or failed writers left. Their
    /// number.
    pub fn abort_stale_uploads(&self, prefix: &str, age: Duration) -> Result<usize, StorageError> {
        let listed = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let now = time::OffsetDateTime::now_utc();
        let mut aborted = 0;
        for (key, id, initiated) in self.list_uploads(&listed)? {
            let begun = time::OffsetDateTime::parse(
                &initiated,
                &time::format_description::well_known::Rfc3339,
            );
            // An upload whose start cannot be read is left alone.
            let Ok(begun) = begun else { continue };
            if now - begun < age {
                continue;
            }
            let abort = AbortMultipartUpload::new(&self.bucket, Some(&self.credentials), &key, &id)
                .sign(SIGNED_FOR);
            match self.send(&key, "DELETE", &abort, &[], None) {
                Ok(_) | Err(StorageError::NotFound { .. }) => aborted += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(aborted)
    }

    /// Reads the object `key` into a private temporary file in `dir`, refusing a body longer
    /// than `max` bytes or than the object's announced size, shorter than announced, or whose
    /// SHA-256 differs from the one recorded when it was written.
    pub fn get_to_temp(&self, key: &str, dir: &Path, max: u64) -> Result<Downloaded, StorageError> {
        let shown = self.location.url_of(key);
        let url = GetObject::new(&self.bucket, Some(&self.credentials), key).sign(SIGNED_FOR);
        let mut response = self.send(key, "GET", &url, &[], None)?;
        let announced = content_length(&response);
        let recorded = response
            .headers()
            .get(SHA256_META)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase);
        let mismatch = |detail: String| StorageError::Mismatch {
            location: shown.clone(),
            detail,
        };
        if let Some(n) = announced
            && n > max
        {
            return Err(mismatch(format!(
                "the object is {n} bytes, more than the archive limit of {max}"
            )));
        }
        let io = |cause| StorageError::Io {
            path: dir.display().to_string(),
            cause,
        };
        let mut file = tempfile::Builder::new()
            .prefix(".flowpack-s3-")
            .suffix(".flowpack")
            .tempfile_in(dir)
            .map_err(io)?;
        let bound = announced.unwrap_or(max).min(max);
        let mut reader = response.body_mut().as_reader().take(bound + 1);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size: u64 = 0;
        loop {
            let n = reader.read(&mut buf).map_err(|e| StorageError::Network {
                location: shown.clone(),
                cause: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > bound {
                return Err(mismatch(format!(
                    "the store sent more than the object's {bound} bytes"
                )));
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(io)?;
        }
        if let Some(n) = announced
            && size != n
        {
            return Err(mismatch(format!(
                "the store sent {size} bytes of the object's {n}"
            )));
        }
        let got = hex::encode(hasher.finalize());
        if let Some(recorded) = recorded
            && recorded != got
        {
            return Err(mismatch(format!(
                "sha256 {got} differs from the {recorded} recorded when it was written"
            )));
        }
        // Not synced: the file is read by this process and removed after; nothing needs it to
        // outlive a crash.
        Ok(Downloaded { file, shown, size })
    }
}

fn content_length(response: &Response) -> Option<u64> {
    response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn etag_of(response: &Response) -> Option<String> {
    response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `&amp;` and the other four entities of XML text.
fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// How old an unfinished upload must be to be aborted as stale: [`STALE_UPLOAD_AGE`]; in test
/// builds (`test-hooks`) `FLOWPACK_TEST_STALE_UPLOAD_SECS` overrides it.
fn stale_upload_age() -> Duration {
    #[cfg(feature = "test-hooks")]
    if let Some(secs) = std::env::var("FLOWPACK_TEST_STALE_UPLOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Duration::from_secs(secs);
    }
    STALE_UPLOAD_AGE
}

/// Tests only (`test-hooks` feature): `FLOWPACK_TEST_CRASH_AFTER_PART=N` kills the process with
/// SIGKILL right after the N-th part of a multipart upload was stored (the upload unfinished).
#[cfg(feature = "test-hooks")]
fn crash_hook(part: u16) {
    let wanted: Option<u16> = std::env::var("FLOWPACK_TEST_CRASH_AFTER_PART")
        .ok()
        .and_then(|v| v.parse().ok());
    if wanted == Some(part) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(not(feature = "test-hooks"))]
fn crash_hook(_part: u16) {}

/// An archive about to be written to an object: where to build it locally first (a private
/// temporary directory, removed when this is dropped) and where it goes. Made before any work,
/// so a taken key is refused first.
pub(crate) struct Upload {
    store: Store,
    location: S3Location,
    /// The local file to build and verify before [`Upload::finish`].
    pub(crate) local: PathBuf,
    _work: tempfile::TempDir,
}

impl Upload {
    /// Prepares writing to the object `spec` (`s3://BUCKET/KEY`): the store reached, the
    /// bucket checked, an existing object refused unless `replace`.
    pub(crate) fn prepare(spec: &str, replace: bool) -> Result<Upload, StorageError> {
        let location = S3Location::parse(spec)?;
        let Some((_, name)) = location.split_name() else {
            return Err(StorageError::BadLocation {
                location: spec.to_string(),
                reason: "it names a bucket, not an object".into(),
            });
        };
        let store = Store::open_configured(&location)?;
        store.check()?;
        if !replace && store.head(&location.prefix)?.is_some() {
            return Err(StorageError::Exists {
                location: spec.to_string(),
            });
        }
        let work = tempfile::Builder::new()
            .prefix(".flowpack-upload-")
            .tempdir()
            .map_err(|cause| StorageError::Io {
                path: std::env::temp_dir().display().to_string(),
                cause,
            })?;
        Ok(Upload {
            local: work.path().join(&name),
            store,
            location,
            _work: work,
        })
    }

    /// Verifies `file` (the local file, or the writer's temporary one before it becomes the
    /// local file) as a reader will (structure, manifest, digests; signatures are the
    /// writer's own): an archive that fails is never uploaded, and the failure names the
    /// object it was meant for.
    pub(crate) fn verify(&self, file: &Path) -> Result<(), flowpack_core::archive::ArchiveError> {
        use flowpack_core::archive::{ArchiveError, Limits, TrustPolicy, verify_archive};
        let spec = self.location.to_string();
        let verified = verify_archive(file, &Limits::default(), &TrustPolicy::default())
            .map_err(|e| crate::input::rename_archive(e, file, &spec))?;
        match verified.first_failure() {
            Some(failed) => Err(ArchiveError::SelfCheck {
                archive: spec,
                reason: format!("{}: {}", failed.name, failed.detail),
            }),
            None => Ok(()),
        }
    }

    /// Uploads the local file whole (never over an object written meanwhile unless `replace`).
    pub(crate) fn finish(&self, replace: bool) -> Result<(), StorageError> {
        self.store
            .put_file(&self.local, &self.location.prefix, replace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let l = S3Location::parse("s3://backups/prod/nightly/").unwrap();
        assert_eq!(l.bucket, "backups");
        assert_eq!(l.prefix, "prod/nightly");
        assert_eq!(l.key("a.flowpack"), "prod/nightly/a.flowpack");
        assert_eq!(l.to_string(), "s3://backups/prod/nightly");
        let root = S3Location::parse("s3://backups").unwrap();
        assert_eq!(root.key("a"), "a");
        for bad in [
            "s3://",
            "s3://A",
            "s3://ab",
            "s3://b_c/x",
            "s3://bucket/../x",
            "s3://bucket/a//b",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Location::parse("dir/x").unwrap(),
            Location::Local(PathBuf::from("dir/x"))
        );
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn a_store_needs_its_variables_and_never_shows_the_secret() {
        let loc = S3Location::parse("s3://bucket/p").unwrap();
        let config = StorageConfig {
            endpoint: Some("http://127.0.0.1:9".into()),
            allow_http: Some(true),
            access_key_id_env: Some("FLOWPACK_TEST_UNSET_KEY_VARIABLE".into()),
            ..StorageConfig::default()
        };
        let err = Store::open(&loc, Some(&config)).unwrap_err();
        assert!(
            err.to_string()
                .contains("the variable FLOWPACK_TEST_UNSET_KEY_VARIABLE is not set"),
            "{err}"
        );
        let config = StorageConfig {
            endpoint: Some("http://127.0.0.1:9".into()),
            ..StorageConfig::default()
        };
        let err = Store::open(&loc, Some(&config)).unwrap_err();
        assert!(
            err.to_string().contains("plain HTTP is not allowed"),
            "{err}"
        );
    }
}
