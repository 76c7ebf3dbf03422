//! The sandbox's store: the platform's flow semantics over SQLite.
//!
//! [`Store`] is used three ways: behind the transport-free [`crate::dispatch::Dispatcher`] (which
//! the HTTP server and the tests call), and in process as the embedded `local` environment
//! through its [`flowpack_client::Platform`] implementation.
//!
//! Its parts: `sql` (the schema and shared queries), [`request`] (query strings and bodies
//! read into typed requests, with 422 errors naming the field), [`import`] (validation and
//! migration of import bodies), the operations in this module and in `hooks` (webhooks,
//! callbacks, runs), and the `Platform` implementation.
//!
//! Semantics, as the platform documents them (and the choices made where it is silent; all are
//! listed in [docs/platform-api.md](https://github.com/flowpack/flowpack/blob/main/docs/platform-api.md)):
//! - **List**: `page` from 1, `per_page` 1..=100 (default 15); a page past the last one is empty.
//!   `filter[name]` is a case-insensitive substring match (ASCII letters fold). `sort` is a
//!   comma-separated list of `name`, `enabled_at`, `created_at`, `id` with `-` for descending;
//!   ties are broken by `id`; the default is `id`; unknown sorts are refused (422).
//! - **Import** takes the export document plus optional `as_marketplace`; `flow` and `metadata`
//!   may also be JSON-encoded strings; a version-1 document is migrated up with flowpack-core's
//!   migration and stored as version 2. The new flow is disabled; the version with the highest
//!   `iteration` becomes `Draft` (the later one in the list on a tie), the others `Inactive`,
//!   none deployed. A missing `flow.priority` becomes 3. An `Idempotency-Key` replays the stored
//!   response of the first import made with it and creates nothing new.
//! - **Deploy** makes one version `Deployed` and the previously deployed one `Inactive`;
//!   undeploying (`deployed_at: null`) makes a deployed version `Inactive`.
//! - **Export** returns the stored document with `flow` (`name`, `description`, `is_enabled`,
//!   `priority`) and each version (`iteration`, `status`, `is_deployed`, and `flow_name`/
//!   `flow_priority` where present) reflecting the current state; versions made by the API are
//!   added after the imported ones and deleted versions left out; `metadata.exported_at` is now
//!   and `metadata.flow_name` the flow's name. Like the platform, it writes no
//!   `metadata.format_version`.
//!
//! Timestamps are RFC 3339 in UTC, from the [`Clock`] of the [`StoreOptions`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use flowpack_client::{
    Flow, FlowId, FlowSettings, FlowVersion, ListQuery, Page, PageMeta, VersionId,
};
use rusqlite::{Connection, params};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

mod hooks;
pub mod import;
mod platform;
pub mod request;
pub(crate) mod sql;

pub use request::{
    CallbackChanges, FlowChanges, FlowQuery, MetricsQuery, RunRequest, VersionQuery,
    WebhookChanges, includes_versions, parse_list_query,
};
use sql::{DEPLOYED, DRAFT, INACTIVE};

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

/// Errors of the store; the dispatcher maps them to statuses (404, 422, 500).
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
    /// The flow, version, webhook or callback does not exist (404).
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

    pub(crate) fn sqlite(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let context = context.into();
        move |source| StoreError::Sqlite { context, source }
    }
}

pub(crate) fn push(errors: &mut FieldErrors, field: &str, message: impl Into<String>) {
    errors
        .entry(field.to_string())
        .or_default()
        .push(message.into());
}

pub(crate) fn format_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Parses an RFC 3339 time and normalises it to UTC (so stored times sort as text).
pub(crate) fn normalise_time(field: &str, s: &str) -> Result<String, StoreError> {
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

/// A flow as stored: its fields and settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    /// The flow's id.
    pub id: FlowId,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Priority, 1 to 5.
    pub priority: i64,
    /// When it was enabled; `None` when disabled.
    pub enabled_at: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Last update time.
    pub updated_at: String,
    /// The production flag.
    pub prod_flag: bool,
    /// Whether runs use the queued time.
    pub use_queued_time: bool,
    /// Whether payloads of failed runs are removed.
    pub remove_failed_payloads: bool,
    /// The editor's layout direction (opaque), if set.
    pub layout_direction: Option<String>,
    /// Label ids.
    pub labels: Vec<u64>,
    /// Notification group ids.
    pub notification_groups: Vec<u64>,
    /// Whether it was imported as a marketplace package.
    pub marketplace: bool,
}

impl FlowRecord {
    /// The client's wire type (without versions).
    pub fn to_flow(&self) -> Flow {
        Flow {
            id: self.id,
            name: self.name.clone(),
            description: self.description.clone(),
            enabled_at: self.enabled_at.clone(),
            priority: Some(self.priority),
            created_at: Some(self.created_at.clone()),
            updated_at: Some(self.updated_at.clone()),
            versions: None,
        }
    }

    /// The settings a backup restores.
    pub fn to_settings(&self) -> FlowSettings {
        FlowSettings {
            id: self.id,
            name: self.name.clone(),
            description: self.description.clone(),
            enabled_at: self.enabled_at.clone(),
            priority: Some(self.priority),
            prod_flag: self.prod_flag,
            use_queued_time: self.use_queued_time,
            remove_failed_payloads: self.remove_failed_payloads,
            layout_direction: self.layout_direction.clone(),
            labels: self.labels.clone(),
            notification_groups: self.notification_groups.clone(),
        }
    }

    /// The JSON the API answers for a flow (without includes).
    pub fn to_json(&self) -> Map<String, Value> {
        let v = json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "enabled_at": self.enabled_at,
            "priority": self.priority,
            "prod_flag": self.prod_flag,
            "use_queued_time": self.use_queued_time,
            "remove_failed_payloads": self.remove_failed_payloads,
            "layout_direction": self.layout_direction,
            "labels": self.labels,
            "notification_groups": self.notification_groups,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

/// A version as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// The version's id.
    pub id: VersionId,
    /// Its flow.
    pub flow_id: FlowId,
    /// Where it sits in the export document's `flow.versions`.
    pub position: i64,
    /// Its iteration (higher is newer).
    pub iteration: i64,
    /// `Draft`, `Deployed` or `Inactive`.
    pub status: String,
    /// When it was deployed, if it is.
    pub deployed_at: Option<String>,
    /// When it was created.
    pub created_at: String,
}

impl VersionRecord {
    /// The client's wire type.
    pub fn to_version(&self) -> FlowVersion {
        FlowVersion {
            id: self.id,
            flow_id: self.flow_id,
            iteration: self.iteration,
            status: self.status.clone(),
            is_deployed: self.status == DEPLOYED,
            deployed_at: self.deployed_at.clone(),
        }
    }

    /// The JSON the API answers for a version (without includes).
    pub fn to_json(&self) -> Map<String, Value> {
        match json!({
            "id": self.id,
            "flow_id": self.flow_id,
            "iteration": self.iteration,
            "status": self.status,
            "is_deployed": self.status == DEPLOYED,
            "deployed_at": self.deployed_at,
            "created_at": self.created_at,
        }) {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

/// A recorded run (manual or started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The run's id.
    pub id: u64,
    /// Its flow.
    pub flow_id: FlowId,
    /// The version it ran.
    pub version_id: VersionId,
    /// `manual` or `start`.
    pub kind: String,
    /// `queued` when created; `succeeded` once read back (the sandbox runs nothing).
    pub status: String,
    /// When it was recorded.
    pub created_at: String,
}

impl RunRecord {
    /// The JSON the API answers for a run.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "flow_id": self.flow_id,
            "version_id": self.version_id,
            "status": self.status,
            "created_at": self.created_at,
        })
    }
}

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

/// Sorting and paging of a list, read from the query.
fn page_bounds(page: u64, per_page: u64) -> Result<(u64, u64), StoreError> {
    let page = page.max(1);
    let per_page = match per_page {
        0 => DEFAULT_PER_PAGE,
        n if n > MAX_PER_PAGE => {
            return Err(StoreError::field(
                "per_page",
                format!("The per page must be an integer between 1 and {MAX_PER_PAGE}."),
            ));
        }
        n => n,
    };
    Ok((page, per_page))
}

fn page_meta(page: u64, per_page: u64, total: u64) -> PageMeta {
    PageMeta {
        current_page: page,
        last_page: total.div_ceil(per_page).max(1),
        per_page,
        total,
    }
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
        sql::set_up(&conn)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Store {
            conn: Mutex::new(conn),
            clock: options.clock,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn now(&self) -> String {
        format_time(self.clock.now())
    }

    pub(crate) fn now_time(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// `GET /flows` as the client asks for it: one page of flows (with versions when `include`
    /// asks for them).
    pub fn list(&self, query: &ListQuery) -> Result<Page<Flow>, StoreError> {
        let q = FlowQuery::from(query);
        let (records, meta) = self.query_flows(&q)?;
        let with_versions = includes_versions(query.include.as_deref());
        let conn = self.lock();
        let mut data = Vec::with_capacity(records.len());
        for r in records {
            let mut flow = r.to_flow();
            if with_versions {
                flow.versions = Some(
                    sql::version_records(&conn, r.id)?
                        .iter()
                        .map(VersionRecord::to_version)
                        .collect(),
                );
            }
            data.push(flow);
        }
        Ok(Page { data, meta })
    }

    /// `GET /flows` with every filter and sort of the reference: one page of flow records.
    pub fn query_flows(&self, q: &FlowQuery) -> Result<(Vec<FlowRecord>, PageMeta), StoreError> {
        let (page, per_page) = page_bounds(q.page, q.per_page)?;
        let order = request::order_by(q.sort.as_deref())?;
        let name = q.name.as_deref().filter(|s| !s.is_empty());
        let ids = q
            .ids
            .as_ref()
            .map(|v| serde_json::to_string(v).unwrap_or_default());
        let version_ids = q
            .version_ids
            .as_ref()
            .map(|v| serde_json::to_string(v).unwrap_or_default());
        let labelled = q
            .labelled
            .as_ref()
            .map(|v| serde_json::to_string(v).unwrap_or_default());
        let filter = format!(
            "(?1 IS NULL OR instr(lower(name), lower(?1)) > 0) \
             AND (?2 IS NULL OR (enabled_at IS NOT NULL) = ?2) \
             AND (?3 IS NULL OR (EXISTS (SELECT 1 FROM versions v WHERE v.flow_id = flows.id \
                  AND v.status = '{DEPLOYED}')) = ?3) \
             AND (?4 IS NULL OR id IN (SELECT value FROM json_each(?4))) \
             AND (?5 IS NULL OR EXISTS (SELECT 1 FROM versions v WHERE v.flow_id = flows.id \
                  AND v.id IN (SELECT value FROM json_each(?5)))) \
             AND (?6 IS NULL OR EXISTS (SELECT 1 FROM json_each(flows.labels) l \
                  WHERE l.value IN (SELECT value FROM json_each(?6)))) \
             AND ?7 = 0"
        );
        let never = i64::from(q.match_nothing);
        let conn = self.lock();
        let args = params![
            name,
            q.enabled,
            q.deployed,
            ids,
            version_ids,
            labelled,
            never
        ];
        let total: i64 = conn
            .prepare_cached(&format!("SELECT count(*) FROM flows WHERE {filter}"))
            .and_then(|mut st| st.query_row(args, |r| r.get(0)))
            .map_err(StoreError::sqlite("counting flows"))?;
        let total = total as u64;
        let offset = (page - 1).saturating_mul(per_page);
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {} FROM flows WHERE {filter} ORDER BY {order} LIMIT ?8 OFFSET ?9",
                sql::FLOW_COLUMNS
            ))
            .map_err(StoreError::sqlite("listing flows"))?;
        let rows = st
            .query_map(
                params![
                    name,
                    q.enabled,
                    q.deployed,
                    ids,
                    version_ids,
                    labelled,
                    never,
                    per_page as i64,
                    i64::try_from(offset).unwrap_or(i64::MAX)
                ],
                sql::flow_from_row,
            )
            .map_err(StoreError::sqlite("listing flows"))?;
        let flows = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::sqlite("listing flows"))?;
        Ok((flows, page_meta(page, per_page, total)))
    }

    /// `GET /flows/{flow}`: one flow (404 when unknown), with its versions if asked.
    pub fn show(&self, id: FlowId, with_versions: bool) -> Result<Flow, StoreError> {
        let conn = self.lock();
        let mut flow = sql::wire_flow(&conn, id)?;
        if with_versions {
            flow.versions = Some(
                sql::version_records(&conn, id)?
                    .iter()
                    .map(VersionRecord::to_version)
                    .collect(),
            );
        }
        Ok(flow)
    }

    /// One flow's record, with its settings (404 when unknown).
    pub fn flow_record(&self, id: FlowId) -> Result<FlowRecord, StoreError> {
        sql::find_flow(&self.lock(), id)
    }

    /// `GET /flows/{flow}/versions`: the flow's versions, by iteration.
    pub fn versions(&self, id: FlowId) -> Result<Vec<FlowVersion>, StoreError> {
        Ok(self
            .version_list(id)?
            .iter()
            .map(VersionRecord::to_version)
            .collect())
    }

    /// The flow's version records, by iteration (404 when the flow is unknown).
    pub fn version_list(&self, id: FlowId) -> Result<Vec<VersionRecord>, StoreError> {
        let conn = self.lock();
        sql::find_flow(&conn, id)?;
        sql::version_records(&conn, id)
    }

    /// One page of a flow's versions, sorted by `sort` (`created_at` or `-created_at`; the
    /// default is by iteration).
    pub fn version_page(
        &self,
        id: FlowId,
        q: &VersionQuery,
    ) -> Result<(Vec<VersionRecord>, PageMeta), StoreError> {
        let (page, per_page) = page_bounds(q.page, q.per_page)?;
        let mut all = self.version_list(id)?;
        if let Some(desc) = q.created_desc {
            all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            if desc {
                all.reverse();
            }
        }
        let total = all.len() as u64;
        let start = usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX);
        let items = all
            .into_iter()
            .skip(start)
            .take(per_page as usize)
            .collect();
        Ok((items, page_meta(page, per_page, total)))
    }

    /// One version of a flow (404 when either is unknown).
    pub fn version_record(
        &self,
        flow: FlowId,
        version: VersionId,
    ) -> Result<VersionRecord, StoreError> {
        let conn = self.lock();
        sql::find_flow(&conn, flow)?;
        sql::find_version(&conn, flow, version)
    }

    /// The body of one version (its object in the export document: steps, variables,
    /// schedules…), as stored.
    pub fn version_body(&self, flow: FlowId, version: VersionId) -> Result<Value, StoreError> {
        let bodies = self.version_bodies(flow)?;
        bodies
            .into_iter()
            .find(|(id, _)| *id == version)
            .map(|(_, body)| body)
            .ok_or_else(|| StoreError::NotFound {
                message: format!("Version {version} of flow {flow} not found."),
            })
    }

    /// `(version id, body)` of every version of a flow, in the export document's order.
    fn version_bodies(&self, flow: FlowId) -> Result<Vec<(VersionId, Value)>, StoreError> {
        let (text, rows) = {
            let conn = self.lock();
            sql::find_flow(&conn, flow)?;
            (
                sql::document_text(&conn, flow)?,
                sql::version_bodies(&conn, flow)?,
            )
        };
        let doc = sql::parse_stored(flow, "export document", &text)?;
        let originals = doc
            .get("flow")
            .and_then(|f| f.get("versions"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut rows = rows;
        rows.sort_by_key(|(id, position, _)| (*position, *id));
        let mut out = Vec::with_capacity(rows.len());
        for (id, position, body) in rows {
            let value = match body {
                Some(text) => sql::parse_stored(flow, "version body", &text)?,
                None => usize::try_from(position)
                    .ok()
                    .and_then(|p| originals.get(p).cloned())
                    .unwrap_or_else(|| Value::Object(Map::new())),
            };
            out.push((id, value));
        }
        Ok(out)
    }

    /// `POST /flows/export` `{flow_id}`: the flow's export document (version 2) reflecting its
    /// current state; 404 when unknown.
    pub fn export(&self, id: FlowId) -> Result<Value, StoreError> {
        let (flow, versions, text, bodies) = {
            let conn = self.lock();
            let flow = sql::find_flow(&conn, id)?;
            let text = sql::document_text(&conn, id)?;
            let versions = sql::version_records(&conn, id)?;
            let bodies = sql::version_bodies(&conn, id)?;
            (flow, versions, text, bodies)
        };
        // JSON work happens outside the lock so concurrent exports run in parallel.
        let mut doc = sql::parse_stored(id, "export document", &text)?;
        let now = self.now();
        let Some(root) = doc.as_object_mut() else {
            return Ok(doc);
        };
        let metadata = root
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(m) = metadata.as_object_mut() {
            m.insert("flow_name".into(), Value::from(flow.name.clone()));
            m.insert("exported_at".into(), Value::from(now));
            m.shift_remove("format_version");
        }
        let Some(f) = root.get_mut("flow").and_then(Value::as_object_mut) else {
            return Ok(doc);
        };
        f.insert("name".into(), Value::from(flow.name.clone()));
        if flow.description.is_some() || f.contains_key("description") {
            f.insert(
                "description".into(),
                flow.description.clone().map_or(Value::Null, Value::from),
            );
        }
        f.insert("is_enabled".into(), Value::Bool(flow.enabled_at.is_some()));
        f.insert("priority".into(), Value::from(flow.priority));
        let originals = match f.get_mut("versions").map(Value::take) {
            Some(Value::Array(list)) => list,
            _ => Vec::new(),
        };
        let mut rows: Vec<(i64, VersionId, Option<String>)> = bodies
            .into_iter()
            .map(|(vid, position, body)| (position, vid, body))
            .collect();
        rows.sort();
        let mut list = Vec::with_capacity(rows.len());
        for (position, vid, body) in rows {
            let Some(record) = versions.iter().find(|v| v.id == vid) else {
                continue;
            };
            let mut value = match body {
                Some(text) => sql::parse_stored(id, "version body", &text)?,
                None => match usize::try_from(position)
                    .ok()
                    .and_then(|p| originals.get(p))
                {
                    Some(v) => v.clone(),
                    None => continue,
                },
            };
            if let Some(v) = value.as_object_mut() {
                if v.contains_key("flow_name") {
                    v.insert("flow_name".into(), Value::from(flow.name.clone()));
                }
                if v.contains_key("flow_priority") {
                    v.insert("flow_priority".into(), Value::from(flow.priority));
                }
                v.insert("iteration".into(), Value::from(record.iteration));
                v.insert("is_deployed".into(), Value::Bool(record.status == DEPLOYED));
                v.insert("status".into(), Value::from(record.status.clone()));
            }
            list.push(value);
        }
        f.insert("versions".into(), Value::Array(list));
        Ok(doc)
    }

    /// `POST /flows` `{flow: {name, description, prod_flag}}`: a new, disabled flow holding one
    /// empty `Draft` version (iteration 1).
    pub fn create(&self, changes: &FlowChanges) -> Result<FlowRecord, StoreError> {
        let mut errors = FieldErrors::new();
        let name = match &changes.name {
            Some(n) => n.clone(),
            None => {
                push(&mut errors, "flow.name", "The flow.name field is required.");
                String::new()
            }
        };
        request::check_changes(changes, &mut errors);
        if !errors.is_empty() {
            return Err(StoreError::validation(errors));
        }
        let description = changes.description.clone().flatten();
        let priority = changes.priority.unwrap_or(DEFAULT_PRIORITY);
        let doc = json!({
            "metadata": {"flow_name": name},
            "flow": {
                "name": name,
                "description": description,
                "is_enabled": false,
                "priority": priority,
                "versions": [{
                    "iteration": 1, "status": DRAFT, "is_deployed": false, "is_editable": true,
                    "has_callback_step": false, "variables": [], "schedules": [], "steps": [],
                    "connections": []
                }]
            },
            "systems": [], "scripts": [], "dependencies": []
        });
        let now = self.now();
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(StoreError::sqlite("starting a create"))?;
        tx.prepare_cached(
            "INSERT INTO flows (name, description, priority, enabled_at, created_at, updated_at, \
             document, marketplace, prod_flag) VALUES (?1, ?2, ?3, NULL, ?4, ?4, ?5, 0, ?6)",
        )
        .and_then(|mut st| {
            st.execute(params![
                name,
                description,
                priority,
                now,
                doc.to_string(),
                changes.prod_flag.unwrap_or(false)
            ])
        })
        .map_err(StoreError::sqlite(format!("inserting flow `{name}`")))?;
        let id = tx.last_insert_rowid();
        tx.prepare_cached(
            "INSERT INTO versions (flow_id, position, iteration, status, deployed_at, created_at) \
             VALUES (?1, 0, 1, ?2, NULL, ?3)",
        )
        .and_then(|mut st| st.execute(params![id, DRAFT, now]))
        .map_err(StoreError::sqlite(format!(
            "inserting the version of flow {id}"
        )))?;
        let flow = sql::find_flow(&tx, id as FlowId)?;
        tx.commit()
            .map_err(StoreError::sqlite(format!("committing flow {id}")))?;
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
        sql::find_flow(&tx, flow)?;
        let current = sql::find_version(&tx, flow, version)?;
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
        sql::touch(&tx, flow, &now)?;
        let updated = sql::find_version(&tx, flow, version)?;
        tx.commit().map_err(StoreError::sqlite(ctx))?;
        Ok(updated.to_version())
    }

    /// `POST /flows/{flow}/versions` (from `None`: a new `Draft` copied from the newest version)
    /// and `POST /flows/{flow}/versions/{version}/copy` (a `Draft` copied from that version).
    /// The new version's iteration is one above the highest; an existing `Draft` becomes
    /// `Inactive`.
    pub fn new_version(
        &self,
        flow: FlowId,
        from: Option<VersionId>,
    ) -> Result<VersionRecord, StoreError> {
        let versions = self.version_list(flow)?;
        let source = match from {
            Some(v) => versions
                .iter()
                .find(|r| r.id == v)
                .cloned()
                .ok_or_else(|| StoreError::NotFound {
                    message: format!("Version {v} of flow {flow} not found."),
                })?,
            None => versions
                .iter()
                .max_by_key(|r| (r.iteration, r.id))
                .cloned()
                .ok_or_else(|| StoreError::NotFound {
                    message: format!("Flow {flow} has no version to copy."),
                })?,
        };
        let mut body = self.version_body(flow, source.id)?;
        if let Some(b) = body.as_object_mut() {
            b.insert("status".into(), Value::from(DRAFT));
            b.insert("is_deployed".into(), Value::Bool(false));
            if b.contains_key("is_editable") {
                b.insert("is_editable".into(), Value::Bool(true));
            }
        }
        let now = self.now();
        let mut conn = self.lock();
        // The iteration is allocated inside the write transaction (immediate: another process
        // on the same database waits), never from a read made before it: parallel requests get
        // distinct iterations.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("starting a new version"))?;
        let ctx = format!("adding a version to flow {flow}");
        let iteration: i64 = tx
            .query_row(
                "SELECT coalesce(max(iteration), 0) + 1 FROM versions WHERE flow_id = ?1",
                [flow as i64],
                |r| r.get(0),
            )
            .map_err(StoreError::sqlite(ctx.clone()))?;
        if let Some(b) = body.as_object_mut() {
            b.insert("iteration".into(), Value::from(iteration));
        }
        tx.prepare_cached("UPDATE versions SET status = ?2 WHERE flow_id = ?1 AND status = ?3")
            .and_then(|mut st| st.execute(params![flow as i64, INACTIVE, DRAFT]))
            .map_err(StoreError::sqlite(ctx.clone()))?;
        let position: i64 = tx
            .query_row(
                "SELECT coalesce(max(position), -1) + 1 FROM versions WHERE flow_id = ?1",
                [flow as i64],
                |r| r.get(0),
            )
            .map_err(StoreError::sqlite(ctx.clone()))?;
        tx.prepare_cached(
            "INSERT INTO versions (flow_id, position, iteration, status, deployed_at, body, \
             created_at) VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6)",
        )
        .and_then(|mut st| {
            st.execute(params![
                flow as i64,
                position,
                iteration,
                DRAFT,
                body.to_string(),
                now
            ])
        })
        .map_err(StoreError::sqlite(ctx.clone()))?;
        let id = tx.last_insert_rowid() as VersionId;
        sql::touch(&tx, flow, &now)?;
        let record = sql::find_version(&tx, flow, id)?;
        tx.commit().map_err(StoreError::sqlite(ctx))?;
        Ok(record)
    }

    /// `DELETE /flows/{flow}/versions/{version}`: removes a version; the deployed one is
    /// refused (422), and so is a flow's last version.
    pub fn delete_version(&self, flow: FlowId, version: VersionId) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(StoreError::sqlite("starting a version delete"))?;
        sql::find_flow(&tx, flow)?;
        let record = sql::find_version(&tx, flow, version)?;
        if record.status == DEPLOYED {
            return Err(StoreError::field(
                "version",
                format!(
                    "Version {version} of flow {flow} is deployed; deploy another version (or \
                     undeploy it) before deleting it."
                ),
            ));
        }
        if sql::version_records(&tx, flow)?.len() == 1 {
            return Err(StoreError::field(
                "version",
                format!("Version {version} is the only version of flow {flow}."),
            ));
        }
        let ctx = format!("deleting version {version} of flow {flow}");
        tx.prepare_cached("DELETE FROM versions WHERE id = ?1")
            .and_then(|mut st| st.execute([version as i64]))
            .map_err(StoreError::sqlite(ctx.clone()))?;
        tx.commit().map_err(StoreError::sqlite(ctx))?;
        Ok(())
    }

    /// `PUT /flows/{flow}`: changes the flow (422 on a priority outside 1..=5, an empty name or
    /// one with control characters, a bad `enabled_at`) and returns it.
    pub fn update(&self, id: FlowId, changes: &FlowChanges) -> Result<Flow, StoreError> {
        Ok(self.update_record(id, changes)?.to_flow())
    }

    /// [`Store::update`], answering the record with its settings.
    pub fn update_record(
        &self,
        id: FlowId,
        changes: &FlowChanges,
    ) -> Result<FlowRecord, StoreError> {
        let mut errors = FieldErrors::new();
        request::check_changes(changes, &mut errors);
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
        let current = sql::find_flow(&tx, id)?;
        let enabled_at = enabled_at.unwrap_or(current.enabled_at);
        let priority = changes.priority.unwrap_or(current.priority);
        let name = changes.name.clone().unwrap_or(current.name);
        let description = changes.description.clone().unwrap_or(current.description);
        let prod_flag = changes.prod_flag.unwrap_or(current.prod_flag);
        let queued = changes.use_queued_time.unwrap_or(current.use_queued_time);
        let remove = changes
            .remove_failed_payloads
            .unwrap_or(current.remove_failed_payloads);
        let labels = changes.labels.clone().unwrap_or(current.labels);
        let groups = changes
            .notification_groups
            .clone()
            .unwrap_or(current.notification_groups);
        tx.prepare_cached(
            "UPDATE flows SET enabled_at = ?2, priority = ?3, name = ?4, description = ?5, \
             updated_at = ?6, prod_flag = ?7, use_queued_time = ?8, remove_failed_payloads = ?9, \
             labels = ?10, notification_groups = ?11 WHERE id = ?1",
        )
        .and_then(|mut st| {
            st.execute(params![
                id as i64,
                enabled_at,
                priority,
                name,
                description,
                now,
                prod_flag,
                queued,
                remove,
                serde_json::to_string(&labels).unwrap_or_else(|_| "[]".into()),
                serde_json::to_string(&groups).unwrap_or_else(|_| "[]".into()),
            ])
        })
        .map_err(StoreError::sqlite(format!("updating flow {id}")))?;
        let flow = sql::find_flow(&tx, id)?;
        tx.commit()
            .map_err(StoreError::sqlite(format!("updating flow {id}")))?;
        Ok(flow)
    }

    /// `PATCH /flows/{flow}/layout-direction` `{layout_direction}`: stores the direction
    /// verbatim (1 to 64 characters).
    pub fn set_layout_direction(&self, id: FlowId, direction: &str) -> Result<(), StoreError> {
        request::check_opaque("layout_direction", direction)?;
        let now = self.now();
        let conn = self.lock();
        sql::find_flow(&conn, id)?;
        conn.prepare_cached(
            "UPDATE flows SET layout_direction = ?2, updated_at = ?3 WHERE id = ?1",
        )
        .and_then(|mut st| st.execute(params![id as i64, direction, now]))
        .map_err(StoreError::sqlite(format!("updating flow {id}")))?;
        Ok(())
    }

    /// `DELETE /flows/{flow}`: removes the flow, its versions, webhooks, callbacks and runs (404
    /// when unknown).
    pub fn delete(&self, id: FlowId) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(StoreError::sqlite("starting a delete"))?;
        sql::find_flow(&tx, id)?;
        let ctx = format!("deleting flow {id}");
        for table in ["versions", "webhooks", "callbacks", "runs"] {
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE flow_id = ?1"))
                .and_then(|mut st| st.execute([id as i64]))
                .map_err(StoreError::sqlite(ctx.clone()))?;
        }
        tx.prepare_cached("DELETE FROM flows WHERE id = ?1")
            .and_then(|mut st| st.execute([id as i64]))
            .map_err(StoreError::sqlite(ctx.clone()))?;
        tx.commit().map_err(StoreError::sqlite(ctx))?;
        Ok(())
    }

    /// `POST /flows/{flow}/duplicate` `{flow_version_id}`: a new, disabled flow named
    /// `<name> (copy)` with the source's settings (not its webhooks or callbacks) holding that
    /// version as its only version, a `Draft`. A version of another flow is refused (422).
    pub fn duplicate(&self, flow: FlowId, version: VersionId) -> Result<FlowRecord, StoreError> {
        let source = self.flow_record(flow)?;
        let versions = self.version_list(flow)?;
        let Some(record) = versions.iter().find(|v| v.id == version) else {
            return Err(StoreError::field(
                "flow_version_id",
                format!(
                    "The selected flow version id is invalid: flow {flow} has no version {version}."
                ),
            ));
        };
        let mut body = self.version_body(flow, version)?;
        let name = format!("{} (copy)", source.name);
        if let Some(b) = body.as_object_mut() {
            b.insert("status".into(), Value::from(DRAFT));
            b.insert("is_deployed".into(), Value::Bool(false));
            if b.contains_key("flow_name") {
                b.insert("flow_name".into(), Value::from(name.clone()));
            }
        }
        let text = {
            let conn = self.lock();
            sql::document_text(&conn, flow)?
        };
        let mut doc = sql::parse_stored(flow, "export document", &text)?;
        if let Some(f) = doc.get_mut("flow").and_then(Value::as_object_mut) {
            f.insert("name".into(), Value::from(name.clone()));
            f.insert("versions".into(), Value::Array(vec![body]));
        }
        let now = self.now();
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(StoreError::sqlite("starting a duplicate"))?;
        tx.prepare_cached(
            "INSERT INTO flows (name, description, priority, enabled_at, created_at, updated_at, \
             document, marketplace, prod_flag, use_queued_time, remove_failed_payloads, \
             layout_direction, labels, notification_groups) \
             VALUES (?1, ?2, ?3, NULL, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .and_then(|mut st| {
            st.execute(params![
                name,
                source.description,
                source.priority,
                now,
                doc.to_string(),
                source.marketplace,
                source.prod_flag,
                source.use_queued_time,
                source.remove_failed_payloads,
                source.layout_direction,
                serde_json::to_string(&source.labels).unwrap_or_else(|_| "[]".into()),
                serde_json::to_string(&source.notification_groups).unwrap_or_else(|_| "[]".into()),
            ])
        })
        .map_err(StoreError::sqlite(format!("inserting flow `{name}`")))?;
        let id = tx.last_insert_rowid();
        tx.prepare_cached(
            "INSERT INTO versions (flow_id, position, iteration, status, deployed_at, created_at) \
             VALUES (?1, 0, ?2, ?3, NULL, ?4)",
        )
        .and_then(|mut st| st.execute(params![id, record.iteration, DRAFT, now]))
        .map_err(StoreError::sqlite(format!(
            "inserting the version of flow {id}"
        )))?;
        let created = sql::find_flow(&tx, id as FlowId)?;
        tx.commit()
            .map_err(StoreError::sqlite(format!("committing flow {id}")))?;
        Ok(created)
    }
}

#[cfg(test)]
mod tests;
