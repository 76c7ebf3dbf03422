//! The sandbox's store: the platform's flow semantics over SQLite (DESIGN §2, §10).
//!
//! [`Store`] is used two ways: behind the HTTP server of this crate, and in process as the
//! embedded `local` environment (DESIGN §9) through its [`flowpack_client::Platform`]
//! implementation.
//!
//! Semantics, as the platform documents them (and the choices made where it is silent):
//! - **List**: `page` from 1, `per_page` 1..=100 (default 15; 0 in a [`ListQuery`] means the
//!   default); a page past the last one is empty. `filter[name]` is a case-insensitive substring
//!   match (ASCII letters fold; other characters compare exactly). `filter[enabled]` takes
//!   `true`/`false`/`1`/`0`. `sort` is a comma-separated list of `name` (case-insensitive),
//!   `enabled_at` (disabled flows, with no `enabled_at`, sort first ascending), `created_at`, `id`;
//!   a `-` prefix sorts descending; ties are broken by `id` ascending; the default is `id`.
//!   Unknown sorts are refused (422). `include` is a comma-separated list: `versions` is
//!   supported; other includes are accepted and ignored.
//! - **Import** takes the export document (`{metadata, flow, systems, scripts, dependencies}`)
//!   plus optional `as_marketplace`; `flow` and `metadata` may also be JSON-encoded strings.
//!   Only version-2 documents are imported. The new flow is disabled; the version with the highest
//!   `iteration` becomes `Draft` (the later one in the list on a tie), the others `Inactive`, none
//!   deployed. A missing `flow.priority` becomes 3. An `Idempotency-Key` replays the stored
//!   response of the first import made with it (whatever the body of the retry) and creates
//!   nothing new.
//! - **Deploy** makes one version `Deployed` and the previously deployed one `Inactive`;
//!   undeploying (`deployed_at: null`) makes a deployed version `Inactive`.
//! - **Export** returns the stored document with `flow` (`name`, `description`, `is_enabled`,
//!   `priority`) and each version (`iteration`, `status`, `is_deployed`, and `flow_name`/
//!   `flow_priority` where present) reflecting the current state, `metadata.exported_at` set to
//!   now and `metadata.flow_name` to the flow's name. Like the platform, it writes no
//!   `metadata.format_version`.
//!
//! Timestamps are RFC 3339 in UTC, from the [`Clock`] of the [`StoreOptions`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use flowpack_client::{
    ClientError, Flow, FlowId, FlowUpdate, FlowVersion, ImportRequest, ListQuery, Page, PageMeta,
    Platform, VersionId,
};
use flowpack_core::{Document, DocumentError, FormatVersion};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Items per page when the query does not say.
pub const DEFAULT_PER_PAGE: u64 = 15;
/// The largest `per_page` accepted.
pub const MAX_PER_PAGE: u64 = 100;
/// The priority of an imported flow whose document has none.
pub const DEFAULT_PRIORITY: i64 = 3;

/// Where the store gets the current time from.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that always says the same time (tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

/// How a [`Store`] is opened.
#[derive(Clone)]
pub struct StoreOptions {
    /// The clock for `created_at`, `updated_at` and `metadata.exported_at`.
    pub clock: Arc<dyn Clock>,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions").finish_non_exhaustive()
    }
}

/// Field → messages, as in a 422 body.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Errors of the store; the HTTP server maps them to statuses (404, 422, 500).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or set up.
    #[error("{path}: cannot open the sandbox database: {source}")]
    Open {
        /// The database file.
        path: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The database's directory could not be created.
    #[error("{path}: cannot create the sandbox database's directory: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A query failed.
    #[error("sandbox database: {context}: {source}")]
    Sqlite {
        /// What was being done.
        context: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The flow or version does not exist (404).
    #[error("{message}")]
    NotFound {
        /// Names the missing object, e.g. `Flow 7 not found.`
        message: String,
    },
    /// The request was refused (422).
    #[error("{message}{}", format_field_errors(errors))]
    Validation {
        /// A summary (the first message, and how many more there are).
        message: String,
        /// Field → messages.
        errors: FieldErrors,
    },
    /// A stored document or response is not valid JSON any more.
    #[error("flow {flow}: the stored {what} is not valid JSON: {source}")]
    Corrupt {
        /// The flow (or 0 for an idempotency record).
        flow: i64,
        /// What was stored (`export document`, `idempotent response`).
        what: &'static str,
        /// The parser's error.
        source: serde_json::Error,
    },
}

fn format_field_errors(errors: &FieldErrors) -> String {
    errors
        .iter()
        .map(|(field, msgs)| format!("; {field}: {}", msgs.join(" ")))
        .collect()
}

impl StoreError {
    /// A 422 error from field errors (at least one); the message summarises them like the
    /// platform does ("The x field is required. (and 1 more error)").
    pub fn validation(errors: FieldErrors) -> StoreError {
        let count: usize = errors.values().map(Vec::len).sum();
        let first = errors
            .values()
            .flat_map(|v| v.iter())
            .next()
            .cloned()
            .unwrap_or_else(|| "The given data was invalid.".to_string());
        let message = match count {
            0 | 1 => first,
            2 => format!("{first} (and 1 more error)"),
            n => format!("{first} (and {} more errors)", n - 1),
        };
        StoreError::Validation { message, errors }
    }

    /// A 422 error about one field.
    pub fn field(field: &str, message: impl Into<String>) -> StoreError {
        let mut errors = FieldErrors::new();
        errors.insert(field.to_string(), vec![message.into()]);
        StoreError::validation(errors)
    }

    fn sqlite(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let context = context.into();
        move |source| StoreError::Sqlite { context, source }
    }
}

/// Changes to a flow (`PUT /flows/{flow}` body `{flow: {...}}`); `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowChanges {
    /// Enable at this time (RFC 3339), or disable (`Some(None)`).
    pub enabled_at: Option<Option<String>>,
    /// Priority, 1 to 5.
    pub priority: Option<i64>,
    /// A new, non-empty name.
    pub name: Option<String>,
    /// A new description, or none (`Some(None)`).
    pub description: Option<Option<String>>,
}

impl From<&FlowUpdate> for FlowChanges {
    fn from(u: &FlowUpdate) -> FlowChanges {
        FlowChanges {
            enabled_at: u.enabled_at.clone(),
            priority: u.priority,
            name: None,
            description: None,
        }
    }
}

impl FlowChanges {
    /// Reads the `flow` object of a `PUT /flows/{flow}` body; wrong types are 422 errors naming
    /// the field (`flow.priority`, …).
    pub fn from_body(body: &Value) -> Result<FlowChanges, StoreError> {
        let Some(flow) = body.get("flow") else {
            return Err(StoreError::field("flow", "The flow field is required."));
        };
        let Some(flow) = flow.as_object() else {
            return Err(StoreError::field(
                "flow",
                "The flow field must be an object.",
            ));
        };
        let mut errors = FieldErrors::new();
        let mut changes = FlowChanges::default();
        if let Some(v) = flow.get("enabled_at") {
            match v {
                Value::Null => changes.enabled_at = Some(None),
                Value::String(s) => changes.enabled_at = Some(Some(s.clone())),
                _ => push(
                    &mut errors,
                    "flow.enabled_at",
                    "The flow.enabled_at field must be a date-time string or null.",
                ),
            }
        }
        if let Some(v) = flow.get("priority") {
            match v.as_i64() {
                Some(p) => changes.priority = Some(p),
                None => push(
                    &mut errors,
                    "flow.priority",
                    "The flow.priority field must be an integer between 1 and 5.",
                ),
            }
        }
        if let Some(v) = flow.get("name") {
            match v {
                Value::String(s) => changes.name = Some(s.clone()),
                _ => push(
                    &mut errors,
                    "flow.name",
                    "The flow.name field must be a string.",
                ),
            }
        }
        if let Some(v) = flow.get("description") {
            match v {
                Value::Null => changes.description = Some(None),
                Value::String(s) => changes.description = Some(Some(s.clone())),
                _ => push(
                    &mut errors,
                    "flow.description",
                    "The flow.description field must be a string or null.",
                ),
            }
        }
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(StoreError::validation(errors))
        }
    }
}

fn push(errors: &mut FieldErrors, field: &str, message: impl Into<String>) {
    errors
        .entry(field.to_string())
        .or_default()
        .push(message.into());
}

/// Parses the query pairs of `GET /flows` (`page`, `per_page`, `filter[name]`,
/// `filter[enabled]`, `sort`, `include`; others are ignored). Bad numbers or booleans are 422
/// errors naming the parameter; ranges and sorts are checked by [`Store::list`].
pub fn parse_list_query(pairs: &[(String, String)]) -> Result<ListQuery, StoreError> {
    let mut q = ListQuery::default();
    let mut errors = FieldErrors::new();
    for (k, v) in pairs {
        match k.as_str() {
            "page" => match v.parse::<u64>() {
                Ok(0) | Err(_) => push(
                    &mut errors,
                    "page",
                    "The page must be an integer of at least 1.",
                ),
                Ok(n) => q.page = n,
            },
            "per_page" => match v.parse::<u64>() {
                Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => q.per_page = n,
                _ => push(
                    &mut errors,
                    "per_page",
                    format!("The per page must be an integer between 1 and {MAX_PER_PAGE}."),
                ),
            },
            "filter[name]" => q.name = Some(v.clone()),
            "filter[enabled]" => match v.as_str() {
                "true" | "1" => q.enabled = Some(true),
                "false" | "0" => q.enabled = Some(false),
                _ => push(
                    &mut errors,
                    "filter[enabled]",
                    "The filter[enabled] must be one of true, false, 1, 0.",
                ),
            },
            "sort" => q.sort = Some(v.clone()),
            "include" => q.include = Some(v.clone()),
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(StoreError::validation(errors))
    }
}

/// Whether an `include` list asks for `versions`.
pub fn includes_versions(include: Option<&str>) -> bool {
    include.is_some_and(|s| s.split(',').any(|i| i.trim() == "versions"))
}

/// The `ORDER BY` clause of a `sort` parameter (whitelisted columns only).
fn order_by(sort: Option<&str>) -> Result<String, StoreError> {
    let mut parts = Vec::new();
    for key in sort
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (desc, name) = match key.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, key),
        };
        let column = match name {
            "name" => "name COLLATE NOCASE",
            "enabled_at" => "enabled_at",
            "created_at" => "created_at",
            "id" => "id",
            _ => {
                return Err(StoreError::field(
                    "sort",
                    format!(
                        "Requested sort(s) `{name}` is not allowed. Allowed sort(s) are `name, enabled_at, created_at, id`."
                    ),
                ));
            }
        };
        parts.push(format!("{column} {}", if desc { "DESC" } else { "ASC" }));
    }
    parts.push("id ASC".to_string());
    Ok(parts.join(", "))
}

fn format_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Parses an RFC 3339 time and normalises it to UTC (so stored times sort as text).
fn normalise_time(field: &str, s: &str) -> Result<String, StoreError> {
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
        StoreError::field(
            field,
            format!("The {field} field must be an RFC 3339 date-time, found `{s}`."),
        )
    })?;
    Ok(t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| s.to_string()))
}

/// A version's status.
const DRAFT: &str = "Draft";
const DEPLOYED: &str = "Deployed";
const INACTIVE: &str = "Inactive";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS flows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT,
    priority INTEGER NOT NULL,
    enabled_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    document TEXT NOT NULL,
    marketplace INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id INTEGER NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    iteration INTEGER NOT NULL,
    status TEXT NOT NULL,
    deployed_at TEXT
);
CREATE INDEX IF NOT EXISTS versions_by_flow ON versions(flow_id, iteration);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    flow_id INTEGER,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL
);
";

const FLOW_COLUMNS: &str = "id, name, description, priority, enabled_at, created_at, updated_at";

/// The platform's flows, stored in SQLite. Cheap to share behind an `Arc`; every method takes
/// `&self` (one connection behind a mutex, held only for the SQL, never while JSON is parsed).
pub struct Store {
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// A validated import, ready to insert.
struct NewFlow {
    name: String,
    description: Option<String>,
    priority: i64,
    document: String,
    marketplace: bool,
    /// (position in `flow.versions`, iteration, status)
    versions: Vec<(usize, i64, &'static str)>,
}

impl Store {
    /// Opens (creating it and its directory if needed) the database at `path`, in WAL mode.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
            .map_err(open_err)?;
        Store::setup(conn, options).map_err(open_err)
    }

    /// An in-memory store (tests; nothing survives).
    pub fn open_in_memory(options: StoreOptions) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: ":memory:".to_string(),
            source,
        };
        let conn = Connection::open_in_memory().map_err(open_err)?;
        Store::setup(conn, options).map_err(open_err)
    }

    fn setup(conn: Connection, options: StoreOptions) -> Result<Store, rusqlite::Error> {
        conn.execute_batch(
            "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        )?;
        conn.execute_batch(SCHEMA)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Store {
            conn: Mutex::new(conn),
            clock: options.clock,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> String {
        format_time(self.clock.now())
    }

    /// `GET /flows`: one page of flows (with versions when `include` asks for them).
    pub fn list(&self, query: &ListQuery) -> Result<Page<Flow>, StoreError> {
        let page = if query.page == 0 { 1 } else { query.page };
        let per_page = match query.per_page {
            0 => DEFAULT_PER_PAGE,
            n if n > MAX_PER_PAGE => {
                return Err(StoreError::field(
                    "per_page",
                    format!("The per page must be an integer between 1 and {MAX_PER_PAGE}."),
                ));
            }
            n => n,
        };
        let order = order_by(query.sort.as_deref())?;
        let with_versions = includes_versions(query.include.as_deref());
        let enabled = query.enabled;
        let name = query.name.as_deref().filter(|s| !s.is_empty());
        let filter = "(?1 IS NULL OR instr(lower(name), lower(?1)) > 0) \
                      AND (?2 IS NULL OR (enabled_at IS NOT NULL) = ?2)";
        let conn = self.lock();
        let total: i64 = conn
            .prepare_cached(&format!("SELECT count(*) FROM flows WHERE {filter}"))
            .and_then(|mut st| st.query_row(params![name, enabled], |r| r.get(0)))
            .map_err(StoreError::sqlite("counting flows"))?;
        let total = total as u64;
        let offset = (page - 1).saturating_mul(per_page);
        let mut flows = {
            let mut st = conn
                .prepare_cached(&format!(
                    "SELECT {FLOW_COLUMNS} FROM flows WHERE {filter} ORDER BY {order} \
                     LIMIT ?3 OFFSET ?4"
                ))
                .map_err(StoreError::sqlite("listing flows"))?;
            let rows = st
                .query_map(
                    params![
                        name,
                        enabled,
                        per_page as i64,
                        i64::try_from(offset).unwrap_or(i64::MAX)
                    ],
                    flow_from_row,
                )
                .map_err(StoreError::sqlite("listing flows"))?;
            rows.collect::<Result<Vec<Flow>, _>>()
                .map_err(StoreError::sqlite("listing flows"))?
        };
        if with_versions {
            for flow in &mut flows {
                flow.versions = Some(versions_of(&conn, flow.id)?);
            }
        }
        Ok(Page {
            data: flows,
            meta: PageMeta {
                current_page: page,
                last_page: total.div_ceil(per_page).max(1),
                per_page,
                total,
            },
        })
    }

    /// `GET /flows/{flow}`: one flow (404 when unknown), with its versions if asked.
    pub fn show(&self, id: FlowId, with_versions: bool) -> Result<Flow, StoreError> {
        let conn = self.lock();
        let mut flow = find_flow(&conn, id)?;
        if with_versions {
            flow.versions = Some(versions_of(&conn, id)?);
        }
        Ok(flow)
    }

    /// `GET /flows/{flow}/versions`: the flow's versions, by iteration.
    pub fn versions(&self, id: FlowId) -> Result<Vec<FlowVersion>, StoreError> {
        let conn = self.lock();
        find_flow(&conn, id)?;
        versions_of(&conn, id)
    }

    /// `POST /flows/export` `{flow_id}`: the flow's export document (version 2) reflecting its
    /// current state; 404 when unknown.
    pub fn export(&self, id: FlowId) -> Result<Value, StoreError> {
        let (flow, versions, text) = {
            let conn = self.lock();
            let flow = find_flow(&conn, id)?;
            let text: String = conn
                .prepare_cached("SELECT document FROM flows WHERE id = ?1")
                .and_then(|mut st| st.query_row([id as i64], |r| r.get(0)))
                .map_err(StoreError::sqlite(format!("reading flow {id}")))?;
            let mut st = conn
                .prepare_cached(
                    "SELECT position, iteration, status FROM versions WHERE flow_id = ?1",
                )
                .map_err(StoreError::sqlite(format!("reading versions of flow {id}")))?;
            let versions = st
                .query_map([id as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(StoreError::sqlite(format!("reading versions of flow {id}")))?;
            (flow, versions, text)
        };
        // JSON work happens outside the lock so concurrent exports run in parallel.
        let mut doc: Value = serde_json::from_str(&text).map_err(|source| StoreError::Corrupt {
            flow: id as i64,
            what: "export document",
            source,
        })?;
        let now = self.now();
        if let Some(root) = doc.as_object_mut() {
            let metadata = root
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(m) = metadata.as_object_mut() {
                m.insert("flow_name".into(), Value::from(flow.name.clone()));
                m.insert("exported_at".into(), Value::from(now));
                m.shift_remove("format_version");
            }
            if let Some(f) = root.get_mut("flow").and_then(Value::as_object_mut) {
                f.insert("name".into(), Value::from(flow.name.clone()));
                if flow.description.is_some() || f.contains_key("description") {
                    f.insert(
                        "description".into(),
                        flow.description.clone().map_or(Value::Null, Value::from),
                    );
                }
                f.insert("is_enabled".into(), Value::Bool(flow.enabled_at.is_some()));
                let priority = flow.priority.unwrap_or(DEFAULT_PRIORITY);
                f.insert("priority".into(), Value::from(priority));
                if let Some(list) = f.get_mut("versions").and_then(Value::as_array_mut) {
                    for (position, iteration, status) in versions {
                        let Some(v) = usize::try_from(position)
                            .ok()
                            .and_then(|p| list.get_mut(p))
                            .and_then(Value::as_object_mut)
                        else {
                            continue;
                        };
                        if v.contains_key("flow_name") {
                            v.insert("flow_name".into(), Value::from(flow.name.clone()));
                        }
                        if v.contains_key("flow_priority") {
                            v.insert("flow_priority".into(), Value::from(priority));
                        }
                        v.insert("iteration".into(), Value::from(iteration));
                        v.insert("is_deployed".into(), Value::Bool(status == DEPLOYED));
                        v.insert("status".into(), Value::from(status));
                    }
                }
            }
        }
        Ok(doc)
    }

    /// `POST /flows/import`: validates the body (see the module docs), stores the flow disabled
    /// and undeployed, and returns it with its versions. With an `idempotency_key` already used,
    /// returns the first response again and stores nothing.
    pub fn import(&self, body: &Value, idempotency_key: Option<&str>) -> Result<Flow, StoreError> {
        if let Some(key) = idempotency_key
            && let Some(flow) = replay(&self.lock(), key)?
        {
            return Ok(flow);
        }
        let new = validate_import(body)?;
        let now = self.now();
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(StoreError::sqlite("starting an import"))?;
        if let Some(key) = idempotency_key
            && let Some(flow) = replay(&tx, key)?
        {
            return Ok(flow);
        }
        tx.prepare_cached(
            "INSERT INTO flows (name, description, priority, enabled_at, created_at, updated_at, \
             document, marketplace) VALUES (?1, ?2, ?3, NULL, ?4, ?4, ?5, ?6)",
        )
        .and_then(|mut st| {
            st.execute(params![
                new.name,
                new.description,
                new.priority,
                now,
                new.document,
                new.marketplace
            ])
        })
        .map_err(StoreError::sqlite(format!("inserting flow `{}`", new.name)))?;
        let id = tx.last_insert_rowid();
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO versions (flow_id, position, iteration, status, deployed_at) \
                     VALUES (?1, ?2, ?3, ?4, NULL)",
                )
                .map_err(StoreError::sqlite(format!(
                    "inserting versions of flow {id}"
                )))?;
            for (position, iteration, status) in &new.versions {
                st.execute(params![id, *position as i64, iteration, status])
                    .map_err(StoreError::sqlite(format!(
                        "inserting versions of flow {id}"
                    )))?;
            }
        }
        let mut flow = find_flow(&tx, id as FlowId)?;
        flow.versions = Some(versions_of(&tx, id as FlowId)?);
        if let Some(key) = idempotency_key {
            let response = serde_json::to_string(&flow).map_err(|source| StoreError::Corrupt {
                flow: id,
                what: "idempotent response",
                source,
            })?;
            tx.prepare_cached(
                "INSERT INTO idempotency_keys (key, flow_id, response, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| st.execute(params![key, id, response, now]))
            .map_err(StoreError::sqlite(format!(
                "recording idempotency key `{key}`"
            )))?;
        }
        tx.commit().map_err(StoreError::sqlite(format!(
            "committing flow `{}`",
            new.name
        )))?;
        Ok(flow)
    }

    /// `PUT /flows/{flow}/versions/{version}` `{deployed_at}`: deploys the version at that time
    /// (the previously deployed one becomes `Inactive`), or with `None` undeploys it.
    pub fn deploy(
        &self,
        flow: FlowId,
        version: VersionId,
        deployed_at: Option<&str>,
    ) -> Result<FlowVersion, StoreError> {
        let deployed_at = deployed_at
            .map(|s| normalise_time("deployed_at", s))
            .transpose()?;
        let now = self.now();
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(StoreError::sqlite("starting a deploy"))?;
        find_flow(&tx, flow)?;
        let current = versions_of(&tx, flow)?
            .into_iter()
            .find(|v| v.id == version)
            .ok_or_else(|| StoreError::NotFound {
                message: format!("Version {version} of flow {flow} not found."),
            })?;
        let ctx = format!("deploying version {version} of flow {flow}");
        match &deployed_at {
            Some(at) => {
                tx.prepare_cached(
                    "UPDATE versions SET status = ?3, deployed_at = NULL \
                     WHERE flow_id = ?1 AND id != ?2 AND status = ?4",
                )
                .and_then(|mut st| {
                    st.execute(params![flow as i64, version as i64, INACTIVE, DEPLOYED])
                })
                .map_err(StoreError::sqlite(ctx.clone()))?;
                tx.prepare_cached(
                    "UPDATE versions SET status = ?2, deployed_at = ?3 WHERE id = ?1",
                )
                .and_then(|mut st| st.execute(params![version as i64, DEPLOYED, at]))
                .map_err(StoreError::sqlite(ctx.clone()))?;
            }
            None if current.status == DEPLOYED => {
                tx.prepare_cached(
                    "UPDATE versions SET status = ?2, deployed_at = NULL WHERE id = ?1",
                )
                .and_then(|mut st| st.execute(params![version as i64, INACTIVE]))
                .map_err(StoreError::sqlite(ctx.clone()))?;
            }
            None => {}
        }
        touch(&tx, flow, &now)?;
        let updated = versions_of(&tx, flow)?
            .into_iter()
            .find(|v| v.id == version)
            .ok_or_else(|| StoreError::NotFound {
                message: format!("Version {version} of flow {flow} not found."),
            })?;
        tx.commit().map_err(StoreError::sqlite(ctx))?;
        Ok(updated)
    }

    /// `PUT /flows/{flow}` `{flow: {...}}`: changes the flow (422 on a priority outside 1..=5,
    /// an empty name or a bad `enabled_at`) and returns it (without versions).
    pub fn update(&self, id: FlowId, changes: &FlowChanges) -> Result<Flow, StoreError> {
        let mut errors = FieldErrors::new();
        if let Some(p) = changes.priority
            && !(1..=5).contains(&p)
        {
            push(
                &mut errors,
                "flow.priority",
                "The flow.priority field must be an integer between 1 and 5.",
            );
        }
        if let Some(name) = &changes.name
            && name.trim().is_empty()
        {
            push(
                &mut errors,
                "flow.name",
                "The flow.name field must not be empty.",
            );
        }
        let enabled_at = match &changes.enabled_at {
            Some(Some(s)) => match normalise_time("flow.enabled_at", s) {
                Ok(t) => Some(Some(t)),
                Err(StoreError::Validation { errors: e, .. }) => {
                    errors.extend(e);
                    None
                }
                Err(e) => return Err(e),
            },
            Some(None) => Some(None),
            None => None,
        };
        if !errors.is_empty() {
            return Err(StoreError::validation(errors));
        }
        let now = self.now();
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(StoreError::sqlite("starting an update"))?;
        let current = find_flow(&tx, id)?;
        let enabled_at = enabled_at.unwrap_or(current.enabled_at);
        let priority = changes
            .priority
            .or(current.priority)
            .unwrap_or(DEFAULT_PRIORITY);
        let name = changes.name.clone().unwrap_or(current.name);
        let description = changes.description.clone().unwrap_or(current.description);
        tx.prepare_cached(
            "UPDATE flows SET enabled_at = ?2, priority = ?3, name = ?4, description = ?5, \
             updated_at = ?6 WHERE id = ?1",
        )
        .and_then(|mut st| {
            st.execute(params![
                id as i64,
                enabled_at,
                priority,
                name,
                description,
                now
            ])
        })
        .map_err(StoreError::sqlite(format!("updating flow {id}")))?;
        let flow = find_flow(&tx, id)?;
        tx.commit()
            .map_err(StoreError::sqlite(format!("updating flow {id}")))?;
        Ok(flow)
    }

    /// `DELETE /flows/{flow}`: removes the flow and its versions (404 when unknown).
    pub fn delete(&self, id: FlowId) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(StoreError::sqlite("starting a delete"))?;
        find_flow(&tx, id)?;
        let ctx = format!("deleting flow {id}");
        tx.prepare_cached("DELETE FROM versions WHERE flow_id = ?1")
            .and_then(|mut st| st.execute([id as i64]))
            .map_err(StoreError::sqlite(ctx.clone()))?;
        tx.prepare_cached("DELETE FROM flows WHERE id = ?1")
            .and_then(|mut st| st.execute([id as i64]))
            .map_err(StoreError::sqlite(ctx.clone()))?;
        tx.commit().map_err(StoreError::sqlite(ctx))?;
        Ok(())
    }
}

fn flow_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Flow> {
    Ok(Flow {
        id: r.get::<_, i64>(0)? as FlowId,
        name: r.get(1)?,
        description: r.get(2)?,
        priority: Some(r.get(3)?),
        enabled_at: r.get(4)?,
        created_at: Some(r.get(5)?),
        updated_at: Some(r.get(6)?),
        versions: None,
    })
}

fn find_flow(conn: &Connection, id: FlowId) -> Result<Flow, StoreError> {
    let Ok(sql_id) = i64::try_from(id) else {
        return Err(StoreError::NotFound {
            message: format!("Flow {id} not found."),
        });
    };
    conn.prepare_cached(&format!("SELECT {FLOW_COLUMNS} FROM flows WHERE id = ?1"))
        .and_then(|mut st| st.query_row([sql_id], flow_from_row).optional())
        .map_err(StoreError::sqlite(format!("reading flow {id}")))?
        .ok_or_else(|| StoreError::NotFound {
            message: format!("Flow {id} not found."),
        })
}

fn versions_of(conn: &Connection, flow: FlowId) -> Result<Vec<FlowVersion>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT id, flow_id, iteration, status, deployed_at FROM versions \
             WHERE flow_id = ?1 ORDER BY iteration, id",
        )
        .map_err(StoreError::sqlite(format!(
            "reading versions of flow {flow}"
        )))?;
    st.query_map([flow as i64], |r| {
        let status: String = r.get(3)?;
        Ok(FlowVersion {
            id: r.get::<_, i64>(0)? as VersionId,
            flow_id: r.get::<_, i64>(1)? as FlowId,
            iteration: r.get(2)?,
            is_deployed: status == DEPLOYED,
            status,
            deployed_at: r.get(4)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(StoreError::sqlite(format!(
        "reading versions of flow {flow}"
    )))
}

fn touch(conn: &Connection, flow: FlowId, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE flows SET updated_at = ?2 WHERE id = ?1")
        .and_then(|mut st| st.execute(params![flow as i64, now]))
        .map_err(StoreError::sqlite(format!("updating flow {flow}")))?;
    Ok(())
}

fn replay(conn: &Connection, key: &str) -> Result<Option<Flow>, StoreError> {
    let stored: Option<String> = conn
        .prepare_cached("SELECT response FROM idempotency_keys WHERE key = ?1")
        .and_then(|mut st| st.query_row([key], |r| r.get(0)).optional())
        .map_err(StoreError::sqlite(format!(
            "reading idempotency key `{key}`"
        )))?;
    stored
        .map(|text| {
            serde_json::from_str(&text).map_err(|source| StoreError::Corrupt {
                flow: 0,
                what: "idempotent response",
                source,
            })
        })
        .transpose()
}

/// Decodes `flow`/`metadata` (object or JSON-encoded string) of an import body.
fn decode_part(body: &Map<String, Value>, key: &str, errors: &mut FieldErrors) -> Option<Value> {
    match body.get(key) {
        None | Some(Value::Null) => {
            push(errors, key, format!("The {key} field is required."));
            None
        }
        Some(Value::Object(_)) => body.get(key).cloned(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => Some(v),
            Ok(_) => {
                push(
                    errors,
                    key,
                    format!("The {key} field must encode a JSON object."),
                );
                None
            }
            Err(e) => {
                push(
                    errors,
                    key,
                    format!("The {key} field must be a valid JSON string: {e}."),
                );
                None
            }
        },
        Some(_) => {
            push(
                errors,
                key,
                format!("The {key} field must be a JSON object or a JSON-encoded string."),
            );
            None
        }
    }
}

fn validate_import(body: &Value) -> Result<NewFlow, StoreError> {
    let Some(obj) = body.as_object() else {
        return Err(StoreError::field(
            "body",
            "The request body must be a JSON object.",
        ));
    };
    let mut errors = FieldErrors::new();
    let flow = decode_part(obj, "flow", &mut errors);
    let metadata = decode_part(obj, "metadata", &mut errors);
    let marketplace = match obj.get("as_marketplace") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => match v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())
            .as_str()
        {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                push(
                    &mut errors,
                    "as_marketplace",
                    "The as_marketplace field must be true or false.",
                );
                false
            }
        },
    };
    let (Some(flow), Some(metadata)) = (flow, metadata) else {
        return Err(StoreError::validation(errors));
    };
    let mut root = Map::new();
    for (k, v) in obj {
        match k.as_str() {
            "as_marketplace" => {}
            "flow" => {
                root.insert(k.clone(), flow.clone());
            }
            "metadata" => {
                root.insert(k.clone(), metadata.clone());
            }
            _ => {
                root.insert(k.clone(), v.clone());
            }
        }
    }
    let mut doc = match Document::from_value(Value::Object(root), "import body") {
        Ok(doc) => doc,
        Err(DocumentError::UnknownFormat { found, .. }) => {
            return Err(StoreError::field(
                "metadata.format_version",
                format!(
                    "Unsupported export format version {found}; the platform imports version 2."
                ),
            ));
        }
        Err(e) => return Err(StoreError::field("body", e.to_string())),
    };
    if doc.format_version() == FormatVersion::V1 {
        return Err(StoreError::field(
            "flow",
            "This is a version 1 (legacy) export document; the platform imports version 2 only. \
             Migrate it to version 2 first.",
        ));
    }
    doc.unstamp_format_version();
    let view = doc.flow().expect("flow was checked to be an object");
    let name = view.name().map(str::trim).unwrap_or("");
    if name.is_empty() {
        push(&mut errors, "flow.name", "The flow.name field is required.");
    }
    let priority = match view.raw().get("priority") {
        None | Some(Value::Null) => DEFAULT_PRIORITY,
        Some(v) => match v.as_i64() {
            Some(p) if (1..=5).contains(&p) => p,
            _ => {
                push(
                    &mut errors,
                    "flow.priority",
                    "The flow.priority field must be an integer between 1 and 5.",
                );
                DEFAULT_PRIORITY
            }
        },
    };
    let mut iterations = Vec::new();
    match view.raw().get("versions").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => {
            for (i, v) in list.iter().enumerate() {
                match v.get("iteration").and_then(Value::as_i64) {
                    Some(it) => iterations.push((i, it)),
                    None => push(
                        &mut errors,
                        &format!("flow.versions.{i}.iteration"),
                        format!("The flow.versions.{i}.iteration field must be an integer."),
                    ),
                }
            }
        }
        _ => push(
            &mut errors,
            "flow.versions",
            "The flow.versions field must list at least one version.",
        ),
    }
    if !errors.is_empty() {
        return Err(StoreError::validation(errors));
    }
    let newest = iterations
        .iter()
        .enumerate()
        .max_by_key(|(n, (_, it))| (*it, *n))
        .map(|(n, _)| n);
    let versions = iterations
        .iter()
        .enumerate()
        .map(|(n, (pos, it))| (*pos, *it, if Some(n) == newest { DRAFT } else { INACTIVE }))
        .collect();
    let name = name.to_string();
    let description = view.description().map(str::to_owned);
    let document =
        serde_json::to_string(doc.value()).map_err(|e| StoreError::field("body", e.to_string()))?;
    Ok(NewFlow {
        name,
        description,
        priority,
        document,
        marketplace,
        versions,
    })
}

fn client_error(request: String, e: StoreError) -> ClientError {
    match e {
        StoreError::NotFound { message } => ClientError::NotFound { request, message },
        StoreError::Validation { message, errors } => ClientError::Validation {
            request,
            message,
            errors,
        },
        other => ClientError::Local(other.to_string()),
    }
}

/// The embedded `local` environment (DESIGN §9): the same semantics as the HTTP sandbox, in
/// process. Errors name the request as the HTTP client would (`local: GET /api/v1/flows/7`).
impl Platform for Store {
    fn list_flows(&self, query: &ListQuery) -> Result<Page<Flow>, ClientError> {
        self.list(query)
            .map_err(|e| client_error("local: GET /api/v1/flows".into(), e))
    }

    fn show_flow(&self, id: FlowId) -> Result<Flow, ClientError> {
        self.show(id, true)
            .map_err(|e| client_error(format!("local: GET /api/v1/flows/{id}"), e))
    }

    fn export_flow(&self, id: FlowId) -> Result<Value, ClientError> {
        self.export(id)
            .map_err(|e| client_error("local: POST /api/v1/flows/export".into(), e))
    }

    fn import_flow(&self, request: &ImportRequest) -> Result<Flow, ClientError> {
        let mut body = request.document.clone();
        if request.as_marketplace
            && let Some(obj) = body.as_object_mut()
        {
            obj.insert("as_marketplace".into(), Value::Bool(true));
        }
        self.import(&body, request.idempotency_key.as_deref())
            .map_err(|e| client_error("local: POST /api/v1/flows/import".into(), e))
    }

    fn list_versions(&self, flow: FlowId) -> Result<Vec<FlowVersion>, ClientError> {
        self.versions(flow)
            .map_err(|e| client_error(format!("local: GET /api/v1/flows/{flow}/versions"), e))
    }

    fn deploy_version(
        &self,
        flow: FlowId,
        version: VersionId,
        deployed_at: &str,
    ) -> Result<FlowVersion, ClientError> {
        self.deploy(flow, version, Some(deployed_at)).map_err(|e| {
            client_error(
                format!("local: PUT /api/v1/flows/{flow}/versions/{version}"),
                e,
            )
        })
    }

    fn update_flow(&self, flow: FlowId, update: &FlowUpdate) -> Result<Flow, ClientError> {
        self.update(flow, &FlowChanges::from(update))
            .map_err(|e| client_error(format!("local: PUT /api/v1/flows/{flow}"), e))
    }

    fn delete_flow(&self, flow: FlowId) -> Result<(), ClientError> {
        self.delete(flow)
            .map_err(|e| client_error(format!("local: DELETE /api/v1/flows/{flow}"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER_SYNC: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/reference/export-v2-order-sync.json"
    ));
    const LEGACY: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/reference/export-v1-legacy.json"
    ));
    /// 2026-01-02T03:04:05Z
    const NOW: i64 = 1_767_323_045;

    fn store() -> Store {
        let clock = FixedClock(OffsetDateTime::from_unix_timestamp(NOW).unwrap());
        Store::open_in_memory(StoreOptions {
            clock: Arc::new(clock),
        })
        .unwrap()
    }

    fn order_sync() -> Value {
        serde_json::from_str(ORDER_SYNC).unwrap()
    }

    fn named(name: &str) -> Value {
        let mut doc = order_sync();
        doc["flow"]["name"] = Value::from(name);
        doc
    }

    fn statuses(flow: &Flow) -> Vec<(i64, String, bool)> {
        flow.versions
            .as_ref()
            .unwrap()
            .iter()
            .map(|v| (v.iteration, v.status.clone(), v.is_deployed))
            .collect()
    }

    fn field_errors(e: StoreError) -> (String, FieldErrors) {
        match e {
            StoreError::Validation { message, errors } => (message, errors),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn names(page: &Page<Flow>) -> Vec<&str> {
        page.data.iter().map(|f| f.name.as_str()).collect()
    }

    fn query(pairs: &[(&str, &str)]) -> ListQuery {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_list_query(&pairs).unwrap()
    }

    #[test]
    fn import_arrives_disabled_with_the_newest_version_as_draft() {
        let s = store();
        let flow = s.import(&order_sync(), None).unwrap();
        assert_eq!(flow.id, 1);
        assert_eq!(flow.name, "Shopify > NetSuite Orders");
        assert_eq!(flow.enabled_at, None);
        assert_eq!(flow.priority, Some(2));
        assert_eq!(flow.created_at.as_deref(), Some("2026-01-02T03:04:05Z"));
        assert_eq!(
            statuses(&flow),
            [(7, "Inactive".into(), false), (8, "Draft".into(), false)]
        );
    }

    #[test]
    fn import_accepts_flow_and_metadata_as_json_strings() {
        let s = store();
        let mut doc = order_sync();
        doc["flow"] = Value::from(doc["flow"].to_string());
        doc["metadata"] = Value::from(doc["metadata"].to_string());
        doc["as_marketplace"] = Value::from("1");
        let flow = s.import(&doc, None).unwrap();
        assert_eq!(flow.name, "Shopify > NetSuite Orders");
        assert_eq!(statuses(&flow).len(), 2);
        let exported = s.export(flow.id).unwrap();
        assert!(exported["flow"].is_object(), "stored decoded: {exported}");
        assert!(exported.get("as_marketplace").is_none());
    }

    #[test]
    fn import_refuses_missing_and_malformed_parts() {
        let s = store();
        let (message, errors) = field_errors(s.import(&serde_json::json!({}), None).unwrap_err());
        assert_eq!(message, "The flow field is required. (and 1 more error)");
        assert_eq!(errors["flow"], ["The flow field is required."]);
        assert_eq!(errors["metadata"], ["The metadata field is required."]);

        let mut doc = order_sync();
        doc["flow"] = Value::from("{not json");
        let (_, errors) = field_errors(s.import(&doc, None).unwrap_err());
        assert!(
            errors["flow"][0].starts_with("The flow field must be a valid JSON string:"),
            "{errors:?}"
        );
        assert_eq!(s.list(&ListQuery::default()).unwrap().meta.total, 0);
    }

    #[test]
    fn import_refuses_a_flow_without_name_or_versions() {
        let s = store();
        let mut doc = order_sync();
        doc["flow"]["name"] = Value::from(" ");
        doc["flow"]["versions"] = serde_json::json!([]);
        let (_, errors) = field_errors(s.import(&doc, None).unwrap_err());
        assert_eq!(errors["flow.name"], ["The flow.name field is required."]);
        assert_eq!(
            errors["flow.versions"],
            ["The flow.versions field must list at least one version."]
        );
    }

    #[test]
    fn import_refuses_version_1_documents() {
        let s = store();
        let legacy: Value = serde_json::from_str(LEGACY).unwrap();
        let (message, errors) = field_errors(s.import(&legacy, None).unwrap_err());
        assert!(message.starts_with("This is a version 1 (legacy) export document"));
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["flow"]);
    }

    #[test]
    fn idempotency_key_replays_the_first_response_and_creates_nothing() {
        let s = store();
        let first = s.import(&order_sync(), Some("k-1")).unwrap();
        let again = s.import(&named("Other"), Some("k-1")).unwrap();
        assert_eq!(first, again);
        assert_eq!(s.list(&ListQuery::default()).unwrap().meta.total, 1);
        let other = s.import(&order_sync(), Some("k-2")).unwrap();
        assert_eq!(other.id, 2);
    }

    #[test]
    fn pagination_math() {
        let s = store();
        for n in 1..=5 {
            s.import(&named(&format!("Flow {n}")), None).unwrap();
        }
        let page = s.list(&query(&[("page", "3"), ("per_page", "2")])).unwrap();
        assert_eq!(names(&page), ["Flow 5"]);
        assert_eq!(
            page.meta,
            PageMeta {
                current_page: 3,
                last_page: 3,
                per_page: 2,
                total: 5
            }
        );
        let past = s.list(&query(&[("page", "4"), ("per_page", "2")])).unwrap();
        assert!(past.data.is_empty());
        assert_eq!(past.meta.last_page, 3);
        let default = s.list(&ListQuery::default()).unwrap();
        assert_eq!(default.meta.per_page, 15);
        assert_eq!(default.meta.last_page, 1);
        let empty = store().list(&ListQuery::default()).unwrap();
        assert_eq!((empty.meta.total, empty.meta.last_page), (0, 1));
    }

    #[test]
    fn per_page_and_page_out_of_range_are_refused() {
        let pairs = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let (_, errors) = field_errors(parse_list_query(&pairs("per_page", "101")).unwrap_err());
        assert_eq!(
            errors["per_page"],
            ["The per page must be an integer between 1 and 100."]
        );
        let (_, errors) = field_errors(parse_list_query(&pairs("per_page", "0")).unwrap_err());
        assert!(errors.contains_key("per_page"));
        let (_, errors) = field_errors(parse_list_query(&pairs("page", "0")).unwrap_err());
        assert_eq!(
            errors["page"],
            ["The page must be an integer of at least 1."]
        );
        let q = ListQuery {
            per_page: 500,
            ..ListQuery::default()
        };
        assert!(matches!(
            store().list(&q),
            Err(StoreError::Validation { .. })
        ));
    }

    #[test]
    fn filters_by_name_substring_case_insensitively_and_by_enabled() {
        let s = store();
        for name in ["Orders Sync", "Stock levels", "orders backfill"] {
            s.import(&named(name), None).unwrap();
        }
        s.update(
            3,
            &FlowChanges {
                enabled_at: Some(Some("2026-01-01T10:00:00+02:00".into())),
                ..FlowChanges::default()
            },
        )
        .unwrap();
        let page = s.list(&query(&[("filter[name]", "ORDERS")])).unwrap();
        assert_eq!(names(&page), ["Orders Sync", "orders backfill"]);
        let enabled = s.list(&query(&[("filter[enabled]", "1")])).unwrap();
        assert_eq!(names(&enabled), ["orders backfill"]);
        assert_eq!(
            enabled.data[0].enabled_at.as_deref(),
            Some("2026-01-01T08:00:00Z")
        );
        let disabled = s
            .list(&query(&[
                ("filter[enabled]", "false"),
                ("filter[name]", "orders"),
            ]))
            .unwrap();
        assert_eq!(names(&disabled), ["Orders Sync"]);
        let bad = vec![("filter[enabled]".to_string(), "yes".to_string())];
        let (_, errors) = field_errors(parse_list_query(&bad).unwrap_err());
        assert_eq!(
            errors["filter[enabled]"],
            ["The filter[enabled] must be one of true, false, 1, 0."]
        );
    }

    #[test]
    fn sorts_ascending_descending_and_refuses_unknown() {
        let s = store();
        for name in ["beta", "Alpha", "gamma"] {
            s.import(&named(name), None).unwrap();
        }
        s.update(
            1,
            &FlowChanges {
                enabled_at: Some(Some("2026-03-01T00:00:00Z".into())),
                ..FlowChanges::default()
            },
        )
        .unwrap();
        s.update(
            3,
            &FlowChanges {
                enabled_at: Some(Some("2026-02-01T00:00:00Z".into())),
                ..FlowChanges::default()
            },
        )
        .unwrap();
        let sorted = |sort: &str| {
            let page = s.list(&query(&[("sort", sort)])).unwrap();
            names(&page)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(sorted("name"), ["Alpha", "beta", "gamma"]);
        assert_eq!(sorted("-name"), ["gamma", "beta", "Alpha"]);
        assert_eq!(sorted("-id"), ["gamma", "Alpha", "beta"]);
        assert_eq!(sorted("enabled_at"), ["Alpha", "gamma", "beta"]);
        assert_eq!(sorted("-enabled_at,name"), ["beta", "gamma", "Alpha"]);
        assert_eq!(sorted("created_at"), ["beta", "Alpha", "gamma"]);
        let (_, errors) = field_errors(s.list(&query(&[("sort", "priority")])).unwrap_err());
        assert_eq!(
            errors["sort"],
            [
                "Requested sort(s) `priority` is not allowed. Allowed sort(s) are `name, enabled_at, created_at, id`."
            ]
        );
    }

    #[test]
    fn include_versions_is_supported_and_other_includes_ignored() {
        let s = store();
        s.import(&order_sync(), None).unwrap();
        let plain = s.list(&query(&[("include", "latestVersion")])).unwrap();
        assert_eq!(plain.data[0].versions, None);
        let with = s
            .list(&query(&[("include", "latestVersion,versions")]))
            .unwrap();
        assert_eq!(with.data[0].versions.as_ref().map(Vec::len), Some(2));
        assert_eq!(s.show(1, false).unwrap().versions, None);
    }

    #[test]
    fn deploying_switches_the_deployed_version_and_null_undeploys() {
        let s = store();
        let flow = s.import(&order_sync(), None).unwrap();
        let ids: Vec<VersionId> = flow.versions.unwrap().iter().map(|v| v.id).collect();
        let v8 = s.deploy(1, ids[1], Some("2026-01-05T00:00:00Z")).unwrap();
        assert_eq!((v8.status.as_str(), v8.is_deployed), ("Deployed", true));
        assert_eq!(v8.deployed_at.as_deref(), Some("2026-01-05T00:00:00Z"));
        s.deploy(1, ids[0], Some("2026-01-06T00:00:00Z")).unwrap();
        assert_eq!(
            statuses(&s.show(1, true).unwrap()),
            [(7, "Deployed".into(), true), (8, "Inactive".into(), false)]
        );
        let undeployed = s.deploy(1, ids[0], None).unwrap();
        assert_eq!(
            (undeployed.status.as_str(), undeployed.deployed_at),
            ("Inactive", None)
        );
        let err = s.deploy(1, 99, Some("2026-01-06T00:00:00Z")).unwrap_err();
        assert_eq!(err.to_string(), "Version 99 of flow 1 not found.");
        let (_, errors) = field_errors(s.deploy(1, ids[0], Some("tomorrow")).unwrap_err());
        assert_eq!(
            errors["deployed_at"],
            ["The deployed_at field must be an RFC 3339 date-time, found `tomorrow`."]
        );
    }

    #[test]
    fn export_reflects_the_current_state_without_a_format_stamp() {
        let s = store();
        let mut doc = order_sync();
        doc["metadata"]["format_version"] = Value::from(2);
        let flow = s.import(&doc, None).unwrap();
        let v7 = flow.versions.unwrap()[0].id;
        s.deploy(1, v7, Some("2026-01-05T00:00:00Z")).unwrap();
        s.update(
            1,
            &FlowChanges {
                enabled_at: Some(Some("2026-01-05T00:00:00Z".into())),
                priority: Some(4),
                ..FlowChanges::default()
            },
        )
        .unwrap();
        let out = s.export(1).unwrap();
        assert_eq!(out["metadata"]["exported_at"], "2026-01-02T03:04:05Z");
        assert!(out["metadata"].get("format_version").is_none());
        assert_eq!(out["flow"]["is_enabled"], true);
        assert_eq!(out["flow"]["priority"], 4);
        let versions = out["flow"]["versions"].as_array().unwrap();
        assert_eq!(versions[0]["status"], "Deployed");
        assert_eq!(versions[0]["is_deployed"], true);
        assert_eq!(versions[0]["flow_priority"], 4);
        assert_eq!(versions[1]["status"], "Draft");
        assert_eq!(versions[1]["is_deployed"], false);
        // Everything else is the imported document, key order included.
        let mut expected = order_sync();
        expected["metadata"]["exported_at"] = out["metadata"]["exported_at"].clone();
        expected["flow"] = out["flow"].clone();
        assert_eq!(out, expected);
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["metadata", "flow", "systems", "scripts", "dependencies"]
        );
        let detected = Document::from_value(out, "export").unwrap();
        assert_eq!(detected.format_version(), FormatVersion::V2);
    }

    #[test]
    fn update_validates_priority_and_delete_removes() {
        let s = store();
        s.import(&order_sync(), None).unwrap();
        let (_, errors) = field_errors(
            s.update(
                1,
                &FlowChanges {
                    priority: Some(6),
                    ..FlowChanges::default()
                },
            )
            .unwrap_err(),
        );
        assert_eq!(
            errors["flow.priority"],
            ["The flow.priority field must be an integer between 1 and 5."]
        );
        let changes = FlowChanges::from_body(&serde_json::json!({
            "flow": {"name": "Renamed", "description": null, "enabled_at": null, "priority": 1}
        }))
        .unwrap();
        let flow = s.update(1, &changes).unwrap();
        assert_eq!(
            (flow.name.as_str(), flow.priority, flow.description),
            ("Renamed", Some(1), None)
        );
        assert_eq!(s.export(1).unwrap()["metadata"]["flow_name"], "Renamed");
        s.delete(1).unwrap();
        assert_eq!(
            s.show(1, false).unwrap_err().to_string(),
            "Flow 1 not found."
        );
        assert_eq!(s.delete(1).unwrap_err().to_string(), "Flow 1 not found.");
        assert_eq!(s.versions(1).unwrap_err().to_string(), "Flow 1 not found.");
    }

    #[test]
    fn data_survives_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".flowpack").join("local.db");
        {
            let s = Store::open(&path, StoreOptions::default()).unwrap();
            s.import(&order_sync(), Some("once")).unwrap();
        }
        let s = Store::open(&path, StoreOptions::default()).unwrap();
        assert_eq!(s.show(1, true).unwrap().name, "Shopify > NetSuite Orders");
        assert_eq!(s.import(&order_sync(), Some("once")).unwrap().id, 1);
        assert_eq!(s.list(&ListQuery::default()).unwrap().meta.total, 1);
    }

    #[test]
    fn platform_errors_name_the_request() {
        let s = store();
        let err = Platform::show_flow(&s, 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "local: GET /api/v1/flows/3: not found (404): Flow 3 not found."
        );
    }
}
