//! Requests read from query strings and JSON bodies, checked field by field: every refusal is a
//! 422 naming the field (`flow.priority`, `sort`, `hmac_secret_key`…), never a 5xx.

use flowpack_client::{FlowId, ListQuery, VersionId};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{FieldErrors, MAX_PER_PAGE, StoreError, push};

/// The most buckets one version-metrics answer holds.
pub const MAX_BUCKETS: u64 = 1000;
/// The longest opaque value (status, format, algorithm, layout direction).
pub const MAX_OPAQUE: usize = 64;
/// The longest HMAC secret key.
pub const MAX_SECRET: usize = 128;
/// The longest flow name.
pub const MAX_NAME: usize = 255;
/// The longest webhook body.
pub const MAX_WEBHOOK_BODY: usize = 65_535;
/// The most distinct terms a `sort` or `include` may hold.
pub const MAX_TERMS: usize = 100;

/// Relations a flow may include (the reference's lists); `_count`/`Exists` suffixes and nested
/// paths under them are accepted too.
const FLOW_RELATIONS: &[&str] = &[
    "latestVersion",
    "deployedVersion",
    "currentVersion",
    "latestDeployedVersion",
    "versions",
    "labels",
    "webhooks",
    "callbacks",
    "notificationGroups",
    "messageBrokers",
    "messageBrokerQueues",
    "deployments",
];

/// Relations a version may include.
const VERSION_RELATIONS: &[&str] = &[
    "deployedByUser",
    "steps",
    "runs",
    "latestRun",
    "schedules",
    "filters",
    "variables",
];

/// The query of `GET /flows` (and the includes and fields of `GET /flows/{flow}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowQuery {
    /// Page number, from 1 (0 means 1).
    pub page: u64,
    /// Items per page, 1 to 100 (0 means the default, 15).
    pub per_page: u64,
    /// `filter[name]`: a case-insensitive substring.
    pub name: Option<String>,
    /// `filter[enabled]`.
    pub enabled: Option<bool>,
    /// `filter[deployed]`: whether a version is deployed.
    pub deployed: Option<bool>,
    /// `filter[id]`: comma-separated flow ids.
    pub ids: Option<Vec<u64>>,
    /// `filter[versions.id]` / `filter[versions]`: flows holding one of these version ids.
    pub version_ids: Option<Vec<u64>>,
    /// `filter[labelled]`: flows carrying one of these label ids.
    pub labelled: Option<Vec<u64>>,
    /// Set by `filter[marketplace_app_id]`, `filter[blueprint_id]`,
    /// `filter[blueprint_version_number]`: sandbox flows come from no marketplace app or
    /// blueprint, so such a filter matches nothing.
    pub match_nothing: bool,
    /// `sort`, e.g. `name` or `-id`.
    pub sort: Option<String>,
    /// `include`: the relations asked for, checked against the reference's lists.
    pub include: Vec<String>,
    /// `fields[flows]`: the only fields to answer, if given.
    pub fields: Option<Vec<String>>,
}

impl From<&ListQuery> for FlowQuery {
    fn from(q: &ListQuery) -> FlowQuery {
        FlowQuery {
            page: q.page,
            per_page: q.per_page,
            name: q.name.clone(),
            enabled: q.enabled,
            sort: q.sort.clone(),
            include: q
                .include
                .as_deref()
                .map(|s| split_terms(s).into_iter().map(str::to_owned).collect())
                .unwrap_or_default(),
            ..FlowQuery::default()
        }
    }
}

impl FlowQuery {
    /// Whether `include` asks for `name`.
    pub fn includes(&self, name: &str) -> bool {
        self.include.iter().any(|i| i == name)
    }
}

fn split_terms(s: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn parse_bool_text(s: &str) -> Option<bool> {
    match s {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn parse_id_list(s: &str) -> Option<Vec<u64>> {
    let ids: Result<Vec<u64>, _> = split_terms(s).into_iter().map(str::parse).collect();
    ids.ok().filter(|v| !v.is_empty())
}

fn check_includes(value: &str, relations: &[&str], errors: &mut FieldErrors) -> Vec<String> {
    let terms = split_terms(value);
    if terms.len() > MAX_TERMS {
        push(
            errors,
            "include",
            format!(
                "The include parameter lists {} relations; at most {MAX_TERMS} are allowed.",
                terms.len()
            ),
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    for t in terms {
        let root = t.split('.').next().unwrap_or(t);
        let root = root
            .strip_suffix("_count")
            .or_else(|| root.strip_suffix("Exists"))
            .unwrap_or(root);
        if relations.contains(&root) {
            out.push(t.to_string());
        } else {
            let shown: String = t.chars().take(64).collect();
            push(
                errors,
                "include",
                format!(
                    "Requested include(s) `{shown}` are not allowed. Allowed include(s) are `{}`.",
                    relations.join(", ")
                ),
            );
            break;
        }
    }
    out
}

fn page_params(
    k: &str,
    v: &str,
    page: &mut u64,
    per_page: &mut u64,
    errors: &mut FieldErrors,
) -> bool {
    match k {
        "page" => match v.parse::<u64>() {
            Ok(0) | Err(_) => push(errors, "page", "The page must be an integer of at least 1."),
            Ok(n) => *page = n,
        },
        "per_page" => match v.parse::<u64>() {
            Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => *per_page = n,
            _ => push(
                errors,
                "per_page",
                format!("The per page must be an integer between 1 and {MAX_PER_PAGE}."),
            ),
        },
        _ => return false,
    }
    true
}

/// Parses the query pairs of `GET /flows` and `GET /flows/{flow}`: `page`, `per_page`, every
/// `filter[…]` of the reference, `sort`, `include`, `fields[flows]`; others are ignored. Bad
/// values are 422 errors naming the parameter.
pub fn parse_flow_query(pairs: &[(String, String)]) -> Result<FlowQuery, StoreError> {
    let mut q = FlowQuery::default();
    let mut errors = FieldErrors::new();
    for (k, v) in pairs {
        if page_params(k, v, &mut q.page, &mut q.per_page, &mut errors) {
            continue;
        }
        match k.as_str() {
            "filter[name]" => q.name = Some(v.clone()),
            "filter[enabled]" | "filter[deployed]" => match parse_bool_text(v) {
                Some(b) if k == "filter[enabled]" => q.enabled = Some(b),
                Some(b) => q.deployed = Some(b),
                None => push(
                    &mut errors,
                    k,
                    format!("The {k} must be one of true, false, 1, 0."),
                ),
            },
            "filter[id]" | "filter[versions.id]" | "filter[versions]" | "filter[labelled]" => {
                match parse_id_list(v) {
                    Some(ids) => match k.as_str() {
                        "filter[id]" => q.ids = Some(ids),
                        "filter[labelled]" => q.labelled = Some(ids),
                        _ => q.version_ids = Some(ids),
                    },
                    None => push(
                        &mut errors,
                        k,
                        format!("The {k} must be a comma-separated list of ids."),
                    ),
                }
            }
            "filter[marketplace_app_id]"
            | "filter[blueprint_id]"
            | "filter[blueprint_version_number]"
                if !v.is_empty() =>
            {
                q.match_nothing = true;
            }
            "sort" => {
                order_by(Some(v)).map_err(|e| merge(&mut errors, e)).ok();
                q.sort = Some(v.clone());
            }
            "include" => q.include = check_includes(v, FLOW_RELATIONS, &mut errors),
            "fields[flows]" | "fields" => {
                q.fields = Some(split_terms(v).into_iter().map(str::to_owned).collect())
            }
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(StoreError::validation(errors))
    }
}

fn merge(errors: &mut FieldErrors, e: StoreError) {
    if let StoreError::Validation { errors: more, .. } = e {
        for (k, v) in more {
            errors.entry(k).or_default().extend(v);
        }
    }
}

/// Parses the query pairs of `GET /flows` into the client's [`ListQuery`] (`page`, `per_page`,
/// `filter[name]`, `filter[enabled]`, `sort`, `include`; others are ignored).
pub fn parse_list_query(pairs: &[(String, String)]) -> Result<ListQuery, StoreError> {
    let q = parse_flow_query(pairs)?;
    Ok(ListQuery {
        page: q.page,
        per_page: q.per_page,
        name: q.name,
        enabled: q.enabled,
        sort: q.sort,
        include: (!q.include.is_empty()).then(|| q.include.join(",")),
    })
}

/// Whether an `include` list asks for `versions`.
pub fn includes_versions(include: Option<&str>) -> bool {
    include.is_some_and(|s| s.split(',').any(|i| i.trim() == "versions"))
}

/// The `ORDER BY` clause of a `sort` parameter (whitelisted columns only; a repeated key counts
/// once, so a sort of any length costs at most four terms).
pub(crate) fn order_by(sort: Option<&str>) -> Result<String, StoreError> {
    let mut parts: Vec<String> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for key in split_terms(sort.unwrap_or("")) {
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
                let shown: String = name.chars().take(64).collect();
                return Err(StoreError::field(
                    "sort",
                    format!(
                        "Requested sort(s) `{shown}` is not allowed. Allowed sort(s) are `name, enabled_at, created_at, id`."
                    ),
                ));
            }
        };
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        parts.push(format!("{column} {}", if desc { "DESC" } else { "ASC" }));
    }
    parts.push("id ASC".to_string());
    Ok(parts.join(", "))
}

/// The query of `GET /flows/{flow}/versions` and `GET /flows/{flow}/versions/{version}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionQuery {
    /// Page number (0 means 1).
    pub page: u64,
    /// Items per page (0 means 15).
    pub per_page: u64,
    /// `sort=created_at` (`Some(false)`) or `-created_at` (`Some(true)`); by iteration when
    /// `None`.
    pub created_desc: Option<bool>,
    /// The relations asked for.
    pub include: Vec<String>,
}

impl VersionQuery {
    /// Whether `include` asks for `name`.
    pub fn includes(&self, name: &str) -> bool {
        self.include.iter().any(|i| i == name)
    }
}

/// Parses the query pairs of the versions endpoints.
pub fn parse_version_query(pairs: &[(String, String)]) -> Result<VersionQuery, StoreError> {
    let mut q = VersionQuery::default();
    let mut errors = FieldErrors::new();
    for (k, v) in pairs {
        if page_params(k, v, &mut q.page, &mut q.per_page, &mut errors) {
            continue;
        }
        match k.as_str() {
            "sort" => {
                for term in split_terms(v) {
                    match term {
                        "created_at" => q.created_desc = Some(false),
                        "-created_at" => q.created_desc = Some(true),
                        other => {
                            let shown: String = other.chars().take(64).collect();
                            push(
                                &mut errors,
                                "sort",
                                format!(
                                    "Requested sort(s) `{shown}` is not allowed. Allowed sort(s) are `created_at`."
                                ),
                            );
                            break;
                        }
                    }
                }
            }
            "include" => q.include = check_includes(v, VERSION_RELATIONS, &mut errors),
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(StoreError::validation(errors))
    }
}

/// Changes to a flow (`PUT /flows/{flow}`, and the fields of `POST /flows`); `None` leaves a
/// field alone.
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
    /// The production flag.
    pub prod_flag: Option<bool>,
    /// Use the queued time.
    pub use_queued_time: Option<bool>,
    /// Remove payloads of failed runs.
    pub remove_failed_payloads: Option<bool>,
    /// Label ids (`labels: [{id}]`), replacing the current ones.
    pub labels: Option<Vec<u64>>,
    /// Notification group ids, replacing the current ones.
    pub notification_groups: Option<Vec<u64>>,
}

impl From<&flowpack_client::FlowUpdate> for FlowChanges {
    fn from(u: &flowpack_client::FlowUpdate) -> FlowChanges {
        FlowChanges {
            enabled_at: u.enabled_at.clone(),
            priority: u.priority,
            ..FlowChanges::default()
        }
    }
}

impl From<&flowpack_client::FlowSettingsUpdate> for FlowChanges {
    fn from(u: &flowpack_client::FlowSettingsUpdate) -> FlowChanges {
        FlowChanges {
            enabled_at: u.enabled_at.clone(),
            priority: u.priority,
            name: u.name.clone(),
            description: u.description.clone(),
            prod_flag: u.prod_flag,
            use_queued_time: u.use_queued_time,
            remove_failed_payloads: u.remove_failed_payloads,
            labels: u.labels.clone(),
            notification_groups: u.notification_groups.clone(),
        }
    }
}

fn read_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => parse_bool_text(s),
        _ => None,
    }
}

fn read_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Object(o) => o.get("id").and_then(read_id),
        _ => None,
    }
}

fn read_ids(v: &Value) -> Option<Vec<u64>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(read_id).collect(),
        Value::String(s) if s.trim().is_empty() => Some(Vec::new()),
        Value::String(s) => parse_id_list(s),
        _ => None,
    }
}

/// The body as an object, or a 422 naming `body`.
pub fn object(body: &Value) -> Result<&Map<String, Value>, StoreError> {
    body.as_object()
        .ok_or_else(|| StoreError::field("body", "The request body must be a JSON object."))
}

impl FlowChanges {
    /// Reads a `PUT /flows/{flow}` (or `POST /flows`) body: `{flow: {name, description,
    /// enabled_at, priority, prod_flag, use_queued_time, remove_failed_payloads}, labels: [{id}],
    /// notification_groups: [ids]}`; wrong types are 422 errors naming the field.
    pub fn from_body(body: &Value) -> Result<FlowChanges, StoreError> {
        let root = object(body)?;
        let mut errors = FieldErrors::new();
        let mut changes = FlowChanges::default();
        match root.get("flow") {
            None if root.contains_key("labels") || root.contains_key("notification_groups") => {}
            None | Some(Value::Null) => {
                return Err(StoreError::field("flow", "The flow field is required."));
            }
            Some(Value::Object(flow)) => read_flow_fields(flow, &mut changes, &mut errors),
            Some(_) => {
                return Err(StoreError::field(
                    "flow",
                    "The flow field must be an object.",
                ));
            }
        }
        for (key, slot) in [
            ("labels", &mut changes.labels),
            ("notification_groups", &mut changes.notification_groups),
        ] {
            if let Some(v) = root.get(key) {
                match read_ids(v) {
                    Some(ids) => *slot = Some(ids),
                    None => push(
                        &mut errors,
                        key,
                        format!("The {key} field must be a list of ids (or of {{id}} objects)."),
                    ),
                }
            }
        }
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(StoreError::validation(errors))
        }
    }
}

fn read_flow_fields(
    flow: &Map<String, Value>,
    changes: &mut FlowChanges,
    errors: &mut FieldErrors,
) {
    if let Some(v) = flow.get("enabled_at") {
        match v {
            Value::Null => changes.enabled_at = Some(None),
            Value::String(s) => changes.enabled_at = Some(Some(s.clone())),
            _ => push(
                errors,
                "flow.enabled_at",
                "The flow.enabled_at field must be a date-time string or null.",
            ),
        }
    }
    if let Some(v) = flow.get("priority") {
        match v.as_i64() {
            Some(p) => changes.priority = Some(p),
            None => push(
                errors,
                "flow.priority",
                "The flow.priority field must be an integer between 1 and 5.",
            ),
        }
    }
    if let Some(v) = flow.get("name") {
        match v {
            Value::String(s) => changes.name = Some(s.clone()),
            _ => push(errors, "flow.name", "The flow.name field must be a string."),
        }
    }
    if let Some(v) = flow.get("description") {
        match v {
            Value::Null => changes.description = Some(None),
            Value::String(s) => changes.description = Some(Some(s.clone())),
            _ => push(
                errors,
                "flow.description",
                "The flow.description field must be a string or null.",
            ),
        }
    }
    for (key, slot) in [
        ("prod_flag", &mut changes.prod_flag),
        ("use_queued_time", &mut changes.use_queued_time),
        (
            "remove_failed_payloads",
            &mut changes.remove_failed_payloads,
        ),
    ] {
        if let Some(v) = flow.get(key) {
            match read_bool(v) {
                Some(b) => *slot = Some(b),
                None => push(
                    errors,
                    &format!("flow.{key}"),
                    format!("The flow.{key} field must be true or false."),
                ),
            }
        }
    }
}

/// Checks a flow name: not empty, no control characters (NUL included), at most 255
/// characters.
pub(crate) fn check_name(field: &str, name: &str, errors: &mut FieldErrors) {
    if name.chars().any(char::is_control) {
        push(
            errors,
            field,
            format!("The {field} field must not contain control characters."),
        );
    } else if name.trim().is_empty() {
        push(
            errors,
            field,
            format!("The {field} field must not be empty."),
        );
    } else if name.chars().count() > MAX_NAME {
        push(
            errors,
            field,
            format!("The {field} field must not be longer than {MAX_NAME} characters."),
        );
    }
}

/// The checks [`FlowChanges`] get before they are applied: priority range and name.
pub(crate) fn check_changes(changes: &FlowChanges, errors: &mut FieldErrors) {
    if let Some(p) = changes.priority
        && !(1..=5).contains(&p)
    {
        push(
            errors,
            "flow.priority",
            "The flow.priority field must be an integer between 1 and 5.",
        );
    }
    if let Some(name) = &changes.name {
        check_name("flow.name", name, errors);
    }
}

/// Checks an opaque value (status, format, layout direction): 1 to 64 characters, stored
/// verbatim.
pub(crate) fn check_opaque(field: &str, value: &str) -> Result<(), StoreError> {
    let mut errors = FieldErrors::new();
    opaque(field, value, MAX_OPAQUE, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StoreError::validation(errors))
    }
}

fn opaque(field: &str, value: &str, max: usize, errors: &mut FieldErrors) {
    let n = value.chars().count();
    if n == 0 {
        push(
            errors,
            field,
            format!("The {field} field must not be empty."),
        );
    } else if n > max {
        push(
            errors,
            field,
            format!("The {field} field must not be longer than {max} characters."),
        );
    }
}

fn opaque_field(
    root: &Map<String, Value>,
    field: &str,
    nullable: bool,
    max: usize,
    errors: &mut FieldErrors,
) -> Option<Option<String>> {
    match root.get(field)? {
        Value::String(s) => {
            opaque(field, s, max, errors);
            Some(Some(s.clone()))
        }
        Value::Null if nullable => Some(None),
        _ => {
            let what = if nullable {
                "a string or null"
            } else {
                "a string"
            };
            push(errors, field, format!("The {field} field must be {what}."));
            None
        }
    }
}

/// The body of `POST`/`PUT /flows/{flow}/webhooks[/{webhook}]`: the client's own request type
/// (its `Debug` never shows the secret), read from JSON by [`webhook_from_body`] and checked by
/// [`check_webhook`] when given in process.
pub use flowpack_client::WebhookRequest as WebhookChanges;

/// Reads a webhook body; `hmac_*` are read only when `with_hmac` (updates).
pub fn webhook_from_body(body: &Value, with_hmac: bool) -> Result<WebhookChanges, StoreError> {
    let root = object(body)?;
    let mut errors = FieldErrors::new();
    let mut c = WebhookChanges {
        status: opaque_field(root, "status", false, MAX_OPAQUE, &mut errors).flatten(),
        format: opaque_field(root, "format", false, MAX_OPAQUE, &mut errors).flatten(),
        ..WebhookChanges::default()
    };
    c.body = match root.get("body") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_WEBHOOK_BODY => Some(Some(s.clone())),
        Some(Value::String(_)) => {
            push(
                &mut errors,
                "body",
                format!("The body field must not be longer than {MAX_WEBHOOK_BODY} characters."),
            );
            None
        }
        Some(_) => {
            push(
                &mut errors,
                "body",
                "The body field must be a string or null.",
            );
            None
        }
    };
    if with_hmac {
        c.hmac_algorithm = opaque_field(root, "hmac_algorithm", true, MAX_OPAQUE, &mut errors);
        c.hmac_secret_key = opaque_field(root, "hmac_secret_key", true, MAX_SECRET, &mut errors);
    }
    if errors.is_empty() {
        Ok(c)
    } else {
        Err(StoreError::validation(errors))
    }
}

/// The body of `POST`/`PUT /flows/{flow}/callbacks[/{callback}]`: the client's own request
/// type, read from JSON by [`callback_from_body`] and checked by [`check_callback`] when given
/// in process.
pub use flowpack_client::CallbackRequest as CallbackChanges;

/// Reads a callback body.
pub fn callback_from_body(body: &Value) -> Result<CallbackChanges, StoreError> {
    let root = object(body)?;
    let mut errors = FieldErrors::new();
    let c = CallbackChanges {
        status: opaque_field(root, "status", false, MAX_OPAQUE, &mut errors).flatten(),
        format: opaque_field(root, "format", false, MAX_OPAQUE, &mut errors).flatten(),
    };
    if errors.is_empty() {
        Ok(c)
    } else {
        Err(StoreError::validation(errors))
    }
}

/// Checks callback values given in process (the same rules as bodies).
pub fn check_callback(c: &CallbackChanges) -> Result<(), StoreError> {
    let mut errors = FieldErrors::new();
    for (field, v) in [("status", &c.status), ("format", &c.format)] {
        if let Some(v) = v {
            opaque(field, v, MAX_OPAQUE, &mut errors);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StoreError::validation(errors))
    }
}

/// Checks webhook values given in process (the same rules as bodies).
pub fn check_webhook(c: &WebhookChanges) -> Result<(), StoreError> {
    let mut errors = FieldErrors::new();
    for (field, v, max) in [
        ("status", c.status.as_ref(), MAX_OPAQUE),
        ("format", c.format.as_ref(), MAX_OPAQUE),
        (
            "hmac_algorithm",
            c.hmac_algorithm.as_ref().and_then(Option::as_ref),
            MAX_OPAQUE,
        ),
        (
            "hmac_secret_key",
            c.hmac_secret_key.as_ref().and_then(Option::as_ref),
            MAX_SECRET,
        ),
    ] {
        if let Some(v) = v {
            opaque(field, v, max, &mut errors);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StoreError::validation(errors))
    }
}

/// The body of `POST /flows/{flow}/manual/{version}` and `…/start/{version}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunRequest {
    /// The payload, as text (a JSON object or array is kept as its JSON text).
    pub payload: Option<String>,
}

impl RunRequest {
    /// Reads a run body. The path ids decide: a body `flow_id` or `version_id` naming another
    /// flow or version is refused (422); `payload` is required.
    pub fn from_body(
        body: &Value,
        flow: FlowId,
        version: VersionId,
    ) -> Result<RunRequest, StoreError> {
        let root = object(body)?;
        let mut errors = FieldErrors::new();
        for (field, path) in [("flow_id", flow), ("version_id", version)] {
            match root.get(field) {
                None | Some(Value::Null) => {}
                Some(v) => match read_id(v) {
                    Some(id) if id == path => {}
                    Some(id) => push(
                        &mut errors,
                        field,
                        format!("The {field} field ({id}) must match the path ({path})."),
                    ),
                    None => push(
                        &mut errors,
                        field,
                        format!("The {field} field must be an integer."),
                    ),
                },
            }
        }
        let payload = match root.get("payload") {
            None | Some(Value::Null) => {
                push(&mut errors, "payload", "The payload field is required.");
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v.to_string()),
            Some(_) => {
                push(
                    &mut errors,
                    "payload",
                    "The payload field must be a string or JSON.",
                );
                None
            }
        };
        match root.get("flow_variables") {
            None | Some(Value::Null | Value::Object(_) | Value::String(_) | Value::Array(_)) => {}
            Some(_) => push(
                &mut errors,
                "flow_variables",
                "The flow_variables field must be an object or a string.",
            ),
        }
        match root.get("virtual_environment_id") {
            None | Some(Value::Null) => {}
            Some(v) if read_id(v).is_some() => {}
            Some(_) => push(
                &mut errors,
                "virtual_environment_id",
                "The virtual_environment_id field must be an integer.",
            ),
        }
        if errors.is_empty() {
            Ok(RunRequest { payload })
        } else {
            Err(StoreError::validation(errors))
        }
    }
}

/// The unit of a version-metrics interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricsUnit {
    /// Minutes.
    Minute,
    /// Hours.
    Hour,
    /// Days (the default).
    #[default]
    Day,
    /// Weeks.
    Week,
}

impl MetricsUnit {
    /// One bucket's length.
    pub fn step(self) -> time::Duration {
        match self {
            MetricsUnit::Minute => time::Duration::MINUTE,
            MetricsUnit::Hour => time::Duration::HOUR,
            MetricsUnit::Day => time::Duration::DAY,
            MetricsUnit::Week => time::Duration::WEEK,
        }
    }

    /// Its name in queries and answers.
    pub fn name(self) -> &'static str {
        match self {
            MetricsUnit::Minute => "minute",
            MetricsUnit::Hour => "hour",
            MetricsUnit::Day => "day",
            MetricsUnit::Week => "week",
        }
    }
}

/// The query of `GET /flows/{flow}/version-metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsQuery {
    /// `interval_start` (default: 7 days before the end).
    pub start: Option<OffsetDateTime>,
    /// `interval_end` (default: now).
    pub end: Option<OffsetDateTime>,
    /// `interval_unit`: `minute`, `hour`, `day` (default) or `week`.
    pub unit: MetricsUnit,
    /// `key` / `keys`: count only runs of these version ids.
    pub versions: Option<Vec<VersionId>>,
}

/// Parses the query pairs of `GET /flows/{flow}/version-metrics` (`model_type` and
/// `managed_companies` are accepted and ignored).
pub fn parse_metrics_query(pairs: &[(String, String)]) -> Result<MetricsQuery, StoreError> {
    let mut q = MetricsQuery::default();
    let mut errors = FieldErrors::new();
    for (k, v) in pairs {
        match k.as_str() {
            "interval_start" | "interval_end" => match OffsetDateTime::parse(v, &Rfc3339) {
                Ok(t) if k == "interval_start" => q.start = Some(t),
                Ok(t) => q.end = Some(t),
                Err(_) => push(
                    &mut errors,
                    k,
                    format!("The {k} field must be an RFC 3339 date-time."),
                ),
            },
            "interval_unit" => match v.as_str() {
                "minute" => q.unit = MetricsUnit::Minute,
                "hour" => q.unit = MetricsUnit::Hour,
                "day" => q.unit = MetricsUnit::Day,
                "week" => q.unit = MetricsUnit::Week,
                _ => push(
                    &mut errors,
                    "interval_unit",
                    "The interval_unit field must be one of minute, hour, day, week.",
                ),
            },
            "key" | "keys" | "keys[]" => match parse_id_list(v) {
                Some(ids) => q.versions.get_or_insert_with(Vec::new).extend(ids),
                None => push(
                    &mut errors,
                    k,
                    format!("The {k} field must be version ids."),
                ),
            },
            _ => {}
        }
    }
    if let (Some(s), Some(e)) = (q.start, q.end)
        && e <= s
    {
        push(
            &mut errors,
            "interval_end",
            "The interval_end field must be after interval_start.",
        );
    }
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(StoreError::validation(errors))
    }
}
