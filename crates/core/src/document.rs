//! The export document: a `Value`-first model.
//!
//! An export document is kept as the `serde_json::Value` it was read as (with `preserve_order`
//! and `arbitrary_precision`, so key order and every number's exact text survive). Typed *views*
//! ([`FlowView`], [`VersionView`], [`StepView`], …) borrow from that value and give typed access
//! to what flowpack reasons about. Fields flowpack does not model are never touched, so reading
//! and writing an unmigrated document yields the same JSON value (the fidelity rule).

use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};

/// Errors reading or writing an export document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The file could not be read.
    #[error("{path}: cannot read: {cause}")]
    Read {
        /// The file at fault.
        path: String,
        /// The I/O error (in the message, not the error chain, so it prints once).
        #[source]
        cause: std::io::Error,
    },
    /// The bytes are not JSON.
    #[error("{path}: not valid JSON: {cause}")]
    Json {
        /// The file (or archive entry) at fault.
        path: String,
        /// The parser's error, with line and column.
        #[source]
        cause: serde_json::Error,
    },
    /// The JSON is not an object.
    #[error("{path}: an export document is a JSON object, found {found}")]
    NotAnObject {
        /// The file (or archive entry) at fault.
        path: String,
        /// What was found instead (`array`, `string`, …).
        found: &'static str,
    },
    /// The JSON object has none of the five top-level keys of an export document.
    #[error(
        "{path}: not an export document (none of its top-level keys metadata, flow, systems, \
         scripts, dependencies)"
    )]
    NotAnExportDocument {
        /// The file (or archive entry) at fault.
        path: String,
    },
    /// The document costs more than the per-document bound allows; refused before parsing.
    #[error("{path}: refused before parsing: {reason}")]
    Bound {
        /// The file (or archive entry) at fault.
        path: String,
        /// Which bound, and its value.
        reason: String,
    },
    /// `metadata.format_version` names a version flowpack does not know.
    #[error(
        "{path}: unsupported export format version {found} at /metadata/format_version (known: 1, 2)"
    )]
    UnknownFormat {
        /// The file (or archive entry) at fault.
        path: String,
        /// The value found.
        found: String,
    },
}

/// Reads the export document file `path` (named `shown` in errors) into `buf` within
/// `bound.max_bytes`: a file past the bound is refused by its size before it is read (and cut
/// off if it grows while read), a file that is not a regular file (`/dev/zero`, a pipe) is
/// refused unread — both as [`DocumentError::Bound`] (rejected input); a file that cannot be
/// read is [`DocumentError::Read`].
pub fn read_document_file(
    path: &Path,
    shown: &str,
    bound: &DocumentBound,
    buf: &mut Vec<u8>,
) -> Result<(), DocumentError> {
    use crate::fsutil::{ReadError, read_bounded_into};
    read_bounded_into(path, bound.max_bytes, "an export document", buf).map_err(|e| match e {
        ReadError::Io { cause, .. } => DocumentError::Read {
            path: shown.to_string(),
            cause,
        },
        ReadError::NotRegular { .. } => DocumentError::Bound {
            path: shown.to_string(),
            reason: "not a regular file (a device, pipe or directory); not read".into(),
        },
        ReadError::TooLarge { .. } => DocumentError::Bound {
            path: shown.to_string(),
            reason: format!(
                "larger than the per-document bound of {} bytes; not read",
                bound.max_bytes
            ),
        },
    })
}

/// What parsing one document may cost: every document is checked against this bound by a
/// streaming scan of its bytes before any JSON value is built, so a small file of tiny values (a
/// 60 MiB entry of `1,1,1,…` builds gigabytes of values) is refused with the bound named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentBound {
    /// Largest document, in bytes (default 16 MiB).
    pub max_bytes: u64,
    /// Most JSON values: objects, arrays, strings, numbers, `true`, `false`, `null`; object keys
    /// not counted (default 1,000,000).
    pub max_values: u64,
    /// Deepest nesting of objects and arrays (default 128).
    pub max_depth: usize,
}

impl Default for DocumentBound {
    fn default() -> Self {
        DocumentBound {
            max_bytes: 16 * 1024 * 1024,
            max_values: 1_000_000,
            max_depth: 128,
        }
    }
}

impl DocumentBound {
    /// The reason `len` bytes are over the size bound, if they are.
    pub fn check_size(&self, len: u64) -> Result<(), String> {
        if len > self.max_bytes {
            return Err(format!(
                "larger than the per-document bound of {} bytes",
                self.max_bytes
            ));
        }
        Ok(())
    }

    /// Checks `bytes` against every bound with one pass over the bytes (no value is built); the
    /// error names the bound. Malformed JSON is left to the parser.
    pub fn check(&self, bytes: &[u8]) -> Result<(), String> {
        self.measure(bytes).map(|_| ())
    }

    /// [`measure`](DocumentBound::measure) of the document `origin`, the error naming it.
    pub fn cost(&self, bytes: &[u8], origin: &str) -> Result<u64, DocumentError> {
        self.measure(bytes).map_err(|reason| DocumentError::Bound {
            path: origin.to_string(),
            reason,
        })
    }

    /// Like [`check`](DocumentBound::check), and returns the number of JSON values counted:
    /// the cost a [`ParseBudget`](crate::budget::ParseBudget) charges for parsing `bytes`.
    pub fn measure(&self, bytes: &[u8]) -> Result<u64, String> {
        self.check_size(bytes.len() as u64)?;
        let (mut values, mut depth) = (0u64, 0usize);
        let mut expect_value = true;
        let too_many = || {
            format!(
                "more than the per-document bound of {} JSON values",
                self.max_values
            )
        };
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            match b {
                b'"' => {
                    values += 1;
                    expect_value = false;
                    if values > self.max_values {
                        return Err(too_many());
                    }
                    // Skip the string's content: jump to the next quote or backslash (an
                    // escape skips the byte after it), not byte by byte.
                    loop {
                        match bytes
                            .get(i..)
                            .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
                        {
                            // Unterminated: the rest is inside the string.
                            None => {
                                i = bytes.len();
                                break;
                            }
                            Some(at) => {
                                i += at + 1;
                                if bytes[i - 1] == b'"' {
                                    break;
                                }
                                i += 1;
                            }
                        }
                    }
                }
                // The string before a colon was a key, not a value.
                b':' => {
                    values = values.saturating_sub(1);
                    expect_value = true;
                }
                b'{' | b'[' => {
                    values += 1;
                    depth += 1;
                    expect_value = true;
                    if depth > self.max_depth {
                        return Err(format!(
                            "nested deeper than the per-document bound of {} levels",
                            self.max_depth
                        ));
                    }
                    if values > self.max_values {
                        return Err(too_many());
                    }
                }
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    expect_value = false;
                }
                b',' => expect_value = true,
                b' ' | b'\t' | b'\n' | b'\r' => {}
                _ => {
                    if expect_value {
                        values += 1;
                        expect_value = false;
                        if values > self.max_values {
                            return Err(too_many());
                        }
                    }
                }
            }
        }
        Ok(values)
    }
}

/// The top-level keys of an export document; a JSON object with none of them is not one.
const EXPORT_KEYS: [&str; 5] = ["metadata", "flow", "systems", "scripts", "dependencies"];

/// An export format version. Neither version carries its own number in the wild;
/// flowpack detects it and records it as `metadata.format_version` when it writes a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(into = "u32")]
pub enum FormatVersion {
    /// Legacy: steps carry `microservice`, no ids, routes name steps by name.
    V1 = 1,
    /// Current: five top-level keys, step ids, `connections`.
    V2 = 2,
}

impl FormatVersion {
    /// The newest format version flowpack knows.
    pub const LATEST: FormatVersion = FormatVersion::V2;

    /// The version's number.
    pub fn number(self) -> u32 {
        self as u32
    }

    /// The version with this number, if flowpack knows it.
    pub(crate) fn from_number(n: u64) -> Option<FormatVersion> {
        match n {
            1 => Some(FormatVersion::V1),
            2 => Some(FormatVersion::V2),
            _ => None,
        }
    }
}

impl From<FormatVersion> for u32 {
    fn from(v: FormatVersion) -> u32 {
        v.number()
    }
}

impl fmt::Display for FormatVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// How a document's format version was determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Detection {
    /// `metadata.format_version` says so.
    Stamped,
    /// Inferred from the steps (`microservice` vs `type`).
    Inferred,
}

/// An export document of either format version.
///
/// ```
/// use flowpack_core::document::{Document, FormatVersion};
/// let doc = Document::from_slice(br#"{"metadata":{"flow_name":"A"},"flow":{"name":"A","versions":[
///     {"status":"Draft","steps":[{"id":1,"type":"trigger","name":"Start"}]}]},
///     "systems":[],"scripts":[],"dependencies":[]}"#, "a.json").unwrap();
/// assert_eq!(doc.format_version(), FormatVersion::V2);
/// assert_eq!(doc.flow().unwrap().versions().next().unwrap().steps().count(), 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    value: Value,
    format: FormatVersion,
    detection: Detection,
}

impl Document {
    /// Reads a document from a file under the default [`DocumentBound`]; errors name the file.
    pub fn read(path: &Path) -> Result<Document, DocumentError> {
        let shown = path.display().to_string();
        let mut bytes = Vec::new();
        read_document_file(path, &shown, &DocumentBound::default(), &mut bytes)?;
        Document::from_slice(&bytes, &shown)
    }

    /// Parses a document under the default [`DocumentBound`]; `origin` (a path or archive
    /// entry) names it in errors. A leading UTF-8 byte order mark is skipped.
    pub fn from_slice(bytes: &[u8], origin: &str) -> Result<Document, DocumentError> {
        Document::from_slice_bounded(bytes, origin, &DocumentBound::default())
    }

    /// Parses a document after checking `bytes` against `bound` (before any value is built).
    pub fn from_slice_bounded(
        bytes: &[u8],
        origin: &str,
        bound: &DocumentBound,
    ) -> Result<Document, DocumentError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        bound.cost(bytes, origin)?;
        let value: Value = parse_json(bytes).map_err(|cause| DocumentError::Json {
            path: origin.to_string(),
            cause,
        })?;
        Document::from_value(value, origin)
    }

    /// Parses a document like [`from_slice_bounded`](Document::from_slice_bounded), first taking
    /// its cost (the number of JSON values, counted before any value is built) from `budget`:
    /// the call waits while other parses hold the budget. The permit returned holds that share
    /// until it is dropped; keep it as long as the document, or anything built from it, lives.
    pub fn parse_within<'b>(
        bytes: &[u8],
        origin: &str,
        bound: &DocumentBound,
        budget: &'b crate::budget::ParseBudget,
    ) -> Result<(Document, crate::budget::Permit<'b>), DocumentError> {
        Document::parse_within_charged(bytes, origin, bound, budget, 1)
    }

    /// [`parse_within`](Document::parse_within), taking `copies` times the document's cost: for
    /// a caller that will hold that many documents of its size at once (e.g. this one and the
    /// one it is compared with).
    pub fn parse_within_charged<'b>(
        bytes: &[u8],
        origin: &str,
        bound: &DocumentBound,
        budget: &'b crate::budget::ParseBudget,
        copies: u64,
    ) -> Result<(Document, crate::budget::Permit<'b>), DocumentError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let cost = bound.cost(bytes, origin)?;
        let permit = budget.acquire(cost.saturating_mul(copies));
        let value: Value = parse_json(bytes).map_err(|cause| DocumentError::Json {
            path: origin.to_string(),
            cause,
        })?;
        Ok((Document::from_value(value, origin)?, permit))
    }

    /// Wraps a JSON value; it must be an object with at least one of the five top-level keys.
    pub fn from_value(value: Value, origin: &str) -> Result<Document, DocumentError> {
        let Some(root) = value.as_object() else {
            return Err(DocumentError::NotAnObject {
                path: origin.to_string(),
                found: json_type_name(&value),
            });
        };
        if !EXPORT_KEYS.iter().any(|k| root.contains_key(*k)) {
            return Err(DocumentError::NotAnExportDocument {
                path: origin.to_string(),
            });
        }
        let (format, detection) =
            detect_format(&value).map_err(|found| DocumentError::UnknownFormat {
                path: origin.to_string(),
                found,
            })?;
        Ok(Document {
            value,
            format,
            detection,
        })
    }

    /// The document's format version: `metadata.format_version` when present; else 1 when steps
    /// carry `microservice` and none carries `type`; else 2.
    pub fn format_version(&self) -> FormatVersion {
        self.format
    }

    /// Whether the version was stamped in the document or inferred.
    pub fn detection(&self) -> Detection {
        self.detection
    }

    /// The whole document as JSON.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The top-level object.
    pub fn root(&self) -> &Map<String, Value> {
        self.value.as_object().expect("a document is an object")
    }

    /// Consumes the document, giving back its JSON.
    pub fn into_value(self) -> Value {
        self.value
    }

    /// Mutable access to the JSON. The format version is re-detected by [`Document::redetect`];
    /// callers that change what detection looks at (migrations) call it afterwards.
    pub(crate) fn value_mut(&mut self) -> &mut Value {
        &mut self.value
    }

    /// Re-runs format detection after the value was changed.
    pub fn redetect(&mut self) -> Result<(), DocumentError> {
        let (format, detection) =
            detect_format(&self.value).map_err(|found| DocumentError::UnknownFormat {
                path: "document".to_string(),
                found,
            })?;
        self.format = format;
        self.detection = detection;
        Ok(())
    }

    /// Records `version` as `metadata.format_version` (creating `metadata` if absent, appending
    /// the key at its end so the order of existing keys is kept).
    pub(crate) fn stamp_format_version(&mut self, version: FormatVersion) {
        let root = self.value.as_object_mut().expect("a document is an object");
        let metadata = root
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(m) = metadata.as_object_mut() {
            m.insert("format_version".into(), Value::from(version.number()));
        }
        self.format = version;
        self.detection = Detection::Stamped;
    }

    /// Removes `metadata.format_version`, if present (the document then says what the platform
    /// itself would have exported).
    pub fn unstamp_format_version(&mut self) {
        if let Some(m) = self
            .value
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            m.shift_remove("format_version");
        }
        if self.detection == Detection::Stamped {
            self.detection = Detection::Inferred;
        }
    }

    /// `metadata`, if it is an object.
    pub fn metadata(&self) -> Option<&Map<String, Value>> {
        self.value.get("metadata")?.as_object()
    }

    /// The flow's name: `flow.name`, else `metadata.flow_name`.
    pub fn flow_name(&self) -> Option<&str> {
        self.flow()
            .and_then(|f| f.name())
            .or_else(|| self.metadata()?.get("flow_name")?.as_str())
    }

    /// The `flow` object.
    pub fn flow(&self) -> Option<FlowView<'_>> {
        self.value
            .get("flow")?
            .as_object()
            .map(|obj| FlowView { obj })
    }

    /// The entries of `systems`, each unwrapped from its `{system: {...}}` envelope.
    pub fn systems(&self) -> impl Iterator<Item = SystemView<'_>> {
        array_at(&self.value, "systems")
            .enumerate()
            .filter_map(|(index, v)| {
                let obj = v.get("system")?.as_object()?;
                Some(SystemView { index, obj })
            })
    }

    /// The entries of `scripts`.
    pub fn scripts(&self) -> impl Iterator<Item = ScriptView<'_>> {
        array_at(&self.value, "scripts")
            .enumerate()
            .filter_map(|(index, v)| {
                Some(ScriptView {
                    index,
                    obj: v.as_object()?,
                })
            })
    }

    /// The entries of `dependencies` as `(type, name)`.
    pub fn dependencies(&self) -> impl Iterator<Item = (Option<&str>, Option<&str>)> {
        array_at(&self.value, "dependencies").map(|d| (str_at(d, "type"), str_at(d, "name")))
    }

    /// Serialises the document as pretty JSON (two-space indent, trailing newline).
    pub fn to_pretty_bytes(&self) -> Vec<u8> {
        to_pretty_bytes(&self.value)
    }
}

/// Pretty JSON with a trailing newline, the form flowpack writes documents in.
pub fn to_pretty_bytes(value: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).expect("a JSON value serialises");
    out.push(b'\n');
    out
}

/// `value` as JSON in the layout of `original`, the bytes it was read from: compact when they
/// were (no line break inside), else pretty with their indentation (the leading spaces or tabs
/// of their second line); a trailing newline when they had one. A rewritten document (secrets
/// stripped, versions dropped) thus keeps the form it came in, and a compact export is not
/// doubled in size.
pub fn to_bytes_like(value: &Value, original: &[u8]) -> Vec<u8> {
    let body = original.trim_ascii();
    let mut out = match body.iter().position(|&b| b == b'\n') {
        None => serde_json::to_vec(value).expect("a JSON value serialises"),
        Some(nl) => {
            let indent: Vec<u8> = body[nl + 1..]
                .iter()
                .take_while(|&&b| b == b' ' || b == b'\t')
                .copied()
                .collect();
            let indent = if indent.is_empty() {
                b"  ".to_vec()
            } else {
                indent
            };
            let mut out = Vec::with_capacity(original.len());
            let formatter = serde_json::ser::PrettyFormatter::with_indent(&indent);
            let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
            serde::Serialize::serialize(value, &mut ser).expect("a JSON value serialises");
            out
        }
    };
    if original.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

fn detect_format(value: &Value) -> Result<(FormatVersion, Detection), String> {
    if let Some(v) = value.pointer("/metadata/format_version") {
        return match v.as_u64().and_then(FormatVersion::from_number) {
            Some(f) => Ok((f, Detection::Stamped)),
            None => Err(v.to_string()),
        };
    }
    let mut any_microservice = false;
    let mut any_type = false;
    if let Some(versions) = value.pointer("/flow/versions").and_then(Value::as_array) {
        for step in versions
            .iter()
            .filter_map(|v| v.get("steps")?.as_array())
            .flatten()
        {
            any_microservice |= step.get("microservice").is_some();
            any_type |= step.get("type").is_some();
        }
    }
    let format = if any_microservice && !any_type {
        FormatVersion::V1
    } else {
        FormatVersion::V2
    };
    Ok((format, Detection::Inferred))
}

/// The JSON type name of a value, for messages.
pub(crate) fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn array_at<'a>(v: &'a Value, key: &str) -> std::slice::Iter<'a, Value> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter())
        .unwrap_or_default()
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)?.as_str()
}

/// Escapes one reference token of an RFC 6901 JSON pointer (`~` → `~0`, `/` → `~1`).
pub(crate) fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The `flow` object of a document.
#[derive(Debug, Clone, Copy)]
pub struct FlowView<'a> {
    obj: &'a Map<String, Value>,
}

impl<'a> FlowView<'a> {
    /// The raw object.
    pub fn raw(&self) -> &'a Map<String, Value> {
        self.obj
    }
    /// `flow.name`.
    pub fn name(&self) -> Option<&'a str> {
        self.obj.get("name")?.as_str()
    }
    /// `flow.description`.
    pub fn description(&self) -> Option<&'a str> {
        self.obj.get("description")?.as_str()
    }
    /// `flow.is_enabled`.
    pub fn is_enabled(&self) -> Option<bool> {
        self.obj.get("is_enabled")?.as_bool()
    }
    /// `flow.priority` (1–5, 1 highest), when it is an integer.
    pub fn priority(&self) -> Option<i64> {
        self.obj.get("priority")?.as_i64()
    }
    /// `flow.versions`, in document order.
    pub fn versions(&self) -> impl Iterator<Item = VersionView<'a>> + 'a {
        self.obj
            .get("versions")
            .and_then(Value::as_array)
            .map(|a| a.iter())
            .unwrap_or_default()
            .enumerate()
            .filter_map(|(index, v)| {
                Some(VersionView {
                    index,
                    obj: v.as_object()?,
                })
            })
    }
}

/// A version's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum VersionStatus {
    /// The editable version; at most one.
    Draft,
    /// The running version; at most one.
    Deployed,
    /// Any other version.
    Inactive,
}

impl VersionStatus {
    /// Parses the platform's spelling.
    pub fn parse(s: &str) -> Option<VersionStatus> {
        match s {
            "Draft" => Some(VersionStatus::Draft),
            "Deployed" => Some(VersionStatus::Deployed),
            "Inactive" => Some(VersionStatus::Inactive),
            _ => None,
        }
    }
    /// The platform's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Draft => "Draft",
            VersionStatus::Deployed => "Deployed",
            VersionStatus::Inactive => "Inactive",
        }
    }
}

/// One entry of `flow.versions`.
#[derive(Debug, Clone, Copy)]
pub struct VersionView<'a> {
    index: usize,
    obj: &'a Map<String, Value>,
}

impl<'a> VersionView<'a> {
    /// The index in `flow.versions`.
    pub fn index(&self) -> usize {
        self.index
    }
    /// The JSON pointer of this version (`/flow/versions/N`).
    pub fn pointer(&self) -> String {
        format!("/flow/versions/{}", self.index)
    }
    /// The raw object.
    pub fn raw(&self) -> &'a Map<String, Value> {
        self.obj
    }
    /// `iteration` (absent in version 1).
    pub fn iteration(&self) -> Option<i64> {
        self.obj.get("iteration")?.as_i64()
    }
    /// `status` as written.
    pub(crate) fn status_str(&self) -> Option<&'a str> {
        self.obj.get("status")?.as_str()
    }
    /// `status`, when it is one of the known three.
    pub fn status(&self) -> Option<VersionStatus> {
        VersionStatus::parse(self.status_str()?)
    }
    /// `is_deployed`.
    pub fn is_deployed(&self) -> Option<bool> {
        self.obj.get("is_deployed")?.as_bool()
    }
    /// `steps`, in document order.
    pub fn steps(&self) -> impl Iterator<Item = StepView<'a>> + 'a {
        let base = self.index;
        self.obj
            .get("steps")
            .and_then(Value::as_array)
            .map(|a| a.iter())
            .unwrap_or_default()
            .enumerate()
            .filter_map(move |(index, v)| {
                Some(StepView {
                    version: base,
                    index,
                    obj: v.as_object()?,
                })
            })
    }
    /// `connections` as `(index, from, to)`; absent in version 1.
    pub fn connections(&self) -> impl Iterator<Item = ConnectionView<'a>> + 'a {
        let base = self.index;
        self.obj
            .get("connections")
            .and_then(Value::as_array)
            .map(|a| a.iter())
            .unwrap_or_default()
            .enumerate()
            .map(move |(index, v)| ConnectionView {
                version: base,
                index,
                from: v.get("from"),
                to: v.get("to"),
            })
    }
    /// `variables` as typed views.
    pub fn variables(&self) -> impl Iterator<Item = VariableView<'a>> + 'a {
        let base = self.index;
        self.obj
            .get("variables")
            .and_then(Value::as_array)
            .map(|a| a.iter())
            .unwrap_or_default()
            .enumerate()
            .filter_map(move |(index, v)| {
                Some(VariableView {
                    version: base,
                    index,
                    obj: v.as_object()?,
                })
            })
    }
    /// `schedules[].cron_string` with each schedule's pointer.
    pub fn schedules(&self) -> impl Iterator<Item = (String, Option<&'a str>)> + 'a {
        let base = self.index;
        self.obj
            .get("schedules")
            .and_then(Value::as_array)
            .map(|a| a.iter())
            .unwrap_or_default()
            .enumerate()
            .map(move |(i, s)| {
                (
                    format!("/flow/versions/{base}/schedules/{i}/cron_string"),
                    s.get("cron_string").and_then(Value::as_str),
                )
            })
    }
}

/// A `{from, to}` entry of a version's `connections`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionView<'a> {
    version: usize,
    index: usize,
    /// The step id the connection leaves.
    pub from: Option<&'a Value>,
    /// The step id the connection enters.
    pub to: Option<&'a Value>,
}

impl ConnectionView<'_> {
    /// The JSON pointer of this connection.
    pub fn pointer(&self) -> String {
        format!("/flow/versions/{}/connections/{}", self.version, self.index)
    }
}

/// One entry of a version's `variables`.
#[derive(Debug, Clone, Copy)]
pub struct VariableView<'a> {
    version: usize,
    index: usize,
    obj: &'a Map<String, Value>,
}

impl<'a> VariableView<'a> {
    /// The JSON pointer of this variable.
    pub fn pointer(&self) -> String {
        format!("/flow/versions/{}/variables/{}", self.version, self.index)
    }
    /// `key`.
    pub fn key(&self) -> Option<&'a str> {
        self.obj.get("key")?.as_str()
    }
    /// `value` (a string on the platform; other JSON is kept as is).
    pub fn value(&self) -> Option<&'a Value> {
        self.obj.get("value")
    }
    /// `is_secret`.
    pub fn is_secret(&self) -> bool {
        self.obj
            .get("is_secret")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// One step of a version.
#[derive(Debug, Clone, Copy)]
pub struct StepView<'a> {
    version: usize,
    index: usize,
    obj: &'a Map<String, Value>,
}

impl<'a> StepView<'a> {
    /// The index in the version's `steps`.
    pub fn index(&self) -> usize {
        self.index
    }
    /// The JSON pointer of this step.
    pub fn pointer(&self) -> String {
        format!("/flow/versions/{}/steps/{}", self.version, self.index)
    }
    /// The raw object.
    pub fn raw(&self) -> &'a Map<String, Value> {
        self.obj
    }
    /// `id` (version 2; a number, possibly beyond 2^53, or a string).
    pub fn id(&self) -> Option<&'a Value> {
        self.obj.get("id")
    }
    /// The step type: `type` in version 2, `microservice` in version 1.
    pub fn kind(&self) -> Option<&'a str> {
        self.obj
            .get("type")
            .or_else(|| self.obj.get("microservice"))?
            .as_str()
    }
    /// `name`.
    pub fn name(&self) -> Option<&'a str> {
        self.obj.get("name")?.as_str()
    }
    /// `config`, if an object.
    pub fn config(&self) -> Option<&'a Map<String, Value>> {
        self.obj.get("config")?.as_object()
    }
    /// A string member of `config`.
    pub(crate) fn config_str(&self, key: &str) -> Option<&'a str> {
        self.config()?.get(key)?.as_str()
    }
    /// `routes` as `(pointer of first_step, first_step)`.
    pub fn routes(&self) -> impl Iterator<Item = RouteView<'a>> + 'a {
        let pointer = self.pointer();
        self.obj
            .get("routes")
            .and_then(Value::as_array)
            .map(|a| a.iter())
            .unwrap_or_default()
            .enumerate()
            .map(move |(i, r)| RouteView {
                pointer: format!("{pointer}/routes/{i}"),
                name: r.get("name").and_then(Value::as_str),
                first_step: r.get("first_step"),
            })
    }
}

/// One route of a branching step.
#[derive(Debug, Clone)]
pub struct RouteView<'a> {
    /// The JSON pointer of this route.
    pub pointer: String,
    /// The route's name.
    pub name: Option<&'a str>,
    /// `first_step`: a step id (v2), a step name (v1), `null` or absent (an empty route).
    pub first_step: Option<&'a Value>,
}

/// One entry of `systems` (unwrapped from `{system: …}`).
#[derive(Debug, Clone, Copy)]
pub struct SystemView<'a> {
    index: usize,
    obj: &'a Map<String, Value>,
}

impl<'a> SystemView<'a> {
    /// The JSON pointer of the inner `system` object.
    pub fn pointer(&self) -> String {
        format!("/systems/{}/system", self.index)
    }
    /// The raw object.
    pub fn raw(&self) -> &'a Map<String, Value> {
        self.obj
    }
    /// `name`.
    pub fn name(&self) -> Option<&'a str> {
        self.obj.get("name")?.as_str()
    }
    /// `authentication_implementations[].name`.
    pub fn auth_implementations(&self) -> impl Iterator<Item = &'a Map<String, Value>> + 'a {
        self.obj
            .get("authentication_implementations")
            .and_then(Value::as_array)
            .map(|a| a.iter())
            .unwrap_or_default()
            .filter_map(Value::as_object)
    }
}

/// One entry of `scripts`.
#[derive(Debug, Clone, Copy)]
pub struct ScriptView<'a> {
    index: usize,
    obj: &'a Map<String, Value>,
}

impl<'a> ScriptView<'a> {
    /// The JSON pointer of this script.
    pub fn pointer(&self) -> String {
        format!("/scripts/{}", self.index)
    }
    /// `name`.
    pub fn name(&self) -> Option<&'a str> {
        self.obj.get("name")?.as_str()
    }
    /// `language`.
    pub fn language(&self) -> Option<&'a str> {
        self.obj.get("language")?.as_str()
    }
}

/// Parses JSON text into a value. The whole text is checked for UTF-8 once (a fast scan) and
/// parsed as a `str`, so the parser does not check every string again; text that is not UTF-8
/// is parsed as bytes, which reports where it fails as before.
fn parse_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewritten_documents_keep_the_layout_they_came_in() {
        let value: Value = serde_json::from_str(r#"{"a":1,"b":[1.50,{"c":"x"}]}"#).unwrap();
        assert_eq!(
            to_bytes_like(&value, b"{\"a\": 2}"),
            br#"{"a":1,"b":[1.50,{"c":"x"}]}"#.to_vec()
        );
        assert_eq!(
            to_bytes_like(&value, b"{\"a\":2}\n"),
            b"{\"a\":1,\"b\":[1.50,{\"c\":\"x\"}]}\n".to_vec()
        );
        assert_eq!(
            to_bytes_like(&value, b"{\n    \"a\": 2\n}\n"),
            b"{\n    \"a\": 1,\n    \"b\": [\n        1.50,\n        {\n            \"c\": \"x\"\n        }\n    ]\n}\n"
                .to_vec()
        );
        assert_eq!(
            to_bytes_like(&value, b"{\n  \"a\": 2\n}"),
            serde_json::to_vec_pretty(&value).unwrap()
        );
    }

    const V1: &[u8] = include_bytes!("../fixtures/reference/export-v1-legacy.json");
    const V2: &[u8] = include_bytes!("../fixtures/reference/export-v2-order-sync.json");

    /// The byte-by-byte count `measure` replaced (kept as the reference it must agree with).
    fn measure_bytewise(bound: &DocumentBound, bytes: &[u8]) -> Result<u64, String> {
        let (mut values, mut depth) = (0u64, 0usize);
        let (mut in_string, mut escaped, mut expect_value) = (false, false, true);
        for &b in bytes {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => {
                    in_string = true;
                    values += 1;
                    expect_value = false;
                }
                b':' => {
                    values = values.saturating_sub(1);
                    expect_value = true;
                }
                b'{' | b'[' => {
                    values += 1;
                    depth += 1;
                    expect_value = true;
                    if depth > bound.max_depth {
                        return Err("depth".into());
                    }
                }
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    expect_value = false;
                }
                b',' => expect_value = true,
                b' ' | b'\t' | b'\n' | b'\r' => {}
                _ => {
                    if expect_value {
                        values += 1;
                        expect_value = false;
                    }
                }
            }
            if values > bound.max_values {
                return Err("values".into());
            }
        }
        Ok(values)
    }

    fn agree(bound: &DocumentBound, bytes: &[u8]) {
        let fast = bound.measure(bytes).map_err(|e| {
            if e.contains("levels") {
                "depth".to_string()
            } else {
                "values".to_string()
            }
        });
        assert_eq!(
            fast,
            measure_bytewise(bound, bytes),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }

    #[test]
    fn measure_agrees_with_the_bytewise_count() {
        let small = DocumentBound {
            max_bytes: 1 << 20,
            max_values: 7,
            max_depth: 3,
        };
        for text in [
            &br#"{"a":"x\"y","b":[1,2,"\\"],"c":{"d":null}}"#[..],
            br#"["unterminated \"#,
            br#"["ends in a backslash\"#,
            br#"{"k":"v"}"#,
            br#"[[[[1]]]]"#,
            br#"[1,2,3,4,5,6,7]"#,
            br#"[1,2,3,4,5,6]"#,
            br#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7}"#,
            br#"  "\u00e9\n\t"  "#,
            b"",
        ] {
            agree(&small, text);
            agree(&DocumentBound::default(), text);
        }
        agree(&DocumentBound::default(), V1);
        agree(&DocumentBound::default(), V2);
    }

    proptest::proptest! {
        #[test]
        fn measure_agrees_on_any_bytes(bytes in proptest::collection::vec(
            proptest::sample::select(b"{}[]:,\"\\ a1".to_vec()), 0..64)) {
            agree(&DocumentBound { max_bytes: 1 << 20, max_values: 9, max_depth: 4 }, &bytes);
        }
    }

    #[test]
    fn detects_the_reference_documents() {
        let v1 = Document::from_slice(V1, "v1").unwrap();
        let v2 = Document::from_slice(V2, "v2").unwrap();
        assert_eq!(v1.format_version(), FormatVersion::V1);
        assert_eq!(v2.format_version(), FormatVersion::V2);
        assert_eq!(v1.detection(), Detection::Inferred);
        let counts: Vec<usize> = v2
            .flow()
            .unwrap()
            .versions()
            .map(|v| v.steps().count())
            .collect();
        assert_eq!(counts, vec![6, 1]);
        assert_eq!(
            v1.flow()
                .unwrap()
                .versions()
                .next()
                .unwrap()
                .steps()
                .count(),
            5
        );
        assert_eq!(v2.systems().count(), 2);
        assert_eq!(
            v2.scripts().next().unwrap().name(),
            Some("Normalise order lines")
        );
    }

    #[test]
    fn a_v2_document_missing_keys_is_still_v2() {
        let doc = Document::from_slice(br#"{"flow":{"versions":[{"steps":[{"name":"x"}]}]}}"#, "x")
            .unwrap();
        assert_eq!(doc.format_version(), FormatVersion::V2);
    }

    #[test]
    fn stamp_wins_over_inference_and_unknown_stamps_are_errors() {
        let doc = Document::from_slice(
            br#"{"metadata":{"format_version":2},"flow":{"versions":[{"steps":[{"microservice":"map"}]}]}}"#,
            "x",
        )
        .unwrap();
        assert_eq!(doc.format_version(), FormatVersion::V2);
        assert_eq!(doc.detection(), Detection::Stamped);
        let err =
            Document::from_slice(br#"{"metadata":{"format_version":7}}"#, "f.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.json: unsupported export format version 7 at /metadata/format_version (known: 1, 2)"
        );
    }

    #[test]
    fn non_objects_and_non_json_name_the_file() {
        let err = Document::from_slice(b"[1,2]", "list.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "list.json: an export document is a JSON object, found array"
        );
        let err = Document::from_slice(b"{nope", "bad.json").unwrap_err();
        assert!(
            err.to_string().starts_with("bad.json: not valid JSON: "),
            "{err}"
        );
    }

    #[test]
    fn read_write_keeps_order_unknown_fields_and_exact_numbers() {
        // Exponents are kept as written apart from the sign of the exponent, which serde_json's
        // arbitrary-precision parser always writes (`1e2` becomes `1e+2`, the same number).
        let text = r#"{"zeta":1,"metadata":{"b":1.10,"a":18446744073709551615,"c":123456789012345678901234567890},"alpha":[1e+2,-0.0]}"#;
        let doc = Document::from_slice(text.as_bytes(), "x").unwrap();
        let out = String::from_utf8(doc.to_pretty_bytes()).unwrap();
        let compact: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(serde_json::to_string(&compact).unwrap(), text);
    }

    #[test]
    fn stamping_appends_and_unstamping_removes() {
        let mut doc = Document::from_slice(V1, "v1").unwrap();
        let before = doc.value().clone();
        doc.stamp_format_version(FormatVersion::V1);
        let keys: Vec<&String> = doc.metadata().unwrap().keys().collect();
        assert_eq!(keys.last().unwrap().as_str(), "format_version");
        doc.unstamp_format_version();
        assert_eq!(doc.value(), &before);
    }

    #[test]
    fn json_that_is_no_export_document_is_refused_and_a_bom_is_accepted() {
        let err = Document::from_slice(br#"{"name":"A","items":[1,2]}"#, "list.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "list.json: not an export document (none of its top-level keys metadata, flow, \
             systems, scripts, dependencies)"
        );
        let doc =
            Document::from_slice(b"\xEF\xBB\xBF{\"flow\":{\"name\":\"A\"}}", "bom.json").unwrap();
        assert_eq!(doc.flow().unwrap().name(), Some("A"));
    }

    #[test]
    fn the_per_document_bound_is_checked_before_parsing_and_named() {
        let bound = DocumentBound {
            max_bytes: 1000,
            max_values: 10,
            max_depth: 3,
        };
        let refused = |bytes: &[u8]| {
            Document::from_slice_bounded(bytes, "d.json", &bound)
                .unwrap_err()
                .to_string()
        };
        // Eleven values: the object, the array and nine numbers; keys are not values.
        assert_eq!(
            refused(br#"{"flow":[1,2,3,4,5,6,7,8,9]}"#),
            "d.json: refused before parsing: more than the per-document bound of 10 JSON values"
        );
        assert!(
            Document::from_slice_bounded(br#"{"flow":[1,2,3,4,5,6,7,8]}"#, "d.json", &bound)
                .is_ok()
        );
        // Strings hiding brackets, colons and quotes do not confuse the count.
        assert!(
            Document::from_slice_bounded(br#"{"flow":"[[[[:\"{{{{,,,,"}"#, "d.json", &bound)
                .is_ok()
        );
        assert_eq!(
            refused(br#"{"flow":[[[1]]]}"#),
            "d.json: refused before parsing: nested deeper than the per-document bound of 3 levels"
        );
        let big = format!(r#"{{"flow":"{}"}}"#, "x".repeat(1000));
        assert_eq!(
            refused(big.as_bytes()),
            "d.json: refused before parsing: larger than the per-document bound of 1000 bytes"
        );
        // The default bound refuses a document of a million tiny numbers.
        let mut many = String::from(r#"{"flow":["#);
        many.push_str(&"1,".repeat(1_000_000));
        many.push_str("1]}");
        let err = Document::from_slice(many.as_bytes(), "many.json").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("more than the per-document bound of 1000000 JSON values"),
            "{err}"
        );
    }
}
