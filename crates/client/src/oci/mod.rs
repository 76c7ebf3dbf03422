//! Publishing archives to OCI registries and pulling them back.
//!
//! A flowpack archive is stored as an OCI 1.1 artifact: an image manifest with
//! `artifactType: application/vnd.flowpack.archive.v1`, the empty config
//! (`application/vnd.oci.empty.v1+json`, `{}`) and one layer
//! `application/vnd.flowpack.archive.v1+zip` holding the archive's exact bytes. Registries that
//! keep Helm charts and ORAS artifacts keep these too; tags are versions, digests pin them.
//!
//! - [`Reference`] parses `oci://HOST[:PORT]/REPO(:TAG|@sha256:HEX)`.
//! - [`RegistryClient`] speaks the distribution API (blobs, manifests, auth challenges, retries).
//! - [`publish_file`], [`pull`] and [`pull_to_temp`] move an artifact's one file in and out of a
//!   registry; they never print, and know nothing of what the file holds (flowpack-action's
//!   `publish` and `pull` read and verify the archive).
//!
//! ```
//! use flowpack_client::oci::Reference;
//!
//! let r = Reference::parse("oci://registry.example.com:5000/team/orders:1.2.0").unwrap();
//! assert_eq!(r.repository, "team/orders");
//! assert_eq!(r.tag.as_deref(), Some("1.2.0"));
//! assert!(Reference::parse("oci://registry.example.com").is_err());
//! ```

mod client;
mod manifest;
mod ops;
mod reference;

pub use client::{
    Access, Credentials, DEFAULT_DEADLINE, FetchedManifest, MAX_MANIFEST_SIZE, PASSWORD_ENV,
    RegistryClient, RegistryOptions, USER_ENV, sha256_digest,
};
pub use manifest::{
    ANNOTATION_CREATED, ANNOTATION_DESCRIPTION, ANNOTATION_MANIFEST_SHA256, ANNOTATION_TITLE,
    ANNOTATION_VERSION, ARTIFACT_TYPE, Descriptor, EMPTY_CONFIG, EMPTY_DIGEST, EMPTY_MEDIA_TYPE,
    ImageManifest, LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
};
pub use ops::{
    ArtifactInfo, DEFAULT_MAX_SIZE, FetchOptions, PublishReport, PullReport, PulledArchive,
    publish_file, pull, pull_to_temp,
};
pub use reference::{Reference, SCHEME, is_reference};

/// Why a registry refused to authenticate ([`OciError::Unauthenticated`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The registry demands credentials and none were given.
    #[error(
        "the registry demands credentials: set {} and {}",
        client::USER_ENV,
        client::PASSWORD_ENV
    )]
    NoCredentials,
    /// The registry refused the credentials given (basic or bearer challenge answered again).
    #[error("the credentials from {} were refused", client::USER_ENV)]
    CredentialsRefused,
    /// The registry answered 401 to a request that carried credentials.
    #[error("the registry refused the credentials")]
    RegistryRefused,
    /// The token service refused the credentials given.
    #[error("the token service refused the credentials from {}", client::USER_ENV)]
    TokenServiceRefused,
    /// The Bearer challenge names no realm to ask for a token.
    #[error("the registry's Bearer challenge names no realm")]
    NoRealm,
    /// A 401 without a `WWW-Authenticate` challenge.
    #[error("the registry answered 401 without a WWW-Authenticate challenge")]
    NoChallenge,
    /// A challenge in a scheme other than Basic or Bearer.
    #[error("unsupported authentication scheme {scheme:?}")]
    UnsupportedScheme {
        /// The scheme, as the registry wrote it.
        scheme: String,
    },
    /// The token service's answer is not a token document.
    #[error("the token service's answer is not a token: {detail}")]
    NotAToken {
        /// What the JSON parser said.
        detail: String,
    },
    /// The token service answered without a token.
    #[error("the token service returned no token")]
    NoToken,
}

/// What went wrong talking to a registry or with what it holds. Messages name the request,
/// reference or file at fault and never carry credentials or tokens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// The `oci://` reference is malformed (or unusable for the operation).
    #[error("{reference}: {reason}")]
    Reference {
        /// The reference as given (any userinfo masked).
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry configuration (credentials in the environment) is incomplete.
    #[error("registry credentials: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The registry wants (other) credentials.
    #[error("{request}: authentication failed (401): {reason}")]
    Unauthenticated {
        /// The request.
        request: String,
        /// Why, for a caller to decide on (ask for credentials, or not).
        reason: AuthFailure,
    },
    /// The credentials are not allowed to do this.
    #[error("{request}: access denied (403): {message}")]
    Denied {
        /// The request.
        request: String,
        /// The registry's message.
        message: String,
    },
    /// The manifest, tag or blob does not exist.
    #[error("{request}: not found (404): {message}")]
    NotFound {
        /// The request.
        request: String,
        /// The registry's message.
        message: String,
    },
    /// Any other refusal, or a retryable one after the last attempt.
    #[error("{request}: HTTP {status} after {}: {message}", crate::attempts(*.attempts))]
    Status {
        /// The request.
        request: String,
        /// The HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The registry's message.
        message: String,
    },
    /// The registry could not be reached, or a transfer broke off, after the last attempt.
    #[error("{request}: {message} (after {})", crate::attempts(*.attempts))]
    Transport {
        /// The request.
        request: String,
        /// Attempts made.
        attempts: u32,
        /// What failed.
        message: String,
    },
    /// The overall deadline ([`RegistryOptions::deadline`]) passed: the registry answered too
    /// slowly (or not at all) for the transfer to end in time.
    #[error("{request}: not finished within the overall time limit of {seconds} s; stopped")]
    Deadline {
        /// The request under way.
        request: String,
        /// The limit, in seconds.
        seconds: f64,
    },
    /// The registry answered the TLS handshake in plain HTTP (a registry without TLS, reached
    /// as `https://`; not retried).
    #[error("{request}: the registry answered in plain HTTP, not TLS ({message})")]
    NotTls {
        /// The request.
        request: String,
        /// What the TLS layer said.
        message: String,
    },
    /// The registry broke the protocol.
    #[error("{request}: {reason}")]
    Protocol {
        /// The request.
        request: String,
        /// What it did.
        reason: String,
    },
    /// The artifact is not a flowpack archive as published by flowpack.
    #[error("{reference}: not a flowpack archive: {reason}")]
    Invalid {
        /// The reference.
        reference: String,
        /// Which field is wrong.
        reason: String,
    },
    /// Content does not match its digest or size.
    #[error("{what}: content does not match: expected {expected}, got {actual}")]
    Digest {
        /// The manifest or blob.
        what: String,
        /// What its descriptor or reference says.
        expected: String,
        /// What arrived.
        actual: String,
    },
    /// Content is larger than allowed.
    #[error("{what}: larger than the limit of {limit} bytes")]
    TooLarge {
        /// The manifest or blob.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A local file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },
    /// The output exists and overwriting was not asked for.
    #[error("{path}: already exists and replacing it was not allowed")]
    Exists {
        /// The output file.
        path: String,
    },
}

impl OciError {
    /// Whether the input itself was rejected — an unknown tag or digest, an artifact that is not
    /// a flowpack archive, content that does not match its digest, too large — rather than the operation being unable to run (network, authentication, local
    /// files, usage). The CLI exits 1 for the first kind and 2 for the second.
    pub fn rejects_input(&self) -> bool {
        matches!(
            self,
            OciError::NotFound { .. }
                | OciError::Invalid { .. }
                | OciError::Digest { .. }
                | OciError::TooLarge { .. }
        )
    }

    /// Whether trying again may help (408, 429, 5xx, connection failures).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            OciError::Transport { .. } => true,
            OciError::Status { status, .. } => {
                *status == 408 || *status == 429 || (500..600).contains(status)
            }
            _ => false,
        }
    }
}
