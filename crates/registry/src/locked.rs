//! Spin's locked application (`spin.lock`), the JSON an OCI artifact
//! carries as its application config.
//!
//! The field names, optionality and version rules are Spin's: an artifact
//! Gyre pushes must load in Spin and one Spin pushed must load here. Maps
//! are `BTreeMap`s so the same app always serialises to the same bytes
//! (and so to the same digest).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Host requirement Spin defines for apps that call `*.spin.internal`.
pub(crate) const SERVICE_CHAINING: &str = "local_service_chaining";
/// The only host requirements Gyre can satisfy.
const SUPPORTED_HOST_REQUIREMENTS: &[&str] = &[SERVICE_CHAINING];

/// A fully resolved application.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct LockedApp {
    /// 0 or 1; written as 0 unless host requirements are present.
    pub spin_lock_version: u32,
    /// Sections the host must process, or refuse the app.
    #[serde(default)]
    pub must_understand: Vec<String>,
    /// `name`, `version`, `description`, `authors`, `triggers`, `trigger`, `origin`.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// App-wide host requirements (values other than `"optional"`).
    #[serde(default)]
    pub host_requirements: Map<String, Value>,
    /// Application variables.
    #[serde(default)]
    pub variables: BTreeMap<String, LockedVariable>,
    /// Triggers, in manifest order.
    pub triggers: Vec<LockedTrigger>,
    /// Components, in manifest order.
    pub components: Vec<LockedComponent>,
}

impl Serialize for LockedApp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let version = if self.must_understand.is_empty() && self.host_requirements.is_empty() {
            0
        } else {
            1
        };
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("spin_lock_version", &version)?;
        if !self.must_understand.is_empty() {
            map.serialize_entry("must_understand", &self.must_understand)?;
        }
        if !self.metadata.is_empty() {
            map.serialize_entry("metadata", &self.metadata)?;
        }
        if !self.host_requirements.is_empty() {
            map.serialize_entry("host_requirements", &self.host_requirements)?;
        }
        if !self.variables.is_empty() {
            map.serialize_entry("variables", &self.variables)?;
        }
        map.serialize_entry("triggers", &self.triggers)?;
        map.serialize_entry("components", &self.components)?;
        map.end()
    }
}

/// An application variable.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockedVariable {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Without a default the variable is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Never logged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

/// A trigger: its type and its configuration as written in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockedTrigger {
    /// Unique within the app.
    pub id: String,
    /// `http`, `redis`, ...
    pub trigger_type: String,
    /// The `[[trigger.<type>]]` table, with `component` set to an id.
    pub trigger_config: Value,
}

/// A component.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockedComponent {
    /// Unique within the app.
    pub id: String,
    /// `description`, `allowed_outbound_hosts`, `key_value_stores`,
    /// `databases`, `ai_models`, `build`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// The Wasm.
    pub source: LockedSource,
    /// WASI environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Files mounted into the guest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ContentPath>,
    /// Component variables (templates over application variables).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Dependencies still to compose (Spin composes them before pushing).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub dependencies: Map<String, Value>,
    /// Per-component host requirements.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub host_requirements: Map<String, Value>,
}

/// A component's Wasm.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockedSource {
    /// Always `application/wasm`.
    pub content_type: String,
    /// Where the bytes are.
    #[serde(flatten)]
    pub content: ContentRef,
}

/// A file placed at a guest path.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContentPath {
    /// Its bytes.
    #[serde(flatten)]
    pub content: ContentRef,
    /// Guest path (relative to the mount root in an artifact).
    pub path: String,
}

/// Content by URL, inline bytes or digest (at least one).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContentRef {
    /// A `file://` URL (local locks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The bytes themselves, base64 in JSON (small content).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "inline_to_base64",
        deserialize_with = "inline_from_base64"
    )]
    pub inline: Option<Vec<u8>>,
    /// `sha256:<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

fn inline_to_base64<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
        None => s.serialize_none(),
    }
}

fn inline_from_base64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| {
        base64::engine::general_purpose::STANDARD
            .decode(t)
            .map_err(serde::de::Error::custom)
    })
    .transpose()
}

impl LockedApp {
    /// Parses lock JSON and refuses what Gyre cannot honour, with Spin's
    /// wording for unsupported host requirements.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let app: LockedApp = serde_json::from_slice(bytes)
            .map_err(|e| format!("invalid locked application: {e}"))?;
        if app.spin_lock_version > 1 {
            return Err(format!(
                "the application is locked with version {} of Spin's lock format; Gyre reads versions 0 and 1",
                app.spin_lock_version
            ));
        }
        for section in &app.must_understand {
            if section != "host_requirements" && section != "component_host_requirements" {
                return Err(format!(
                    "the application requires the host to understand `{section}`, which Gyre does not"
                ));
            }
        }
        let unsupported: Vec<&str> = std::iter::once(&app.host_requirements)
            .chain(app.components.iter().map(|c| &c.host_requirements))
            .flat_map(|reqs| reqs.iter())
            .filter(|(key, value)| {
                value.as_str() != Some("optional")
                    && !SUPPORTED_HOST_REQUIREMENTS.contains(&key.as_str())
            })
            .map(|(key, _)| key.as_str())
            .collect();
        if !unsupported.is_empty() {
            return Err(format!(
                "This version of Gyre does not support the following features required by this application: {}",
                unsupported.join(", ")
            ));
        }
        Ok(app)
    }

    /// A string field of `metadata`.
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
}
