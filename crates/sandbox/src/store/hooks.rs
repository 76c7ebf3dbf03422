//! Webhooks, callbacks and runs of a flow.

use flowpack_client::{Callback, FlowId, VersionId, Webhook};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::request::{CallbackChanges, MetricsQuery, RunRequest, WebhookChanges};
use super::sql::{self, DEPLOYED};
use super::{RunRecord, Store, StoreError, format_time};

/// The status and format of a webhook or callback created without them.
pub const DEFAULT_STATUS: &str = "active";
/// See [`DEFAULT_STATUS`].
pub const DEFAULT_FORMAT: &str = "json";

impl Store {
    /// `GET /flows/{flow}/webhooks`: the flow's webhooks, oldest first.
    pub fn webhooks(&self, flow: FlowId) -> Result<Vec<Webhook>, StoreError> {
        let conn = self.lock();
        sql::find_flow(&conn, flow)?;
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {} FROM webhooks WHERE flow_id = ?1 ORDER BY id",
                sql::WEBHOOK_COLUMNS
            ))
            .map_err(StoreError::sqlite(format!(
                "reading webhooks of flow {flow}"
            )))?;
        st.query_map([flow as i64], sql::webhook_from_row)
            .and_then(|rows| rows.collect())
            .map_err(StoreError::sqlite(format!(
                "reading webhooks of flow {flow}"
            )))
    }

    fn webhook(conn: &rusqlite::Connection, flow: FlowId, id: u64) -> Result<Webhook, StoreError> {
        conn.prepare_cached(&format!(
            "SELECT {} FROM webhooks WHERE flow_id = ?1 AND id = ?2",
            sql::WEBHOOK_COLUMNS
        ))
        .and_then(|mut st| {
            st.query_row(params![flow as i64, id as i64], sql::webhook_from_row)
                .optional()
        })
        .map_err(StoreError::sqlite(format!("reading webhook {id}")))?
        .ok_or_else(|| StoreError::NotFound {
            message: format!("Webhook {id} of flow {flow} not found."),
        })
    }

    /// `POST /flows/{flow}/webhooks` `{status, body, format}`: a new webhook. `hmac_*` are not
    /// taken here (the reference documents them on update only): they are ignored.
    pub fn create_webhook(&self, flow: FlowId, c: &WebhookChanges) -> Result<Webhook, StoreError> {
        let now = self.now();
        let conn = self.lock();
        sql::find_flow(&conn, flow)?;
        conn.prepare_cached(
            "INSERT INTO webhooks (flow_id, status, format, body, hmac_algorithm, \
             hmac_secret_key, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, NULL, NULL, ?5, ?5)",
        )
        .and_then(|mut st| {
            st.execute(params![
                flow as i64,
                c.status.as_deref().unwrap_or(DEFAULT_STATUS),
                c.format.as_deref().unwrap_or(DEFAULT_FORMAT),
                c.body.clone().flatten(),
                now
            ])
        })
        .map_err(StoreError::sqlite(format!(
            "adding a webhook to flow {flow}"
        )))?;
        let id = conn.last_insert_rowid() as u64;
        Store::webhook(&conn, flow, id)
    }

    /// `PUT /flows/{flow}/webhooks/{webhook}`: changes the fields given, `hmac_*` included.
    pub fn update_webhook(
        &self,
        flow: FlowId,
        id: u64,
        c: &WebhookChanges,
    ) -> Result<Webhook, StoreError> {
        let now = self.now();
        let conn = self.lock();
        sql::find_flow(&conn, flow)?;
        Store::webhook(&conn, flow, id)?;
        let (secret_set, secret): (bool, Option<String>) = match &c.hmac_secret_key {
            Some(v) => (true, v.clone()),
            None => (false, None),
        };
        let (algo_set, algo) = match &c.hmac_algorithm {
            Some(v) => (true, v.clone()),
            None => (false, None),
        };
        let (body_set, body) = match &c.body {
            Some(v) => (true, v.clone()),
            None => (false, None),
        };
        conn.prepare_cached(
            "UPDATE webhooks SET status = coalesce(?3, status), format = coalesce(?4, format), \
             body = CASE WHEN ?5 THEN ?6 ELSE body END, \
             hmac_algorithm = CASE WHEN ?7 THEN ?8 ELSE hmac_algorithm END, \
             hmac_secret_key = CASE WHEN ?9 THEN ?10 ELSE hmac_secret_key END, \
             updated_at = ?11 WHERE flow_id = ?1 AND id = ?2",
        )
        .and_then(|mut st| {
            st.execute(params![
                flow as i64,
                id as i64,
                c.status,
                c.format,
                body_set,
                body,
                algo_set,
                algo,
                secret_set,
                secret,
                now
            ])
        })
        .map_err(StoreError::sqlite(format!("updating webhook {id}")))?;
        Store::webhook(&conn, flow, id)
    }

    /// `DELETE /flows/{flow}/webhooks/{webhook}`.
    pub fn delete_webhook(&self, flow: FlowId, id: u64) -> Result<(), StoreError> {
        let conn = self.lock();
        sql::find_flow(&conn, flow)?;
        Store::webhook(&conn, flow, id)?;
        conn.prepare_cached("DELETE FROM webhooks WHERE flow_id = ?1 AND id = ?2")
            .and_then(|mut st| st.execute(params![flow as i64, id as i64]))
            .map_err(StoreError::sqlite(format!("deleting webhook {id}")))?;
        Ok(())
    }

    /// `GET /flows/{flow}/callbacks`: the flow's callbacks, oldest first.
    pub fn callbacks(&self, flow: FlowId) -> Result<Vec<Callback>, StoreError> {
        let conn = self.lock();
        sql::find_flow(&conn, flow)?;
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {} FROM callbacks WHERE flow_id = ?1 ORDER BY id",
                sql::CALLBACK_COLUMNS
            ))
            .map_err(StoreError::sqlite(format!(
                "reading callbacks of flow {flow}"
            )))?;
        st.query_map([flow as i64], sql::callback_from_row)
            .and_then(|rows| rows.collect())
            .map_err(StoreError::sqlite(format!(
                "reading callbacks of flow {flow}"
            )))
    }

    fn callback(
        conn: &rusqlite::Connection,
        flow: FlowId,
        id: u64,
    ) -> Result<Callback, StoreError> {
        conn.prepare_cached(&format!(
            "SELECT {} FROM callbacks WHERE flow_id = ?1 AND id = ?2",
            sql::CALLBACK_COLUMNS
        ))
        .and_then(|mut st| {
            st.query_row(params![flow as i64, id as i64], sql::callback_from_row)
                .optional()
        })
        .map_err(StoreError::sqlite(format!("reading callback {id}")))?
        .ok_or_else(|| StoreError::NotFound {
            message: format!("Callback {id} of flow {flow} not found."),
        })
    }

    /// `POST /flows/{flow}/callbacks` `{status, format}`.
    pub fn create_callback(
        &self,
        flow: FlowId,
        c: &CallbackChanges,
    ) -> Result<Callback, StoreError> {
        let now = self.now();
        let conn = self.lock();
        sql::find_flow(&conn, flow)?;
        conn.prepare_cached(
            "INSERT INTO callbacks (flow_id, status, format, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?4)",
        )
        .and_then(|mut st| {
            st.execute(params![
                flow as i64,
                c.status.as_deref().unwrap_or(DEFAULT_STATUS),
                c.format.as_deref().unwrap_or(DEFAULT_FORMAT),
                now
            ])
        })
        .map_err(StoreError::sqlite(format!(
            "adding a callback to flow {flow}"
        )))?;
        let id = conn.last_insert_rowid() as u64;
        Store::callback(&conn, flow, id)
    }

    /// `PUT /flows/{flow}/callbacks/{callback}`.
    pub fn update_callback(
        &self,
        flow: FlowId,
        id: u64,
        c: &CallbackChanges,
    ) -> Result<Callback, StoreError> {
        let now = self.now();
        let conn = self.lock();
        sql::find_flow(&conn, flow)?;
        Store::callback(&conn, flow, id)?;
        conn.prepare_cached(
            "UPDATE callbacks SET status = coalesce(?3, status), format = coalesce(?4, format), \
             updated_at = ?5 WHERE flow_id = ?1 AND id = ?2",
        )
        .and_then(|mut st| st.execute(params![flow as i64, id as i64, c.status, c.format, now]))
        .map_err(StoreError::sqlite(format!("updating callback {id}")))?;
        Store::callback(&conn, flow, id)
    }

    /// `DELETE /flows/{flow}/callbacks/{callback}`.
    pub fn delete_callback(&self, flow: FlowId, id: u64) -> Result<(), StoreError> {
        let conn = self.lock();
        sql::find_flow(&conn, flow)?;
        Store::callback(&conn, flow, id)?;
        conn.prepare_cached("DELETE FROM callbacks WHERE flow_id = ?1 AND id = ?2")
            .and_then(|mut st| st.execute(params![flow as i64, id as i64]))
            .map_err(StoreError::sqlite(format!("deleting callback {id}")))?;
        Ok(())
    }

    /// `POST /flows/{flow}/manual/{version}` (`kind` `manual`) and `…/start/{version}` (`start`):
    /// records a run of a deployed version. The answer says `queued`; the sandbox runs nothing,
    /// so the run reads back as `succeeded`. A version that is not deployed is refused (422).
    pub fn record_run(
        &self,
        flow: FlowId,
        version: VersionId,
        kind: &str,
        run: &RunRequest,
    ) -> Result<RunRecord, StoreError> {
        let now = self.now();
        let conn = self.lock();
        sql::find_flow(&conn, flow)?;
        let record = sql::find_version(&conn, flow, version)?;
        if record.status != DEPLOYED {
            return Err(StoreError::field(
                "version_id",
                format!(
                    "Version {version} of flow {flow} is not deployed ({}); only the deployed version runs.",
                    record.status
                ),
            ));
        }
        conn.prepare_cached(
            "INSERT INTO runs (flow_id, version_id, kind, status, payload, created_at) \
             VALUES (?1, ?2, ?3, 'succeeded', ?4, ?5)",
        )
        .and_then(|mut st| st.execute(params![flow as i64, version as i64, kind, run.payload, now]))
        .map_err(StoreError::sqlite(format!(
            "recording a run of flow {flow}"
        )))?;
        Ok(RunRecord {
            id: conn.last_insert_rowid() as u64,
            flow_id: flow,
            version_id: version,
            kind: kind.to_string(),
            status: "queued".to_string(),
            created_at: now,
        })
    }

    /// The runs of a flow (of one version when given), oldest first.
    pub fn runs(
        &self,
        flow: FlowId,
        version: Option<VersionId>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let conn = self.lock();
        sql::find_flow(&conn, flow)?;
        sql::runs_of(&conn, flow, version)
    }

    /// `GET /flows/{flow}/version-metrics`: runs counted per interval, `{interval_start,
    /// interval_end, interval_unit, buckets: [{start, runs}]}`.
    pub fn version_metrics(&self, flow: FlowId, q: &MetricsQuery) -> Result<Value, StoreError> {
        let runs = self.runs(flow, None)?;
        let end = q.end.unwrap_or_else(|| self.now_time());
        let start = q.start.unwrap_or(end - Duration::days(7));
        let step = q.unit.step();
        let count = ((end - start).whole_seconds().max(0) as f64 / step.whole_seconds() as f64)
            .ceil() as u64;
        if count > super::request::MAX_BUCKETS {
            return Err(StoreError::field(
                "interval_unit",
                format!(
                    "The interval holds {count} {}s; at most {} buckets are answered.",
                    q.unit.name(),
                    super::request::MAX_BUCKETS
                ),
            ));
        }
        let times: Vec<(OffsetDateTime, u64)> = runs
            .iter()
            .filter(|r| {
                q.versions
                    .as_ref()
                    .is_none_or(|v| v.contains(&r.version_id))
            })
            .filter_map(|r| {
                OffsetDateTime::parse(
                    &r.created_at,
                    &time::format_description::well_known::Rfc3339,
                )
                .ok()
                .map(|t| (t, r.version_id))
            })
            .collect();
        let mut buckets = Vec::new();
        let mut at = start;
        while at < end {
            let next = at + step;
            let n = times.iter().filter(|(t, _)| *t >= at && *t < next).count();
            buckets.push(json!({"start": format_time(at), "runs": n}));
            at = next;
        }
        Ok(json!({
            "interval_start": format_time(start),
            "interval_end": format_time(end),
            "interval_unit": q.unit.name(),
            "buckets": buckets,
        }))
    }
}
