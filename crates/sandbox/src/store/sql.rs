//! The SQL side of the store: the schema (and how an older database file is brought up to it),
//! row readers and the small queries every operation shares.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{FlowRecord, RunRecord, StoreError, VersionRecord};
use flowpack_client::{Callback, Flow, FlowId, VersionId, Webhook};

/// A version's status.
pub(crate) const DRAFT: &str = "Draft";
/// The deployed version's status.
pub(crate) const DEPLOYED: &str = "Deployed";
/// Every other version's status.
pub(crate) const INACTIVE: &str = "Inactive";

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
CREATE TABLE IF NOT EXISTS webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id INTEGER NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    format TEXT NOT NULL,
    body TEXT,
    hmac_algorithm TEXT,
    hmac_secret_key TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id INTEGER NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    format TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id INTEGER NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    version_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    payload TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_flow ON runs(flow_id, created_at);
";

/// Columns added after the first release: a database file written by an older sandbox gets them
/// on open (with their defaults), so its data keeps working.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("flows", "prod_flag", "INTEGER NOT NULL DEFAULT 0"),
    ("flows", "use_queued_time", "INTEGER NOT NULL DEFAULT 0"),
    (
        "flows",
        "remove_failed_payloads",
        "INTEGER NOT NULL DEFAULT 0",
    ),
    ("flows", "layout_direction", "TEXT"),
    ("flows", "labels", "TEXT NOT NULL DEFAULT '[]'"),
    ("flows", "notification_groups", "TEXT NOT NULL DEFAULT '[]'"),
    ("versions", "body", "TEXT"),
    ("versions", "created_at", "TEXT"),
];

/// Creates the tables, and adds the columns an older file lacks.
pub(crate) fn set_up(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    for (table, column, decl) in ADDED_COLUMNS {
        let present: i64 = conn.query_row(
            "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
            params![table, column],
            |r| r.get(0),
        )?;
        if present == 0 {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
        }
    }
    conn.execute_batch(
        "UPDATE versions SET created_at = (SELECT created_at FROM flows WHERE flows.id = versions.flow_id) \
         WHERE created_at IS NULL",
    )?;
    Ok(())
}

/// The columns [`flow_from_row`] reads, in its order.
pub(crate) const FLOW_COLUMNS: &str = "id, name, description, priority, enabled_at, created_at, \
     updated_at, prod_flag, use_queued_time, remove_failed_payloads, layout_direction, labels, \
     notification_groups, marketplace";

fn ids(text: String) -> Vec<u64> {
    serde_json::from_str(&text).unwrap_or_default()
}

pub(crate) fn flow_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FlowRecord> {
    Ok(FlowRecord {
        id: r.get::<_, i64>(0)? as FlowId,
        name: r.get(1)?,
        description: r.get(2)?,
        priority: r.get(3)?,
        enabled_at: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        prod_flag: r.get(7)?,
        use_queued_time: r.get(8)?,
        remove_failed_payloads: r.get(9)?,
        layout_direction: r.get(10)?,
        labels: ids(r.get(11)?),
        notification_groups: ids(r.get(12)?),
        marketplace: r.get(13)?,
    })
}

pub(crate) fn not_found(kind: &str, id: impl std::fmt::Display) -> StoreError {
    StoreError::NotFound {
        message: format!("{kind} {id} not found."),
    }
}

pub(crate) fn find_flow(conn: &Connection, id: FlowId) -> Result<FlowRecord, StoreError> {
    let Ok(sql_id) = i64::try_from(id) else {
        return Err(not_found("Flow", id));
    };
    conn.prepare_cached(&format!("SELECT {FLOW_COLUMNS} FROM flows WHERE id = ?1"))
        .and_then(|mut st| st.query_row([sql_id], flow_from_row).optional())
        .map_err(StoreError::sqlite(format!("reading flow {id}")))?
        .ok_or_else(|| not_found("Flow", id))
}

/// A flow as the client's wire type (without versions).
pub(crate) fn wire_flow(conn: &Connection, id: FlowId) -> Result<Flow, StoreError> {
    Ok(find_flow(conn, id)?.to_flow())
}

pub(crate) fn version_records(
    conn: &Connection,
    flow: FlowId,
) -> Result<Vec<VersionRecord>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT id, flow_id, position, iteration, status, deployed_at, created_at FROM versions \
             WHERE flow_id = ?1 ORDER BY iteration, id",
        )
        .map_err(StoreError::sqlite(format!("reading versions of flow {flow}")))?;
    st.query_map([flow as i64], |r| {
        Ok(VersionRecord {
            id: r.get::<_, i64>(0)? as VersionId,
            flow_id: r.get::<_, i64>(1)? as FlowId,
            position: r.get(2)?,
            iteration: r.get(3)?,
            status: r.get(4)?,
            deployed_at: r.get(5)?,
            created_at: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(StoreError::sqlite(format!(
        "reading versions of flow {flow}"
    )))
}

pub(crate) fn find_version(
    conn: &Connection,
    flow: FlowId,
    version: VersionId,
) -> Result<VersionRecord, StoreError> {
    version_records(conn, flow)?
        .into_iter()
        .find(|v| v.id == version)
        .ok_or_else(|| StoreError::NotFound {
            message: format!("Version {version} of flow {flow} not found."),
        })
}

/// The stored export document of a flow (text) and the stored bodies of versions created by the
/// API (`None` for imported ones, whose body is in the document).
pub(crate) fn document_text(conn: &Connection, id: FlowId) -> Result<String, StoreError> {
    conn.prepare_cached("SELECT document FROM flows WHERE id = ?1")
        .and_then(|mut st| st.query_row([id as i64], |r| r.get(0)))
        .map_err(StoreError::sqlite(format!("reading flow {id}")))
}

/// `(position, stored body)` of every version of a flow.
pub(crate) fn version_bodies(
    conn: &Connection,
    id: FlowId,
) -> Result<Vec<(VersionId, i64, Option<String>)>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT id, position, body FROM versions WHERE flow_id = ?1")
        .map_err(StoreError::sqlite(format!("reading versions of flow {id}")))?;
    st.query_map([id as i64], |r| {
        Ok((r.get::<_, i64>(0)? as VersionId, r.get(1)?, r.get(2)?))
    })
    .and_then(|rows| rows.collect())
    .map_err(StoreError::sqlite(format!("reading versions of flow {id}")))
}

pub(crate) fn touch(conn: &Connection, flow: FlowId, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE flows SET updated_at = ?2 WHERE id = ?1")
        .and_then(|mut st| st.execute(params![flow as i64, now]))
        .map_err(StoreError::sqlite(format!("updating flow {flow}")))?;
    Ok(())
}

pub(crate) fn replay(conn: &Connection, key: &str) -> Result<Option<Flow>, StoreError> {
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

pub(crate) const WEBHOOK_COLUMNS: &str = "id, flow_id, status, format, body, hmac_algorithm, \
     hmac_secret_key IS NOT NULL, created_at, updated_at";

pub(crate) fn webhook_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Webhook> {
    Ok(Webhook {
        id: r.get::<_, i64>(0)? as u64,
        flow_id: r.get::<_, i64>(1)? as u64,
        status: r.get(2)?,
        format: r.get(3)?,
        body: r.get(4)?,
        hmac_algorithm: r.get(5)?,
        has_hmac_secret_key: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

pub(crate) const CALLBACK_COLUMNS: &str = "id, flow_id, status, format, created_at, updated_at";

pub(crate) fn callback_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Callback> {
    Ok(Callback {
        id: r.get::<_, i64>(0)? as u64,
        flow_id: r.get::<_, i64>(1)? as u64,
        status: r.get(2)?,
        format: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

pub(crate) fn runs_of(
    conn: &Connection,
    flow: FlowId,
    version: Option<VersionId>,
) -> Result<Vec<RunRecord>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT id, flow_id, version_id, kind, status, created_at FROM runs \
             WHERE flow_id = ?1 AND (?2 IS NULL OR version_id = ?2) ORDER BY id",
        )
        .map_err(StoreError::sqlite(format!("reading runs of flow {flow}")))?;
    st.query_map(params![flow as i64, version.map(|v| v as i64)], |r| {
        Ok(RunRecord {
            id: r.get::<_, i64>(0)? as u64,
            flow_id: r.get::<_, i64>(1)? as u64,
            version_id: r.get::<_, i64>(2)? as u64,
            kind: r.get(3)?,
            status: r.get(4)?,
            created_at: r.get(5)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(StoreError::sqlite(format!("reading runs of flow {flow}")))
}

/// Parses a stored JSON text (a document or a version body) of flow `flow`.
pub(crate) fn parse_stored(
    flow: FlowId,
    what: &'static str,
    text: &str,
) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt {
        flow: flow as i64,
        what,
        source,
    })
}
