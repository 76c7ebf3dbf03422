//! The transport-free dispatcher: (method, path, query, headers, body) → (status, JSON body).
//!
//! The axum server, the tests and the conformance test all go through [`Dispatcher::handle`], so
//! what is tested in process is what is served over HTTP. Order of checks: authentication (401),
//! then `--fail-on` rules (500), then routing (404 unknown path, 405 known path with another
//! method), then the endpoint (404 unknown id, 422 invalid fields). Every malformed request gets
//! a 4xx.

use std::sync::{Arc, Mutex};

use flowpack_client::FlowId;
use serde_json::{Map, Value, json};

use crate::store::request::{self, FlowChanges, RunRequest, VersionQuery};
use crate::store::{FlowRecord, Store, StoreError, VersionRecord};
use flowpack_client::PageMeta;

/// The largest request body accepted (8 MB); larger bodies get 413.
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// A request, as any transport hands it over.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, e.g. `/api/v1/flows/7`.
    pub path: String,
    /// The raw query string (without `?`), possibly empty.
    pub query: String,
    /// Header names (any case) and values.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: &str, path_and_query: &str) -> Request {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Request {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            ..Request::default()
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets a JSON body.
    pub fn json(mut self, body: &Value) -> Request {
        self.body = body.to_string().into_bytes();
        self
    }

    /// The first header of that name (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response: a status and a JSON body (`None` for 204).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

impl Response {
    fn json(status: u16, body: Value) -> Response {
        Response {
            status,
            body: Some(body),
        }
    }

    /// `{message}` with a status.
    pub fn message(status: u16, text: &str) -> Response {
        Response::json(status, json!({ "message": text }))
    }

    fn data(value: impl serde::Serialize) -> Response {
        Response::json(200, json!({ "data": value }))
    }

    fn no_content() -> Response {
        Response {
            status: 204,
            body: None,
        }
    }
}

/// One `--fail-on "METHOD PATH-GLOB[:N]"` rule: the first N matching requests fail with 500
/// (every matching request when N is not given). `*` in the method matches any method; in the
/// glob, `*` matches any run of characters and `?` one character; a glob not starting with
/// `/api/` is taken under `/api/v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailOn {
    method: String,
    glob: String,
    remaining: Option<u64>,
}

impl FailOn {
    /// Parses `METHOD PATH-GLOB[:N]`, e.g. `PUT /flows/*/versions/*:1`.
    pub fn parse(spec: &str) -> Result<FailOn, String> {
        let spec = spec.trim();
        let (method, rest) = spec
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("`{spec}` is not `METHOD PATH-GLOB[:N]`"))?;
        let rest = rest.trim();
        let (glob, remaining) = match rest.rsplit_once(':') {
            Some((g, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                let n: u64 = n.parse().map_err(|_| format!("`{n}` is not a count"))?;
                (g, Some(n))
            }
            _ => (rest, None),
        };
        if glob.is_empty() || !glob.starts_with('/') {
            return Err(format!("`{spec}`: the path glob must start with `/`"));
        }
        let glob = if glob.starts_with("/api/") {
            glob.to_string()
        } else {
            format!("/api/v1{glob}")
        };
        Ok(FailOn {
            method: method.to_ascii_uppercase(),
            glob,
            remaining,
        })
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        (self.method == "*" || self.method.eq_ignore_ascii_case(method))
            && glob_match(self.glob.as_bytes(), path.as_bytes())
    }
}

fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

/// Routes requests to a [`Store`]; cheap to share.
#[derive(Debug)]
pub struct Dispatcher {
    store: Arc<Store>,
    token: String,
    fail_on: Mutex<Vec<FailOn>>,
}

type Outcome = Result<Response, StoreError>;

/// 405: the route exists, the method does not.
fn not_allowed() -> Outcome {
    Ok(Response::message(
        405,
        "The method is not supported for this route.",
    ))
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NotFound { message } => Response::message(404, &message),
        StoreError::Validation { message, errors } => {
            Response::json(422, json!({ "message": message, "errors": errors }))
        }
        other => Response::message(500, &other.to_string()),
    }
}

fn parse_pairs(query: &str) -> Result<Vec<(String, String)>, StoreError> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .map_err(|e| StoreError::field("query", format!("The query string is malformed: {e}.")))
}

fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn count_of(v: &Value) -> usize {
    match v {
        Value::Array(a) => a.len(),
        Value::Null => 0,
        _ => 1,
    }
}

/// Adds each include term to `target`: `rel` → the relation (nested paths `rel.sub` let
/// `sub` be added to it), `rel_count` → `{rel}_count`, `relExists` → `{rel}_exists`.
fn apply_includes(
    target: &mut Map<String, Value>,
    include: &[String],
    mut relation: impl FnMut(&str, &[&str]) -> Result<Value, StoreError>,
) -> Result<(), StoreError> {
    for term in include {
        let mut parts = term.split('.');
        let root = parts.next().unwrap_or(term);
        let nested: Vec<&str> = parts.collect();
        if let Some(r) = root.strip_suffix("_count") {
            let v = relation(r, &[])?;
            target.insert(format!("{}_count", snake(r)), Value::from(count_of(&v)));
        } else if let Some(r) = root.strip_suffix("Exists") {
            let v = relation(r, &[])?;
            target.insert(
                format!("{}_exists", snake(r)),
                Value::Bool(count_of(&v) > 0),
            );
        } else {
            let v = relation(root, &nested)?;
            target.insert(snake(root), v);
        }
    }
    Ok(())
}

impl Dispatcher {
    /// A dispatcher over `store` accepting the API key `token`.
    pub fn new(store: Arc<Store>, token: impl Into<String>) -> Dispatcher {
        Dispatcher {
            store,
            token: token.into(),
            fail_on: Mutex::new(Vec::new()),
        }
    }

    /// Adds `--fail-on` rules.
    pub fn with_fail_on(self, rules: Vec<FailOn>) -> Dispatcher {
        *self.fail_on.lock().unwrap_or_else(|e| e.into_inner()) = rules;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Whether an `Authorization` value carries the key (raw or `Bearer <key>`).
    pub fn authorised(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let value = value.trim();
        let key = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .unwrap_or(value);
        !self.token.is_empty() && key == self.token
    }

    fn should_fail(&self, method: &str, path: &str) -> bool {
        let mut rules = self.fail_on.lock().unwrap_or_else(|e| e.into_inner());
        for rule in rules.iter_mut() {
            if rule.matches(method, path) {
                match &mut rule.remaining {
                    None => return true,
                    Some(0) => {}
                    Some(n) => {
                        *n -= 1;
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Answers one request.
    pub fn handle(&self, req: &Request) -> Response {
        if !self.authorised(req.header_value("authorization")) {
            return Response::message(401, "Unauthenticated.");
        }
        if self.should_fail(&req.method, &req.path) {
            return Response::message(
                500,
                "Server Error (injected by flowpack-sandbox --fail-on).",
            );
        }
        if req.body.len() > BODY_LIMIT {
            return Response::message(
                413,
                &format!("The request body is larger than the limit of {BODY_LIMIT} bytes (8 MB)."),
            );
        }
        match self.route(req) {
            Ok(r) => r,
            Err(e) => store_error(e),
        }
    }

    fn body(req: &Request) -> Result<Value, StoreError> {
        const BODY_EXTRA_VALUES: u64 = 64;
        if req.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Map::new()));
        }
        // Within flowpack's per-document bound, counted before any value is built: a body of
        // tiny numbers would take many times its size once parsed. An import body is the
        // document with a few fields of the request (`as_marketplace`) beside it: 64 values of
        // room, so every document flowpack accepts is accepted here.
        let document = flowpack_core::DocumentBound::default();
        flowpack_core::DocumentBound {
            max_values: document.max_values + BODY_EXTRA_VALUES,
            ..document
        }
        .check(&req.body)
        .map_err(|reason| {
            StoreError::field("body", format!("The request body is refused: {reason}."))
        })?;
        serde_json::from_slice(&req.body).map_err(|e| {
            StoreError::field("body", format!("The request body is not valid JSON: {e}."))
        })
    }

    fn id(kind: &str, raw: &str) -> Result<u64, StoreError> {
        raw.parse::<u64>().map_err(|_| {
            let shown: String = raw.chars().take(64).collect();
            StoreError::NotFound {
                message: format!("{kind} {shown} not found."),
            }
        })
    }

    /// Routes `/api/v1/…` by resource: the flow collection (list, create, export, import), one
    /// flow, runs, callbacks, webhooks, flow actions (duplicate, layout, metrics) and versions.
    /// Ids are parsed (a bad one is 404) before the method is checked (405).
    fn route(&self, req: &Request) -> Outcome {
        let Some(rest) = req.path.strip_prefix("/api/v1/") else {
            return Ok(Response::message(404, "Not found."));
        };
        let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        let m = req.method.to_ascii_uppercase();
        let m = m.as_str();
        match segs.as_slice() {
            ["flows"] => self.flows(req, m),
            ["flows", "export"] => self.export(req, m),
            ["flows", "import"] => self.import(req, m),
            ["flows", flow] => self.flow(req, m, Self::id("Flow", flow)?),
            ["flows", flow, kind @ ("manual" | "start"), version] => {
                let id = Self::id("Flow", flow)?;
                let v = Self::id("Version", version)?;
                self.run(req, m, id, v, kind)
            }
            ["flows", flow, "callbacks"] => self.callbacks(req, m, Self::id("Flow", flow)?),
            ["flows", flow, "callbacks", callback] => {
                let id = Self::id("Flow", flow)?;
                self.callback(req, m, id, Self::id("Callback", callback)?)
            }
            ["flows", flow, "webhooks"] => self.webhooks(req, m, Self::id("Flow", flow)?),
            ["flows", flow, "webhooks", webhook] => {
                let id = Self::id("Flow", flow)?;
                self.webhook(req, m, id, Self::id("Webhook", webhook)?)
            }
            ["flows", flow, "duplicate"] => self.duplicate(req, m, Self::id("Flow", flow)?),
            ["flows", flow, "layout-direction"] => {
                self.layout_direction(req, m, Self::id("Flow", flow)?)
            }
            ["flows", flow, "version-metrics"] => {
                self.version_metrics(req, m, Self::id("Flow", flow)?)
            }
            ["flows", flow, "versions"] => self.versions(req, m, Self::id("Flow", flow)?),
            ["flows", flow, "versions", version] => {
                let id = Self::id("Flow", flow)?;
                self.version(req, m, id, Self::id("Version", version)?)
            }
            ["flows", flow, "versions", version, "copy"] => {
                let id = Self::id("Flow", flow)?;
                let v = Self::id("Version", version)?;
                if m != "POST" {
                    return not_allowed();
                }
                Ok(Response::data(
                    self.store.new_version(id, Some(v))?.to_json(),
                ))
            }
            _ => Ok(Response::message(404, "Not found.")),
        }
    }

    /// `/flows`: list (GET), create (POST).
    fn flows(&self, req: &Request, m: &str) -> Outcome {
        match m {
            "GET" => self.list_flows(req),
            "POST" => {
                let changes = FlowChanges::from_body(&Self::body(req)?)?;
                let flow = self.store.create(&changes)?;
                self.flow_response(&flow, &["versions".to_string()])
            }
            _ => not_allowed(),
        }
    }

    /// `/flows/export` (POST): the export document of `flow_id`.
    fn export(&self, req: &Request, m: &str) -> Outcome {
        if m != "POST" {
            return not_allowed();
        }
        let body = Self::body(req)?;
        let root = request::object(&body)?;
        let id = match root.get("flow_id") {
            None | Some(Value::Null) => {
                return Err(StoreError::field(
                    "flow_id",
                    "The flow id field is required.",
                ));
            }
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| {
                    StoreError::field("flow_id", "The flow id field must be an integer.")
                })?,
        };
        Ok(Response::json(200, self.store.export(id)?))
    }

    /// `/flows/import` (POST), honouring an `Idempotency-Key`.
    fn import(&self, req: &Request, m: &str) -> Outcome {
        if m != "POST" {
            return not_allowed();
        }
        let body = Self::body(req)?;
        let key = req
            .header_value("idempotency-key")
            .filter(|k| !k.is_empty());
        Ok(Response::data(self.store.import_owned(body, key)?))
    }

    /// `/flows/{id}`: read (GET, with `include` and `fields`), update (PUT), delete.
    fn flow(&self, req: &Request, m: &str, id: u64) -> Outcome {
        let s = &self.store;
        match m {
            "GET" => {
                let q = request::parse_flow_query(&parse_pairs(&req.query)?)?;
                let rec = s.flow_record(id)?;
                let mut r = self.flow_response(&rec, &q.include)?;
                if let (Some(fields), Some(Value::Object(root))) = (&q.fields, r.body.as_mut())
                    && let Some(Value::Object(data)) = root.get_mut("data")
                {
                    data.retain(|k, _| fields.iter().any(|f| f == k));
                }
                Ok(r)
            }
            "PUT" => {
                let changes = FlowChanges::from_body(&Self::body(req)?)?;
                let rec = s.update_record(id, &changes)?;
                Ok(Response::data(rec.to_json()))
            }
            "DELETE" => {
                s.delete(id)?;
                Ok(Response::message(200, &format!("Flow {id} deleted.")))
            }
            _ => not_allowed(),
        }
    }

    /// `/flows/{id}/{manual|start}/{version}` (POST): records a run.
    fn run(&self, req: &Request, m: &str, id: u64, v: u64, kind: &str) -> Outcome {
        if m != "POST" {
            return not_allowed();
        }
        let s = &self.store;
        s.flow_record(id)?;
        s.version_record(id, v)?;
        let run = RunRequest::from_body(&Self::body(req)?, id, v)?;
        Ok(Response::data(s.record_run(id, v, kind, &run)?.to_json()))
    }

    /// `/flows/{id}/callbacks`: list (GET), create (POST).
    fn callbacks(&self, req: &Request, m: &str, id: u64) -> Outcome {
        let s = &self.store;
        match m {
            "GET" => Ok(Response::data(s.callbacks(id)?)),
            "POST" => {
                s.flow_record(id)?;
                let c = request::callback_from_body(&Self::body(req)?)?;
                Ok(Response::data(s.create_callback(id, &c)?))
            }
            _ => not_allowed(),
        }
    }

    /// `/flows/{id}/callbacks/{callback}`: update (PUT), delete.
    fn callback(&self, req: &Request, m: &str, id: u64, cb: u64) -> Outcome {
        let s = &self.store;
        match m {
            "PUT" => {
                s.flow_record(id)?;
                let c = request::callback_from_body(&Self::body(req)?)?;
                Ok(Response::data(s.update_callback(id, cb, &c)?))
            }
            "DELETE" => {
                s.delete_callback(id, cb)?;
                Ok(Response::message(200, &format!("Callback {cb} deleted.")))
            }
            _ => not_allowed(),
        }
    }

    /// `/flows/{id}/webhooks`: list (GET), create (POST).
    fn webhooks(&self, req: &Request, m: &str, id: u64) -> Outcome {
        let s = &self.store;
        match m {
            "GET" => Ok(Response::data(s.webhooks(id)?)),
            "POST" => {
                s.flow_record(id)?;
                let c = request::webhook_from_body(&Self::body(req)?, false)?;
                Ok(Response::data(s.create_webhook(id, &c)?))
            }
            _ => not_allowed(),
        }
    }

    /// `/flows/{id}/webhooks/{webhook}`: update (PUT), delete.
    fn webhook(&self, req: &Request, m: &str, id: u64, wh: u64) -> Outcome {
        let s = &self.store;
        match m {
            "PUT" => {
                s.flow_record(id)?;
                let c = request::webhook_from_body(&Self::body(req)?, true)?;
                Ok(Response::data(s.update_webhook(id, wh, &c)?))
            }
            "DELETE" => {
                s.delete_webhook(id, wh)?;
                Ok(Response::message(200, &format!("Webhook {wh} deleted.")))
            }
            _ => not_allowed(),
        }
    }

    /// `/flows/{id}/duplicate` (POST): a new flow from version `flow_version_id`.
    fn duplicate(&self, req: &Request, m: &str, id: u64) -> Outcome {
        if m != "POST" {
            return not_allowed();
        }
        self.store.flow_record(id)?;
        let body = Self::body(req)?;
        let root = request::object(&body)?;
        let version = match root.get("flow_version_id") {
            None | Some(Value::Null) => {
                return Err(StoreError::field(
                    "flow_version_id",
                    "The flow version id field is required.",
                ));
            }
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| {
                    StoreError::field(
                        "flow_version_id",
                        "The flow version id field must be an id.",
                    )
                })?,
        };
        let rec = self.store.duplicate(id, version)?;
        self.flow_response(&rec, &["versions".to_string()])
    }

    /// `/flows/{id}/layout-direction` (PATCH).
    fn layout_direction(&self, req: &Request, m: &str, id: u64) -> Outcome {
        if m != "PATCH" {
            return not_allowed();
        }
        self.store.flow_record(id)?;
        let body = Self::body(req)?;
        let root = request::object(&body)?;
        match root.get("layout_direction") {
            Some(Value::String(d)) => {
                self.store.set_layout_direction(id, d)?;
                Ok(Response::no_content())
            }
            None | Some(Value::Null) => Err(StoreError::field(
                "layout_direction",
                "The layout direction field is required.",
            )),
            Some(_) => Err(StoreError::field(
                "layout_direction",
                "The layout direction field must be a string.",
            )),
        }
    }

    /// `/flows/{id}/version-metrics` (GET).
    fn version_metrics(&self, req: &Request, m: &str, id: u64) -> Outcome {
        if m != "GET" {
            return not_allowed();
        }
        self.store.flow_record(id)?;
        let q = request::parse_metrics_query(&parse_pairs(&req.query)?)?;
        Ok(Response::data(self.store.version_metrics(id, &q)?))
    }

    /// `/flows/{id}/versions`: a page of versions (GET), a new empty version (POST).
    fn versions(&self, req: &Request, m: &str, id: u64) -> Outcome {
        match m {
            "GET" => {
                let pairs = parse_pairs(&req.query)?;
                let q = request::parse_version_query(&pairs)?;
                let (records, meta) = self.store.version_page(id, &q)?;
                let data = records
                    .iter()
                    .map(|v| self.version_json(v, &q).map(Value::Object))
                    .collect::<Result<Vec<_>, _>>()?;
                let base = format!("/api/v1/flows/{id}/versions");
                Ok(Response::json(
                    200,
                    json!({"data": data, "meta": meta, "links": links(req, &base, &pairs, &meta)}),
                ))
            }
            "POST" => {
                let rec = self.store.new_version(id, None)?;
                Ok(Response::data(rec.to_json()))
            }
            _ => not_allowed(),
        }
    }

    /// `/flows/{id}/versions/{version}`: read (GET), deploy or undeploy (PUT `deployed_at`),
    /// delete.
    fn version(&self, req: &Request, m: &str, id: u64, v: u64) -> Outcome {
        let s = &self.store;
        match m {
            "GET" => {
                let q = request::parse_version_query(&parse_pairs(&req.query)?)?;
                let rec = s.version_record(id, v)?;
                Ok(Response::data(self.version_json(&rec, &q)?))
            }
            "PUT" => {
                s.version_record(id, v)?;
                let body = Self::body(req)?;
                match request::object(&body)?.get("deployed_at") {
                    None => {}
                    Some(Value::Null) => {
                        s.deploy(id, v, None)?;
                    }
                    Some(Value::String(at)) => {
                        s.deploy(id, v, Some(at))?;
                    }
                    Some(_) => {
                        return Err(StoreError::field(
                            "deployed_at",
                            "The deployed_at field must be a date-time string or null.",
                        ));
                    }
                }
                Ok(Response::data(s.version_record(id, v)?.to_json()))
            }
            "DELETE" => {
                s.delete_version(id, v)?;
                Ok(Response::message(200, &format!("Version {v} deleted.")))
            }
            _ => not_allowed(),
        }
    }

    fn list_flows(&self, req: &Request) -> Outcome {
        let pairs = parse_pairs(&req.query)?;
        let q = request::parse_flow_query(&pairs)?;
        let (records, meta) = self.store.query_flows(&q)?;
        let mut data = Vec::with_capacity(records.len());
        for rec in &records {
            let mut m = self.flow_json(rec, &q.include)?;
            if let Some(fields) = &q.fields {
                m.retain(|k, _| fields.iter().any(|f| f == k));
            }
            data.push(Value::Object(m));
        }
        Ok(Response::json(
            200,
            json!({"data": data, "meta": meta, "links": links(req, "/api/v1/flows", &pairs, &meta)}),
        ))
    }

    fn flow_response(&self, rec: &FlowRecord, include: &[String]) -> Outcome {
        Ok(Response::data(self.flow_json(rec, include)?))
    }

    /// A flow's JSON with its includes.
    fn flow_json(
        &self,
        rec: &FlowRecord,
        include: &[String],
    ) -> Result<Map<String, Value>, StoreError> {
        let mut m = rec.to_json();
        if include.is_empty() {
            return Ok(m);
        }
        let s = &self.store;
        let id: FlowId = rec.id;
        let versions = s.version_list(id)?;
        let vq = |nested: &[&str]| VersionQuery {
            include: nested.iter().map(|n| n.to_string()).collect(),
            ..VersionQuery::default()
        };
        let one = |v: Option<&VersionRecord>, nested: &[&str]| -> Result<Value, StoreError> {
            match v {
                Some(v) => Ok(Value::Object(self.version_json(v, &vq(nested))?)),
                None => Ok(Value::Null),
            }
        };
        let latest = versions.iter().max_by_key(|v| (v.iteration, v.id));
        let deployed = versions.iter().find(|v| v.status == "Deployed");
        apply_includes(&mut m, include, |rel, nested| match rel {
            "versions" => versions
                .iter()
                .map(|v| self.version_json(v, &vq(nested)).map(Value::Object))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            "latestVersion" => one(latest, nested),
            "deployedVersion" | "latestDeployedVersion" => one(deployed, nested),
            "currentVersion" => one(deployed.or(latest), nested),
            "webhooks" => Ok(serde_json::to_value(s.webhooks(id)?).unwrap_or_default()),
            "callbacks" => Ok(serde_json::to_value(s.callbacks(id)?).unwrap_or_default()),
            "labels" => Ok(rec.labels.iter().map(|i| json!({"id": i})).collect()),
            "notificationGroups" => Ok(rec
                .notification_groups
                .iter()
                .map(|i| json!({"id": i}))
                .collect()),
            _ => Ok(Value::Array(Vec::new())),
        })?;
        // `labels` and `notification_groups` stay lists of ids whatever the includes say
        // (backups read them; the sandbox has no label or group objects).
        m.insert("labels".into(), Value::from(rec.labels.clone()));
        m.insert(
            "notification_groups".into(),
            Value::from(rec.notification_groups.clone()),
        );
        Ok(m)
    }

    /// A version's JSON with its includes.
    fn version_json(
        &self,
        v: &VersionRecord,
        q: &VersionQuery,
    ) -> Result<Map<String, Value>, StoreError> {
        let mut m = v.to_json();
        if q.include.is_empty() {
            return Ok(m);
        }
        let body = self.store.version_body(v.flow_id, v.id)?;
        let runs = self.store.runs(v.flow_id, Some(v.id))?;
        let field = |name: &str| body.get(name).cloned().unwrap_or(Value::Array(Vec::new()));
        apply_includes(&mut m, &q.include, |rel, _| match rel {
            "steps" | "schedules" | "variables" | "filters" => Ok(field(rel)),
            "runs" => Ok(runs.iter().map(|r| r.to_json()).collect()),
            "latestRun" => Ok(runs.last().map(|r| r.to_json()).unwrap_or(Value::Null)),
            _ => Ok(Value::Null),
        })?;
        Ok(m)
    }
}

fn links(req: &Request, base: &str, pairs: &[(String, String)], m: &PageMeta) -> Value {
    let host = req.header_value("host").unwrap_or("localhost");
    let link = |page: u64| {
        let mut out: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| k != "page" && k != "per_page")
            .cloned()
            .collect();
        out.push(("page".into(), page.to_string()));
        out.push(("per_page".into(), m.per_page.to_string()));
        let query = serde_urlencoded::to_string(&out).unwrap_or_default();
        format!("http://{host}{base}?{query}")
    };
    json!({
        "first": link(1),
        "last": link(m.last_page),
        "prev": if m.current_page > 1 { Value::from(link((m.current_page - 1).min(m.last_page))) } else { Value::Null },
        "next": if m.current_page < m.last_page { Value::from(link(m.current_page + 1)) } else { Value::Null },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_rules_parse_and_count_down() {
        let rule = FailOn::parse("put /flows/*/versions/*:2").unwrap();
        assert_eq!(rule.method, "PUT");
        assert_eq!(rule.glob, "/api/v1/flows/*/versions/*");
        assert_eq!(rule.remaining, Some(2));
        assert!(rule.matches("PUT", "/api/v1/flows/3/versions/9"));
        assert!(!rule.matches("GET", "/api/v1/flows/3/versions/9"));
        assert!(FailOn::parse("GET").is_err());
        assert!(FailOn::parse("GET flows").is_err());
        let store = Arc::new(Store::open_in_memory(Default::default()).unwrap());
        let d = Dispatcher::new(store, "k").with_fail_on(vec![rule]);
        let req = Request::new("PUT", "/api/v1/flows/1/versions/1").header("Authorization", "k");
        assert_eq!(d.handle(&req).status, 500);
        assert_eq!(d.handle(&req).status, 500);
        assert_eq!(d.handle(&req).status, 404, "the third request is served");
        let anon = Request::new("PUT", "/api/v1/flows/1/versions/1");
        assert_eq!(d.handle(&anon).status, 401, "authentication comes first");
    }

    #[test]
    fn an_import_past_the_value_bound_is_refused_before_it_is_parsed() {
        let store = Arc::new(Store::open_in_memory(Default::default()).unwrap());
        let d = Dispatcher::new(store, "k");
        // 7.8 MB of one-digit numbers: about 3.9 million values (hundreds of MiB once parsed).
        let mut body =
            br#"{"metadata":{},"flow":{"name":"x","versions":[{"iteration":1}]},"n":["#.to_vec();
        while body.len() < 7_800_000 {
            body.extend_from_slice(b"1,");
        }
        body.extend_from_slice(b"1]}");
        assert!(body.len() < BODY_LIMIT);
        let mut req = Request::new("POST", "/api/v1/flows/import").header("Authorization", "k");
        req.body = body;
        let r = d.handle(&req);
        assert_eq!(r.status, 422, "{r:?}");
        assert_eq!(
            r.body.unwrap()["errors"]["body"][0],
            "The request body is refused: more than the per-document bound of 1000064 JSON values."
        );
        // A flow sent as a JSON-encoded string is held to the bound as well.
        let flow = format!(
            r#"{{"name":"x","versions":[{{"iteration":1}}],"n":[{}1]}}"#,
            "1,".repeat(1_000_001)
        );
        let req = Request::new("POST", "/api/v1/flows/import")
            .header("Authorization", "k")
            .json(&json!({"metadata": {}, "flow": flow}));
        let r = d.handle(&req);
        assert_eq!(r.status, 422, "{r:?}");
        assert_eq!(
            r.body.unwrap()["errors"]["flow"][0],
            "The flow field is refused: more than the per-document bound of 1000000 JSON values."
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"/a/*/c", b"/a/b/x/c"));
        assert!(glob_match(b"/a/?", b"/a/b"));
        assert!(!glob_match(b"/a/?", b"/a/bc"));
        assert!(glob_match(b"*", b""));
    }
}
