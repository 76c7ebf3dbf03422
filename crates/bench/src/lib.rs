//! The benchmark corpus generator (see `BENCHMARKS.md`): realistic version-2 export documents,
//! deterministic for a seed.
//!
//! Each document is one flow of 5–60 steps (a trigger first, then connectors with endpoints
//! naming the document's systems, maps with sizeable mapping configs, scripts naming the
//! document's scripts, filters/branches/routes/try-catches with routes, flow controls, …), with
//! ids, positions and connections consistent with the steps, 1–3 versions with valid statuses,
//! variables (some empty), five-field cron schedules, systems with empty credentials, scripts,
//! dependencies and a computed `metadata.import_summary`. Every document passes
//! `flowpack validate` with no findings.
//!
//! Sizes follow a right-skewed distribution from about 2 KB to 300 KB with a mean of 100 KB, so
//! 2,000 flows weigh about 200 MB; [`GenOptions::target_mb`] scales every size so that the
//! corpus weighs about that many megabytes (10^6 bytes) instead.
//!
//! Document `i` depends only on the seed, `i` and the size scale, not on the other documents, so
//! documents are generated in parallel.
//!
//! ```
//! use flowpack_bench::{GenOptions, generate_document};
//! use flowpack_core::Document;
//! use flowpack_core::validate::{ValidateOptions, validate};
//!
//! let opts = GenOptions { flows: 3, seed: 7, target_mb: None };
//! let value = generate_document(&opts, 0);
//! let doc = Document::from_value(value, "flow 0").unwrap();
//! assert!(validate(&doc, &ValidateOptions::default()).findings.is_empty());
//! ```

pub mod profile;

use std::path::{Path, PathBuf};

use flowpack_core::Document;
use flowpack_core::fsutil::{WriteError, write_bytes_atomic};
use flowpack_core::summary::compute_import_summary;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

/// The mean document size before scaling, in bytes.
pub const MEAN_DOCUMENT_BYTES: f64 = 100_000.0;
/// The smallest target size before scaling, in bytes.
pub const MIN_DOCUMENT_BYTES: f64 = 2_000.0;
/// The largest target size before scaling, in bytes.
pub const MAX_DOCUMENT_BYTES: f64 = 300_000.0;
/// The exponent of the size distribution `min + (max - min) * u^SKEW`, chosen so that the mean
/// is [`MEAN_DOCUMENT_BYTES`].
const SKEW: f64 =
    (MAX_DOCUMENT_BYTES - MIN_DOCUMENT_BYTES) / (MEAN_DOCUMENT_BYTES - MIN_DOCUMENT_BYTES) - 1.0;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// How many documents (flows).
    pub flows: usize,
    /// The seed: the same seed gives the same bytes.
    pub seed: u64,
    /// Scale sizes so the whole corpus weighs about this many megabytes (10^6 bytes); `None`
    /// keeps the natural 2–300 KB sizes (about 0.1 MB per flow on average).
    pub target_mb: Option<f64>,
}

impl GenOptions {
    /// The factor every target size is multiplied by.
    pub fn size_scale(&self) -> f64 {
        match self.target_mb {
            Some(mb) if self.flows > 0 => mb * 1e6 / (self.flows as f64 * MEAN_DOCUMENT_BYTES),
            _ => 1.0,
        }
    }
}

/// A corpus generation that failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// The output directory could not be created.
    #[error("{path}: cannot create the output directory: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A document could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// What [`generate_corpus`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorpusReport {
    /// The files written, in index order.
    pub files: Vec<PathBuf>,
    /// Their total size in bytes.
    pub total_bytes: u64,
    /// The smallest file's size.
    pub min_bytes: u64,
    /// The largest file's size.
    pub max_bytes: u64,
    /// The total number of steps over every version of every flow.
    pub total_steps: u64,
}

/// The file name of document `index`: `flow-<index, 5 digits>.json`, so that names sort in
/// index order.
pub fn file_name(index: usize) -> String {
    format!("flow-{index:05}.json")
}

/// Writes `opts.flows` documents into `out` (created if missing) as compact JSON (as the
/// export endpoint returns them, see [`document_bytes`]), each written atomically, on as many threads as the machine has cores.
pub fn generate_corpus(opts: &GenOptions, out: &Path) -> Result<CorpusReport, GenError> {
    std::fs::create_dir_all(out).map_err(|source| GenError::CreateDir {
        path: out.to_path_buf(),
        source,
    })?;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(opts.flows.max(1));
    type Written = (usize, PathBuf, u64, u64);
    let results: Vec<Result<Vec<Written>, GenError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    let mut done = Vec::new();
                    for index in (w..opts.flows).step_by(workers) {
                        let value = generate_document(opts, index);
                        let steps = count_steps(&value);
                        let bytes = document_bytes(&value);
                        let path = out.join(file_name(index));
                        write_bytes_atomic(&path, &bytes)?;
                        done.push((index, path, bytes.len() as u64, steps));
                    }
                    Ok(done)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a generator thread panicked"))
            .collect()
    });
    let mut all = Vec::with_capacity(opts.flows);
    for r in results {
        all.extend(r?);
    }
    all.sort_by_key(|w| w.0);
    let mut report = CorpusReport {
        min_bytes: all.first().map_or(0, |w| w.2),
        ..CorpusReport::default()
    };
    for (_, path, size, steps) in all {
        report.files.push(path);
        report.total_bytes += size;
        report.min_bytes = report.min_bytes.min(size);
        report.max_bytes = report.max_bytes.max(size);
        report.total_steps += steps;
    }
    Ok(report)
}

fn count_steps(doc: &Value) -> u64 {
    doc.pointer("/flow/versions")
        .and_then(Value::as_array)
        .map_or(0, |vs| {
            vs.iter()
                .filter_map(|v| v.get("steps").and_then(Value::as_array))
                .map(|s| s.len() as u64)
                .sum()
        })
}

/// A document's bytes as the export endpoint returns them: compact JSON, with a trailing
/// newline.
pub fn document_bytes(doc: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(doc).expect("a JSON value serialises");
    out.push(b'\n');
    out
}

/// The random source of document `index`: its own ChaCha stream of the seed.
fn document_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

/// Generates document `index` of the corpus described by `opts`.
pub fn generate_document(opts: &GenOptions, index: usize) -> Value {
    let mut rng = document_rng(opts.seed, index);
    let u: f64 = rng.random();
    let natural = MIN_DOCUMENT_BYTES + (MAX_DOCUMENT_BYTES - MIN_DOCUMENT_BYTES) * u.powf(SKEW);
    let target = (natural * opts.size_scale()) as usize;
    // Bigger flows have more steps: 5 for the smallest, up to 60 for the biggest.
    let share = ((natural - MIN_DOCUMENT_BYTES) / (MAX_DOCUMENT_BYTES - MIN_DOCUMENT_BYTES)).sqrt();
    let steps = (5.0 + 55.0 * share + rng.random_range(-4.0..4.0)).clamp(5.0, 60.0) as usize;
    let mut g = Generator {
        rng,
        index,
        small: natural < 8_000.0,
    };
    g.document(steps, target)
}

const SYSTEMS: &[(&str, &str)] = &[
    ("Shopify", "shopify"),
    ("NetSuite", "netsuite"),
    ("Salesforce", "salesforce"),
    ("HubSpot", "hubspot"),
    ("BigCommerce", "bigcommerce"),
    ("Magento 2", "magento"),
    ("Xero", "xero"),
    ("QuickBooks Online", "quickbooks"),
    ("Dynamics 365 Business Central", "dynamics"),
    ("SAP Business One", "sap"),
    ("Zendesk", "zendesk"),
    ("Slack", "slack"),
    ("WooCommerce", "woocommerce"),
    ("Amazon SP-API", "amazon"),
    ("eBay", "ebay"),
    ("Brightpearl", "brightpearl"),
    ("Peoplevox", "peoplevox"),
    ("Mintsoft", "mintsoft"),
    ("Linnworks", "linnworks"),
    ("Mailchimp", "mailchimp"),
    ("Klaviyo", "klaviyo"),
    ("Stripe", "stripe"),
    ("SFTP drop", "sftp"),
    ("ShipStation", "shipstation"),
];

const OBJECTS: &[&str] = &[
    "orders",
    "customers",
    "products",
    "inventory levels",
    "shipments",
    "invoices",
    "refunds",
    "returns",
    "payments",
    "price lists",
    "stock movements",
    "purchase orders",
    "fulfilments",
    "credit notes",
    "subscriptions",
    "tickets",
];

const FIELDS: &[&str] = &[
    "id",
    "external_id",
    "sku",
    "name",
    "title",
    "email",
    "phone",
    "first_name",
    "last_name",
    "company",
    "address1",
    "address2",
    "city",
    "province_code",
    "zip",
    "country_code",
    "currency",
    "total_price",
    "subtotal_price",
    "total_tax",
    "discount_code",
    "quantity",
    "unit_price",
    "weight",
    "barcode",
    "created_at",
    "updated_at",
    "status",
    "financial_status",
    "fulfillment_status",
    "tracking_number",
    "carrier",
    "warehouse",
    "location_id",
    "note",
    "tags",
    "channel",
    "payment_method",
    "vat_number",
    "customer_group",
];

const CONTAINERS: &[&str] = &[
    "order",
    "customer",
    "line_items.*",
    "shipping_address",
    "billing_address",
    "fulfillments.*",
    "refunds.*.refund_line_items.*",
    "variants.*",
    "payload",
    "record",
    "item",
    "transactions.*",
];

const TRANSFORMS: &[&str] = &[
    "none",
    "string",
    "integer",
    "decimal",
    "uppercase",
    "lowercase",
    "trim",
    "date_format",
    "lookup",
    "concat",
    "default_if_empty",
    "round",
];

const VARIABLES: &[&str] = &[
    "PAGE_SIZE",
    "SUBSIDIARY",
    "DEFAULT_WAREHOUSE",
    "PRICE_LEVEL",
    "SALES_CHANNEL",
    "CURRENCY",
    "LOOKBACK_MINUTES",
    "ALERT_EMAIL",
    "TAX_CODE",
    "SHIPPING_ITEM",
    "LOCATION_ID",
    "ORDER_PREFIX",
    "BATCH_SIZE",
    "STORE_DOMAIN",
];

const CRONS: &[&str] = &[
    "*/15 * * * *",
    "*/5 * * * *",
    "0 * * * *",
    "30 2 * * *",
    "0 6 * * 1-5",
    "0 */4 * * *",
    "15 0 1 * *",
    "45 23 * * 0",
    "0 9,17 * * *",
    "10 */2 * * 1-6",
];

const VERBS_IN: &[&str] = &["Retrieve", "List", "Search", "Get changed", "Export"];
const VERBS_OUT: &[&str] = &["Upsert", "Create", "Update", "Post", "Import"];

/// Which statuses 1, 2 or 3 versions can have (oldest iteration first): at most one `Draft`,
/// at most one `Deployed`.
const STATUS_PLANS: &[&[&str]] = &[
    &["Deployed"],
    &["Draft"],
    &["Deployed", "Draft"],
    &["Inactive", "Deployed"],
    &["Inactive", "Draft"],
    &["Inactive", "Deployed", "Draft"],
    &["Inactive", "Inactive", "Deployed"],
];

struct Generator {
    rng: ChaCha8Rng,
    index: usize,
    small: bool,
}

/// A growable part of a document: where filler bytes go.
enum Sink {
    /// `flow.versions[v].steps[s].config.mapping.fields`.
    Mapping { version: usize, step: usize },
    /// `scripts[i].code`.
    Script { script: usize },
}

struct Context {
    systems: Vec<(String, String)>,
    scripts: Vec<(String, String, i64)>,
    object: &'static str,
    variables: Vec<String>,
}

struct Version {
    steps: Vec<Value>,
    connections: Vec<Value>,
}

impl Generator {
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        *items.choose(&mut self.rng).expect("non-empty list")
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn document(&mut self, steps: usize, target: usize) -> Value {
        let n_systems = if self.small {
            1
        } else {
            self.rng.random_range(1..=4usize)
        };
        let mut systems: Vec<(String, String)> = Vec::new();
        while systems.len() < n_systems {
            let (name, slug) = self.pick(SYSTEMS);
            if !systems.iter().any(|s| s.0 == name) {
                systems.push((name.to_string(), slug.to_string()));
            }
        }
        let object = self.pick(OBJECTS);
        let source = systems[0].0.clone();
        let dest = systems.last().expect("one system").0.clone();
        let flow_name = if systems.len() == 1 {
            format!("{source} {object} sync {:05}", self.index)
        } else {
            format!("{source} > {dest} {object} {:05}", self.index)
        };
        let n_scripts = if self.small {
            0
        } else {
            self.rng.random_range(1..=3usize)
        };
        let languages = ["javascript", "javascript", "php", "python"];
        let scripts: Vec<(String, String, i64)> = (0..n_scripts)
            .map(|i| {
                let lang = self.pick(&languages);
                let name = format!(
                    "{} {object} {}",
                    ["Normalise", "Enrich", "Split", "Validate", "Reshape"][i],
                    ["lines", "payload", "records"][i % 3]
                );
                (name, lang.to_string(), self.rng.random_range(1..=9i64))
            })
            .collect();
        let variables: Vec<String> = {
            let n = self.rng.random_range(0..=5usize);
            let prefix = systems[self.rng.random_range(0..systems.len())]
                .1
                .to_uppercase();
            let mut keys: Vec<String> = Vec::new();
            for _ in 0..n {
                let k = format!("{prefix}_{}", self.pick(VARIABLES));
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            keys
        };
        let ctx = Context {
            systems,
            scripts,
            object,
            variables,
        };
        let plans = if self.small {
            &STATUS_PLANS[..2]
        } else {
            STATUS_PLANS
        };
        let plan = *plans.choose(&mut self.rng).expect("non-empty list");
        let first_iteration = self.rng.random_range(1..=20i64);
        let priority = self.rng.random_range(1..=5i64);
        let cron = self.pick(CRONS);
        let main = plan
            .iter()
            .position(|s| *s == "Deployed")
            .unwrap_or(plan.len() - 1);
        let mut versions = Vec::new();
        for (i, status) in plan.iter().enumerate() {
            let n = if i == main {
                steps
            } else {
                self.rng.random_range(5..=steps.max(5))
            };
            let version = self.version(&ctx, n, cron);
            let has_callback = version.steps.iter().any(|s| s["type"] == "callback");
            let variables: Vec<Value> = ctx
                .variables
                .iter()
                .map(|k| {
                    let secret = k.ends_with("ALERT_EMAIL") && self.chance(0.3);
                    let value = if secret || self.chance(0.3) {
                        String::new()
                    } else {
                        self.variable_value(k)
                    };
                    json!({"key": k, "value": value, "is_secret": secret})
                })
                .collect();
            versions.push(json!({
                "flow_name": flow_name,
                "flow_priority": priority,
                "iteration": first_iteration + i as i64,
                "status": status,
                "is_deployed": *status == "Deployed",
                "is_editable": *status == "Draft",
                "has_callback_step": has_callback,
                "variables": variables,
                "schedules": [{"cron_string": cron}],
                "steps": version.steps,
                "connections": version.connections,
            }));
        }
        let systems: Vec<Value> = ctx
            .systems
            .iter()
            .map(|(name, slug)| self.system(name, slug))
            .collect();
        let scripts: Vec<Value> = ctx
            .scripts
            .iter()
            .map(|(name, lang, version)| {
                json!({"name": name, "language": lang, "version": version, "code": script_header(lang, name)})
            })
            .collect();
        let mut dependencies: Vec<Value> = ctx
            .scripts
            .iter()
            .map(|s| json!({"type": "script", "name": s.0}))
            .collect();
        dependencies.extend(
            ctx.systems
                .iter()
                .map(|s| json!({"type": "system", "name": s.0})),
        );
        let exported_at = format!(
            "2026-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
            1 + self.index % 12,
            1 + self.index % 28,
            self.index % 24,
            (self.index / 24) % 60,
            self.rng.random_range(0..60)
        );
        let mut doc = json!({
            "metadata": {
                "company_name": "Acme Retail Ltd",
                "flow_name": flow_name,
                "exported_at": exported_at,
                "exported_by": self.pick(&["ops@acme.example", "integrations@acme.example", "dev@acme.example"]),
                "import_summary": {},
            },
            "flow": {
                "name": flow_name,
                "description": if source == dest {
                    format!("Keeps {object} in {source} tidy on schedule {cron}, with retries and alerting.")
                } else {
                    format!("Moves {object} from {source} to {dest} on schedule {cron}, with retries and alerting.")
                },
                "is_enabled": plan.contains(&"Deployed") && self.chance(0.8),
                "priority": priority,
                "versions": versions,
            },
            "systems": systems,
            "scripts": scripts,
            "dependencies": dependencies,
        });
        self.fill(&mut doc, &ctx, target);
        let summary = compute_import_summary(
            &Document::from_value(doc.clone(), "generated").expect("a generated document"),
        );
        doc["metadata"]["import_summary"] = summary;
        doc
    }

    fn variable_value(&mut self, key: &str) -> String {
        if key.ends_with("PAGE_SIZE") || key.ends_with("BATCH_SIZE") {
            self.pick(&["50", "100", "250"]).to_string()
        } else if key.ends_with("LOOKBACK_MINUTES") {
            self.pick(&["15", "60", "1440"]).to_string()
        } else if key.ends_with("ALERT_EMAIL") {
            "alerts@acme.example".to_string()
        } else if key.ends_with("CURRENCY") {
            self.pick(&["GBP", "EUR", "USD"]).to_string()
        } else {
            format!("{}", self.rng.random_range(1..=9999))
        }
    }

    fn system(&mut self, name: &str, slug: &str) -> Value {
        let auths = [
            json!({"name": "Admin API token", "type": "header",
                   "credentials": {"header": "X-Api-Key", "token": ""}}),
            json!({"name": "OAuth 2.0", "type": "oauth2",
                   "credentials": {"client_id": "", "client_secret": "", "access_token": "", "refresh_token": "",
                                   "token_url": format!("https://{slug}.example/oauth/token")}}),
            json!({"name": "Basic auth", "type": "basic",
                   "credentials": {"username": "", "password": ""}}),
            json!({"name": "Token based auth", "type": "oauth1",
                   "credentials": {"consumer_key": "", "consumer_secret": "", "token_id": "", "token_secret": ""}}),
        ];
        let n = if self.small {
            1
        } else {
            self.rng.random_range(1..=2usize)
        };
        let start = self.rng.random_range(0..auths.len());
        let implementations: Vec<Value> = (0..n)
            .map(|i| auths[(start + i) % auths.len()].clone())
            .collect();
        json!({"system": {
            "name": name,
            "label": format!("{name} (Acme UK)"),
            "protocol": if slug == "sftp" { "SFTP" } else { "HTTP" },
            "authentication_implementations": implementations,
        }})
    }

    /// A version of `n` steps: a trigger, then a path whose branching steps end it with routes
    /// to sub-paths.
    fn version(&mut self, ctx: &Context, n: usize, cron: &str) -> Version {
        let mut v = Version {
            steps: Vec::with_capacity(n),
            connections: Vec::new(),
        };
        let trigger = self.trigger(cron);
        v.steps.push(self.step(1, trigger, 0, 0));
        self.path(ctx, &mut v, Some(1), n - 1, 1, 0);
        v
    }

    /// Appends a path of `budget` steps starting at column `x`, lane `y`; connects its first
    /// step from `from` (when given) and returns the id of its first step.
    fn path(
        &mut self,
        ctx: &Context,
        v: &mut Version,
        mut from: Option<i64>,
        mut budget: usize,
        mut x: i64,
        y: i64,
    ) -> Option<i64> {
        let mut first = None;
        while budget > 0 {
            let id = v.steps.len() as i64 + 1;
            if let Some(f) = from {
                v.connections.push(json!({"from": f, "to": id}));
            }
            first.get_or_insert(id);
            budget -= 1;
            let branching = budget >= 2 && self.chance(0.12);
            if branching {
                let (kind, name, config, routes) = self.branching(budget);
                let idx = v.steps.len();
                v.steps.push(self.step(id, (kind, name, config), x, y));
                // Split the remaining budget over the routes; the first route takes the most.
                let mut route_values = Vec::new();
                let mut left = budget;
                for (r, route_name) in routes.iter().enumerate() {
                    let share = if r + 1 == routes.len() {
                        left
                    } else if r == 0 {
                        left - left / 3
                    } else {
                        left / 2
                    };
                    left -= share;
                    let first_step = if share == 0 {
                        None
                    } else {
                        self.path(ctx, v, None, share, x + 1, y + r as i64 * 2)
                    };
                    route_values.push(json!({"name": route_name, "first_step": first_step}));
                }
                v.steps[idx]["routes"] = Value::Array(route_values);
                return first;
            }
            let step = self.linear(ctx);
            let s = self.step(id, step, x, y);
            v.steps.push(s);
            from = Some(id);
            x += 1;
        }
        first
    }

    fn step(
        &mut self,
        id: i64,
        (kind, name, config): (&str, String, Value),
        x: i64,
        y: i64,
    ) -> Value {
        let mut step = Map::new();
        step.insert("id".into(), json!(id));
        step.insert("type".into(), json!(kind));
        step.insert("name".into(), json!(name));
        step.insert(
            "description".into(),
            json!(if self.chance(0.4) {
                format!("{name} ({kind} step)")
            } else {
                String::new()
            }),
        );
        let endpoint = config.get("__endpoint").cloned();
        let mut config = config;
        if let Some(c) = config.as_object_mut() {
            c.remove("__endpoint");
        }
        step.insert("config".into(), config);
        if let Some(e) = endpoint {
            step.insert("endpoint".into(), e);
        }
        step.insert(
            "position".into(),
            json!({"x": 100 + 250 * x, "y": 100 + 150 * y}),
        );
        Value::Object(step)
    }

    fn trigger(&mut self, cron: &str) -> (&'static str, String, Value) {
        if self.chance(0.75) {
            (
                "trigger",
                format!("Schedule {cron}"),
                json!({"schedule_type": "cron", "cron_expression": cron}),
            )
        } else {
            (
                "trigger",
                "Webhook received".to_string(),
                json!({"schedule_type": "webhook", "path": format!("/hooks/flow-{:05}", self.index), "method": "POST"}),
            )
        }
    }

    fn branching(&mut self, budget: usize) -> (&'static str, String, Value, Vec<String>) {
        let field = self.pick(FIELDS);
        match self.rng.random_range(0..4) {
            0 => (
                "try-catch",
                "Try/Catch".to_string(),
                json!({"action": self.pick(&["partial_success", "fail", "continue"])}),
                vec!["Try".into(), "Catch".into()],
            ),
            1 => (
                "filter",
                format!("Only {field} present"),
                json!({"match": "all", "conditions": [
                    {"field": field, "operator": "is_not_empty", "value": ""},
                    {"field": "status", "operator": "not_equals", "value": "cancelled"}]}),
                vec!["Pass".into(), "Fail".into()],
            ),
            2 => (
                "branch",
                format!("Branch on {field}"),
                json!({"field": field, "mode": "first_match"}),
                (0..budget.min(3))
                    .map(|i| format!("Case {}", i + 1))
                    .collect(),
            ),
            _ => (
                "route",
                format!("Route by {field}"),
                json!({"rules": [
                    {"route": "A", "field": field, "operator": "equals", "value": "GB"},
                    {"route": "B", "field": field, "operator": "in", "value": "FR,DE,NL"}]}),
                vec!["A".into(), "B".into(), "Otherwise".into()],
            ),
        }
    }

    fn linear(&mut self, ctx: &Context) -> (&'static str, String, Value) {
        let roll = self.rng.random_range(0..100);
        let object = ctx.object;
        match roll {
            0..=29 => {
                let (system, slug) =
                    ctx.systems[self.rng.random_range(0..ctx.systems.len())].clone();
                let receive = self.chance(0.5);
                let verb = if receive {
                    self.pick(VERBS_IN)
                } else {
                    self.pick(VERBS_OUT)
                };
                let name = format!("{system} - {verb} {object}");
                let method = if receive {
                    "GET"
                } else {
                    self.pick(&["POST", "PUT", "PATCH"])
                };
                let path = format!(
                    "/api/v{}/{}",
                    self.rng.random_range(1..=3),
                    object.replace(' ', "_")
                );
                (
                    "connector",
                    name.clone(),
                    json!({
                        "timeout": self.pick(&[30, 60, 120]),
                        "wrapping_behaviour": self.pick(&["Raw", "First", "Wrap"]),
                        "allow_unsuccessful_statuses": self.chance(0.2),
                        "system": system,
                        "path": path,
                        "query": if receive { json!({"updated_at_min": "{{flow.last_run}}", "limit": "{{variables.PAGE_SIZE}}"}) } else { json!({}) },
                        "pagination": if receive { json!({"type": "link_header", "max_pages": 50}) } else { Value::Null },
                        "retry": {"attempts": 3, "backoff_seconds": 5},
                        "base_url": format!("https://{slug}.example"),
                        "__endpoint": {"name": name, "direction": if receive { "Receive" } else { "Send" },
                                       "http_method": method, "data_type": self.pick(&["json", "json", "xml", "csv"])},
                    }),
                )
            }
            30..=49 => (
                "map",
                format!("Map {object}"),
                json!({"mode": self.pick(&["object", "array"]), "source_format": "json", "target_format": "json",
                       "mapping": {"fields": [], "lookups": {"country_code": {"United Kingdom": "GB", "France": "FR", "Germany": "DE"}}}}),
            ),
            50..=59 if !ctx.scripts.is_empty() => {
                let (name, _, version) =
                    ctx.scripts[self.rng.random_range(0..ctx.scripts.len())].clone();
                (
                    "script",
                    name.clone(),
                    json!({"script": name, "script_version": version}),
                )
            }
            50..=64 => (
                "flow-control",
                format!("Batch {}", self.pick(&[10, 25, 50, 100])),
                json!({"path": format!("{}.*", object.replace(' ', "_")), "size": self.pick(&[10, 25, 50, 100])}),
            ),
            65..=71 => (
                "split",
                format!("Split {object}"),
                json!({"path": format!("{}.*.lines", object.replace(' ', "_"))}),
            ),
            72..=77 => (
                "de-dupe",
                "De-dupe by id".to_string(),
                json!({"field": "id", "behaviour": "filter", "data_type": "json", "retention_days": 30}),
            ),
            78..=83 => (
                "cache",
                format!("Cache {object}"),
                json!({"mode": self.pick(&["save", "load"]), "cache_key": format!("{}-{}", object.replace(' ', "-"), self.index), "ttl_seconds": 3600}),
            ),
            84..=89 => (
                "notify",
                "Email on failure".to_string(),
                json!({"channel": "email", "recipients": ["alerts@acme.example"], "subject": format!("{object} sync problem")}),
            ),
            90..=93 => (
                "assert",
                "Assert not empty".to_string(),
                json!({"conditions": [{"field": "payload", "operator": "is_not_empty"}], "on_failure": "stop"}),
            ),
            94..=96 => (
                "manual-payload",
                "Sample payload".to_string(),
                json!({"payload": format!("{{\"{}\": []}}", object.replace(' ', "_")), "content_type": "application/json"}),
            ),
            _ => (
                "callback",
                "Callback".to_string(),
                json!({"mode": "sync", "status_code": 200}),
            ),
        }
    }

    /// Grows the document's mappings and scripts until its JSON weighs about `target` bytes.
    fn fill(&mut self, doc: &mut Value, ctx: &Context, target: usize) {
        let current = document_bytes(doc).len();
        if current >= target {
            return;
        }
        let mut sinks = Vec::new();
        for (v, version) in doc["flow"]["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .enumerate()
        {
            for (s, step) in version["steps"]
                .as_array()
                .expect("steps")
                .iter()
                .enumerate()
            {
                if step["type"] == "map" {
                    sinks.push(Sink::Mapping {
                        version: v,
                        step: s,
                    });
                }
            }
        }
        for script in 0..ctx.scripts.len() {
            // Scripts grow more slowly than mappings: weight them once each.
            sinks.push(Sink::Script { script });
        }
        if sinks.is_empty() {
            return;
        }
        let mut left = target - current;
        let mut counter = 0usize;
        while left > 0 {
            let sink = &sinks[self.rng.random_range(0..sinks.len())];
            let added = match *sink {
                Sink::Mapping { version, step } => {
                    let entry = self.mapping_entry(counter);
                    // The entry and its separating comma.
                    let size = serde_json::to_string(&entry).expect("JSON").len() + 1;
                    doc["flow"]["versions"][version]["steps"][step]["config"]["mapping"]["fields"]
                        .as_array_mut()
                        .expect("fields")
                        .push(entry);
                    size
                }
                Sink::Script { script } => {
                    let lang = ctx.scripts[script].1.as_str();
                    let chunk = self.code_chunk(lang, counter);
                    let size = serde_json::to_string(&chunk).expect("JSON").len() - 2;
                    if let Value::String(code) = &mut doc["scripts"][script]["code"] {
                        code.push_str(&chunk);
                    }
                    size
                }
            };
            counter += 1;
            left = left.saturating_sub(added);
        }
    }

    fn mapping_entry(&mut self, counter: usize) -> Value {
        let container = self.pick(CONTAINERS);
        let field = self.pick(FIELDS);
        let target_field = self.pick(FIELDS);
        let transform = self.pick(TRANSFORMS);
        let mut entry = Map::new();
        entry.insert("source".into(), json!(format!("{container}.{field}")));
        entry.insert(
            "target".into(),
            json!(format!(
                "{}.{target_field}_{counter}",
                self.pick(&["record", "body", "item", "header"])
            )),
        );
        entry.insert("transform".into(), json!(transform));
        match transform {
            "date_format" => {
                entry.insert(
                    "options".into(),
                    json!({"from": "Y-m-d\\TH:i:sP", "to": "d/m/Y", "timezone": "Europe/London"}),
                );
            }
            "lookup" => {
                entry.insert(
                    "options".into(),
                    json!({"table": "country_code", "fallback": "GB"}),
                );
            }
            "concat" => {
                entry.insert(
                    "options".into(),
                    json!({"with": [format!("{container}.{}", self.pick(FIELDS))], "separator": " "}),
                );
            }
            _ => {}
        }
        entry.insert("required".into(), json!(self.chance(0.2)));
        if self.chance(0.3) {
            entry.insert("default".into(), json!(""));
        }
        Value::Object(entry)
    }

    fn code_chunk(&mut self, lang: &str, counter: usize) -> String {
        let field = self.pick(FIELDS);
        let other = self.pick(FIELDS);
        let n = self.rng.random_range(2..=500);
        match lang {
            "php" => format!(
                "\nfunction normalise_{field}_{counter}(array $record): array\n{{\n    \
                 if (!isset($record['{field}'])) {{\n        $record['{field}'] = $record['{other}'] ?? null;\n    }}\n    \
                 if (is_string($record['{field}'])) {{\n        $record['{field}'] = trim($record['{field}']);\n    }}\n    \
                 $record['_batch'] = intdiv((int) ($record['id'] ?? 0), {n});\n    return $record;\n}}\n"
            ),
            "python" => format!(
                "\n\ndef normalise_{field}_{counter}(record):\n    \"\"\"Fill {field} from {other} when missing.\"\"\"\n    \
                 value = record.get(\"{field}\") or record.get(\"{other}\")\n    if isinstance(value, str):\n        \
                 value = value.strip()\n    record[\"{field}\"] = value\n    record[\"_batch\"] = int(record.get(\"id\", 0)) // {n}\n    \
                 return record\n"
            ),
            _ => format!(
                "\nfunction normalise_{field}_{counter}(record) {{\n  const value = record.{field} ?? record.{other} ?? null;\n  \
                 if (typeof value === 'string') {{\n    record.{field} = value.trim();\n  }} else {{\n    record.{field} = value;\n  }}\n  \
                 record._batch = Math.floor((record.id || 0) / {n});\n  return record;\n}}\n"
            ),
        }
    }
}

fn script_header(lang: &str, name: &str) -> String {
    match lang {
        "php" => format!(
            "<?php\n// {name}\n\nfunction handle(array $payload): array\n{{\n    return array_map('normalise', $payload['records'] ?? []);\n}}\n"
        ),
        "python" => format!(
            "# {name}\n\ndef handle(payload):\n    return [normalise(r) for r in payload.get(\"records\", [])]\n"
        ),
        _ => format!(
            "// {name}\nmodule.exports = function handle(payload) {{\n  return (payload.records || []).map(normalise);\n}};\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use flowpack_core::summary::{compute_counts, stated_counts};
    use flowpack_core::validate::{ValidateOptions, validate};

    use super::*;

    fn opts(flows: usize, seed: u64) -> GenOptions {
        GenOptions {
            flows,
            seed,
            target_mb: None,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_others() {
        let a = document_bytes(&generate_document(&opts(10, 1), 3));
        let b = document_bytes(&generate_document(&opts(10, 1), 3));
        let c = document_bytes(&generate_document(&opts(10, 2), 3));
        assert_eq!(a, b);
        assert_ne!(a, c);
        // A document does not depend on how many others are generated.
        let d = document_bytes(&generate_document(&opts(500, 1), 3));
        assert_eq!(a, d);
    }

    /// Checks what `validate`'s semantic rules demand (one trigger, known systems and scripts,
    /// routes to existing steps), independently of `validate`.
    fn check_consistency(doc: &Value, what: &str) {
        let systems: BTreeSet<&str> = doc["systems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["system"]["name"].as_str().unwrap())
            .collect();
        let scripts: HashMap<&str, &Value> = doc["scripts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap(), &s["version"]))
            .collect();
        let versions = doc["flow"]["versions"].as_array().unwrap();
        assert!((1..=3).contains(&versions.len()), "{what}");
        let statuses: Vec<&str> = versions
            .iter()
            .map(|v| v["status"].as_str().unwrap())
            .collect();
        assert!(
            statuses.iter().filter(|s| **s == "Draft").count() <= 1,
            "{what}"
        );
        assert!(
            statuses.iter().filter(|s| **s == "Deployed").count() <= 1,
            "{what}"
        );
        for v in versions {
            assert_eq!(v["is_deployed"], json!(v["status"] == "Deployed"), "{what}");
            let steps = v["steps"].as_array().unwrap();
            assert!(
                (5..=60).contains(&steps.len()),
                "{what}: {} steps",
                steps.len()
            );
            assert_eq!(steps[0]["type"], "trigger", "{what}");
            assert_eq!(
                steps.iter().filter(|s| s["type"] == "trigger").count(),
                1,
                "{what}"
            );
            let ids: BTreeSet<i64> = steps.iter().map(|s| s["id"].as_i64().unwrap()).collect();
            assert_eq!(ids.len(), steps.len(), "{what}: ids unique");
            let mut edges: HashMap<i64, Vec<i64>> = HashMap::new();
            for c in v["connections"].as_array().unwrap() {
                let (f, t) = (c["from"].as_i64().unwrap(), c["to"].as_i64().unwrap());
                assert!(ids.contains(&f) && ids.contains(&t), "{what}: {c}");
                edges.entry(f).or_default().push(t);
            }
            for s in steps {
                let id = s["id"].as_i64().unwrap();
                for r in s["routes"].as_array().into_iter().flatten() {
                    if let Some(t) = r["first_step"].as_i64() {
                        assert!(ids.contains(&t), "{what}: route {r}");
                        edges.entry(id).or_default().push(t);
                    }
                }
                match s["type"].as_str().unwrap() {
                    "connector" => {
                        assert!(systems.contains(s["config"]["system"].as_str().unwrap()));
                        assert!(s["endpoint"].is_object(), "{what}");
                    }
                    "script" => {
                        let name = s["config"]["script"].as_str().unwrap();
                        assert_eq!(scripts[name], &s["config"]["script_version"], "{what}");
                    }
                    _ => {}
                }
            }
            let mut seen = BTreeSet::from([1]);
            let mut todo = vec![1];
            while let Some(n) = todo.pop() {
                for t in edges.get(&n).into_iter().flatten() {
                    if seen.insert(*t) {
                        todo.push(*t);
                    }
                }
            }
            assert_eq!(seen, ids, "{what}: every step reachable from the trigger");
            assert_eq!(
                v["has_callback_step"],
                json!(steps.iter().any(|s| s["type"] == "callback")),
                "{what}"
            );
        }
    }

    #[test]
    fn generated_documents_are_consistent_and_validate_clean() {
        let o = opts(40, 11);
        for i in 0..o.flows {
            let value = generate_document(&o, i);
            check_consistency(&value, &format!("flow {i}"));
            let doc = Document::from_value(value, "generated").unwrap();
            let report = validate(&doc, &ValidateOptions::default());
            assert!(
                report.findings.is_empty(),
                "flow {i}: {:?}",
                report.findings
            );
            let counts = compute_counts(&doc);
            for (pointer, stated) in stated_counts(&doc) {
                let key = pointer.trim_start_matches("/metadata/import_summary");
                let want = counts
                    .with_pointers()
                    .iter()
                    .find(|(p, _)| *p == key)
                    .unwrap()
                    .1;
                assert_eq!(stated, Some(want), "flow {i}: {pointer}");
            }
        }
    }

    #[test]
    fn sizes_follow_the_skew_and_scale_with_the_target() {
        let o = opts(60, 5);
        let sizes: Vec<usize> = (0..o.flows)
            .map(|i| document_bytes(&generate_document(&o, i)).len())
            .collect();
        let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
        assert!((70_000.0..130_000.0).contains(&mean), "mean {mean}");
        assert!(
            sizes.iter().all(|s| (1_500..=330_000).contains(s)),
            "{sizes:?}"
        );
        assert!(
            sizes.iter().any(|s| *s < 20_000),
            "some small documents: {sizes:?}"
        );
        assert!(
            sizes.iter().any(|s| *s > 200_000),
            "some big documents: {sizes:?}"
        );
        // Scaling to 3 MB over 10 flows doubles-and-a-half every target size.
        let scaled = GenOptions {
            flows: 10,
            seed: 5,
            target_mb: Some(2.5),
        };
        assert!((scaled.size_scale() - 2.5).abs() < 1e-9);
        let big: usize = (0..10)
            .map(|i| document_bytes(&generate_document(&scaled, i)).len())
            .sum();
        let natural: usize = sizes[..10].iter().sum();
        assert!(big as f64 > natural as f64 * 2.0, "{big} vs {natural}");
    }

    #[test]
    fn a_corpus_is_written_in_index_order_with_unique_flow_names() {
        let dir = tempfile::tempdir().unwrap();
        let report = generate_corpus(&opts(12, 3), dir.path()).unwrap();
        assert_eq!(report.files.len(), 12);
        assert_eq!(report.files[0], dir.path().join("flow-00000.json"));
        assert_eq!(report.files[11], dir.path().join("flow-00011.json"));
        let mut names = BTreeSet::new();
        let mut total = 0;
        for f in &report.files {
            let bytes = std::fs::read(f).unwrap();
            total += bytes.len() as u64;
            let doc = Document::from_slice(&bytes, "f").unwrap();
            names.insert(doc.flow_name().unwrap().to_string());
        }
        assert_eq!(names.len(), 12);
        assert_eq!(report.total_bytes, total);
        assert!(report.min_bytes <= report.max_bytes);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 12);
    }
}
