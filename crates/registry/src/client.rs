//! One configured `oci-client` and the errors a user can act on.

use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::{Client, Reference};

/// A failure talking to a registry, worded for the person who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The text is not an OCI reference.
    #[error(
        "{text:?} is not a registry reference ({reason}); expected REGISTRY/REPOSITORY[:TAG|@DIGEST], e.g. registry.example.com/team/app:v1"
    )]
    InvalidReference {
        /// What was given.
        text: String,
        /// Why it does not parse.
        reason: String,
    },
    /// No HTTP exchange happened: DNS, connection, TLS.
    #[error("cannot reach the registry {registry}{hint}")]
    Unreachable {
        /// `host[:port]`.
        registry: String,
        /// What to try.
        hint: &'static str,
        /// The transport's error.
        #[source]
        source: OciDistributionError,
    },
    /// Credentials missing or refused.
    #[error(
        "the registry {registry} refused access to {repository}: log in with `gyre registry login {registry}` (credentials are read from ~/.docker/config.json)"
    )]
    Unauthorized {
        /// `host[:port]`.
        registry: String,
        /// The repository.
        repository: String,
        /// The registry's answer.
        #[source]
        source: OciDistributionError,
    },
    /// `login` was given credentials the registry does not accept.
    #[error(
        "the registry {registry} refused these credentials: check the user name and the password or token"
    )]
    LoginRefused {
        /// `host[:port]`.
        registry: String,
        /// The registry's answer.
        #[source]
        source: OciDistributionError,
    },
    /// The reference names nothing.
    #[error(
        "{reference} was not found in the registry: check the repository and tag (`gyre registry push` creates them)"
    )]
    NotFound {
        /// The full reference.
        reference: String,
        /// The registry's answer.
        #[source]
        source: OciDistributionError,
    },
    /// Bytes whose digest is not the one the manifest promised.
    #[error(
        "{what} {digest} from {reference} does not match its digest, so nothing of it was stored: the registry's copy is corrupt or was altered; push the application again"
    )]
    DigestMismatch {
        /// "layer", "config", "manifest".
        what: &'static str,
        /// The promised digest.
        digest: String,
        /// The full reference.
        reference: String,
        /// Details (expected vs actual).
        detail: String,
    },
    /// Any other answer from the registry.
    #[error("the registry {registry} failed the request for {reference}")]
    Registry {
        /// `host[:port]`.
        registry: String,
        /// The full reference.
        reference: String,
        /// The registry's answer.
        #[source]
        source: OciDistributionError,
    },
}

impl RegistryError {
    /// Whether the registry could not be reached at all (so a copy pulled
    /// before may stand in).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    /// Sorts an `oci-client` error into what the user can do about it.
    pub(crate) fn from_oci(
        err: OciDistributionError,
        reference: &Reference,
        insecure: bool,
    ) -> Self {
        let registry = reference.resolve_registry().to_string();
        match err {
            OciDistributionError::RequestError(_) => Self::Unreachable {
                registry,
                hint: if insecure {
                    ": is it running, and is the address right?"
                } else {
                    ": is it running, and is the address right? A registry that serves plain HTTP (a local one) needs -k/--insecure"
                },
                source: err,
            },
            OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::UnauthorizedError { .. } => Self::Unauthorized {
                registry,
                repository: reference.repository().to_string(),
                source: err,
            },
            OciDistributionError::ServerError {
                code: 401 | 403, ..
            } => Self::Unauthorized {
                registry,
                repository: reference.repository().to_string(),
                source: err,
            },
            OciDistributionError::ServerError { code: 404, .. }
            | OciDistributionError::ImageManifestNotFoundError(_) => Self::NotFound {
                reference: reference.whole(),
                source: err,
            },
            OciDistributionError::RegistryError { ref envelope, .. }
                if envelope.errors.iter().any(|e| {
                    matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)
                }) =>
            {
                Self::Unauthorized {
                    registry,
                    repository: reference.repository().to_string(),
                    source: err,
                }
            }
            OciDistributionError::RegistryError { ref envelope, .. }
                if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                }) =>
            {
                Self::NotFound {
                    reference: reference.whole(),
                    source: err,
                }
            }
            OciDistributionError::DigestError(ref detail) => Self::DigestMismatch {
                what: "manifest",
                digest: reference.digest().unwrap_or("?").to_string(),
                reference: reference.whole(),
                detail: detail.to_string(),
            },
            other => Self::Registry {
                registry,
                reference: reference.whole(),
                source: other,
            },
        }
    }
}

/// Parses `text` as an OCI reference, with an error that shows the shape.
pub fn parse_reference(text: &str) -> Result<Reference, RegistryError> {
    text.parse::<Reference>()
        .map_err(|e| RegistryError::InvalidReference {
            text: text.to_string(),
            reason: e.to_string(),
        })
}

/// An OCI client set up for Spin artifacts.
pub struct RegistryClient {
    pub(crate) oci: Client,
    insecure: bool,
    plain_http: Vec<String>,
}

/// Registries (`host:port`, comma-separated) spoken to over plain HTTP
/// without `-k`.
pub const INSECURE_REGISTRIES_ENV: &str = "GYRE_INSECURE_REGISTRIES";

/// reqwest's rustls needs a process-wide crypto provider before any client
/// is built; ring is the one in Gyre's tree. A second install is harmless.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl RegistryClient {
    /// `insecure` speaks plain HTTP to every registry (`-k`), as Spin does;
    /// otherwise HTTPS with the system's roots, except to the registries
    /// listed in [`INSECURE_REGISTRIES_ENV`] (where a command line cannot
    /// carry `-k`, such as SpinKube's spintainer executor).
    pub fn new(insecure: bool) -> Self {
        install_crypto_provider();
        let plain_http: Vec<String> = std::env::var(INSECURE_REGISTRIES_ENV)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let protocol = if insecure {
            oci_client::client::ClientProtocol::Http
        } else if plain_http.is_empty() {
            oci_client::client::ClientProtocol::Https
        } else {
            oci_client::client::ClientProtocol::HttpsExcept(plain_http.clone())
        };
        let config = oci_client::client::ClientConfig {
            protocol,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            ..Default::default()
        };
        Self {
            oci: Client::new(config),
            insecure,
            plain_http,
        }
    }

    /// An `oci-client` error, sorted for the user.
    pub(crate) fn error(&self, err: OciDistributionError, reference: &Reference) -> RegistryError {
        RegistryError::from_oci(err, reference, self.plain_http_to(reference))
    }

    fn plain_http_to(&self, reference: &Reference) -> bool {
        self.insecure
            || self
                .plain_http
                .iter()
                .any(|r| r == reference.resolve_registry())
    }

    /// The tags of `reference`'s repository.
    pub async fn list_tags(&self, reference: &Reference) -> Result<Vec<String>, RegistryError> {
        let auth = crate::auth_for(reference.resolve_registry());
        self.oci
            .list_tags(reference, &auth, None, None)
            .await
            .map(|response| response.tags)
            .map_err(|e| self.error(e, reference))
    }

    /// Checks credentials against `server`. A token service checks them
    /// when it hands out a token; a registry with basic auth checks them on
    /// each request, so a manifest of a repository that need not exist is
    /// asked for: "not found" means the credentials were accepted.
    pub async fn check_login(
        &self,
        server: &str,
        auth: &oci_client::secrets::RegistryAuth,
    ) -> Result<(), RegistryError> {
        let reference = parse_reference(&format!("{server}/gyre-login-check:latest"))?;
        let to_error = |e| match self.error(e, &reference) {
            RegistryError::Unauthorized {
                registry, source, ..
            } => RegistryError::LoginRefused { registry, source },
            other => other,
        };
        let token = self
            .oci
            .auth(&reference, auth, oci_client::RegistryOperation::Pull)
            .await
            .map_err(to_error)?;
        if token.is_some() {
            return Ok(());
        }
        match self.oci.pull_image_manifest(&reference, auth).await {
            Ok(_) => Ok(()),
            Err(e) => match to_error(e) {
                RegistryError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }
}
