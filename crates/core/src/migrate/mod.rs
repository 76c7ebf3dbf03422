//! Migrations between export format versions, modelled on Grafana's dashboard
//! migrations: one file per step (`v2.rs` is 1→2), a registry `STEPS` ordered by version, and a
//! driver, [`migrate`], that walks the chain up or down.
//!
//! Each `Step` has `up` and `down`. `down` returns a [`LossReport`]: what the older version
//! cannot hold. The driver refuses a lossy migration unless [`MigrateOptions::allow_loss`] is set.
//! The driver, not the step, records the new version as `metadata.format_version`; migrating a
//! document to the version it already has changes nothing but that stamp.
//!
//! Errors are layered (uv-style): a step reports a [`StepError`] naming the JSON pointer at
//! fault; the driver wraps it into a [`MigrateError`] naming the document.
//!
//! ```
//! use flowpack_core::document::{Document, FormatVersion};
//! use flowpack_core::migrate::{migrate, MigrateOptions, Target};
//!
//! let v1 = Document::from_slice(br#"{"metadata":{"flow_name":"A"},"flow":{"name":"A",
//!   "versions":[{"status":"Draft","steps":[{"name":"Get","microservice":"connector"},
//!   {"name":"Chunk","microservice":"batch"}]}]},"systems":[]}"#, "a.json").unwrap();
//! let up = migrate(v1.clone(), &MigrateOptions::new(Target::Latest)).unwrap();
//! assert_eq!(up.to, FormatVersion::V2);
//! let steps = up.document.value().pointer("/flow/versions/0/steps").unwrap();
//! assert_eq!(steps[1]["id"], 2);
//! assert_eq!(steps[1]["type"], "flow-control");
//!
//! let down = migrate(up.document, &MigrateOptions::new(Target::Version(1))).unwrap();
//! assert!(down.loss.is_empty());
//! let mut back = down.document;
//! back.unstamp_format_version();
//! assert_eq!(back.value(), v1.value());
//! ```

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use crate::document::{Document, FormatVersion};

pub(crate) mod v2;

/// One step of the chain: migrates between two adjacent format versions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    /// The older version.
    pub from: FormatVersion,
    /// The newer version (`from` + 1).
    pub to: FormatVersion,
    /// `from` → `to`. Does not stamp `metadata.format_version`.
    pub up: fn(&mut Value) -> Result<(), StepError>,
    /// `to` → `from`, reporting what `from` cannot hold (it is dropped from the document).
    /// Does not stamp `metadata.format_version`.
    pub down: fn(&mut Value) -> Result<LossReport, StepError>,
}

/// The registry: every step, oldest first. Contiguous: each step starts where the previous ends,
/// and the chain runs from version 1 to [`FormatVersion::LATEST`].
pub(crate) static STEPS: &[Step] = &[v2::STEP];

/// Which version to migrate to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A version by number.
    Version(u64),
    /// The newest version flowpack knows.
    Latest,
}

impl FromStr for Target {
    type Err = String;

    /// Parses `latest` or a version number.
    fn from_str(s: &str) -> Result<Target, String> {
        if s.eq_ignore_ascii_case("latest") {
            return Ok(Target::Latest);
        }
        s.parse::<u64>()
            .map(Target::Version)
            .map_err(|_| format!("`{s}` is neither a format version number nor `latest`"))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Version(n) => write!(f, "{n}"),
            Target::Latest => f.write_str("latest"),
        }
    }
}

/// Options of [`migrate`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MigrateOptions {
    /// The version to migrate to.
    pub to: Target,
    /// Let a down-migration drop what the older version cannot hold (reported in
    /// [`Migrated::loss`]) instead of refusing.
    pub allow_loss: bool,
    /// How errors name the document (a path or an archive entry).
    pub origin: String,
}

impl MigrateOptions {
    /// Options migrating to `to`, refusing loss, naming the document `document` in errors.
    pub fn new(to: Target) -> MigrateOptions {
        MigrateOptions {
            to,
            allow_loss: false,
            origin: "document".to_string(),
        }
    }
}

/// One thing a down-migration drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Loss {
    /// RFC 6901 pointer, into the document before the step, to what is lost.
    pub pointer: String,
    /// What is lost, in words.
    pub what: String,
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.what)
    }
}

/// What a down-migration drops; serialises as a list of [`Loss`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LossReport {
    /// The items, in document order within each step.
    pub items: Vec<Loss>,
}

impl LossReport {
    /// Whether nothing is lost.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Records one loss.
    pub fn push(&mut self, pointer: impl Into<String>, what: impl Into<String>) {
        self.items.push(Loss {
            pointer: pointer.into(),
            what: what.into(),
        });
    }
}

impl fmt::Display for LossReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}

/// What a migration step found wrong with a document; each names the JSON pointer at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// A value has the wrong JSON type.
    #[error("{pointer}: expected {expected}, found {found}")]
    WrongType {
        /// Where.
        pointer: String,
        /// What the step needs there.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// A version-1 route's `first_step` names no step of its version.
    #[error("{pointer}: route names step `{name}`, but no step of this version has that name")]
    UnknownStepName {
        /// The route's `first_step`.
        pointer: String,
        /// The name it gives.
        name: String,
    },
    /// A version-1 route's `first_step` names several steps.
    #[error("{pointer}: route names step `{name}`, which several steps are called: {steps}")]
    AmbiguousStepName {
        /// The route's `first_step`.
        pointer: String,
        /// The name it gives.
        name: String,
        /// The pointers of the steps of that name, comma-separated.
        steps: String,
    },
    /// A version-2 route or connection names no step id of its version.
    #[error("{pointer}: names step id {id}, but no step of this version has that id")]
    UnknownStepId {
        /// The route's `first_step` or the connection's end.
        pointer: String,
        /// The id it gives.
        id: String,
    },
    /// Two steps of a version share an id.
    #[error("{pointer}: step id {id} is already used by {first}")]
    DuplicateStepId {
        /// The second step's `id`.
        pointer: String,
        /// The id.
        id: String,
        /// The pointer of the first step with that id.
        first: String,
    },
    /// A version-1 step already carries a field the step computes.
    #[error(
        "{pointer}: a version-1 step already has `{field}`, which migrating to version 2 computes"
    )]
    Conflict {
        /// The field.
        pointer: String,
        /// Its name.
        field: &'static str,
    },
}

/// Why a migration failed; each names the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The target version is unknown.
    #[error("{document}: cannot migrate to format version {target} (known: 1, 2)")]
    UnknownTarget {
        /// The document.
        document: String,
        /// The target asked for.
        target: u64,
    },
    /// A step could not migrate the document.
    /// (The step's error is part of the message, not a `source`, so it prints once.)
    #[error("{document}: cannot migrate from format version {from} to {to}: {error}")]
    Step {
        /// The document.
        document: String,
        /// The step's start.
        from: FormatVersion,
        /// The step's end.
        to: FormatVersion,
        /// What the step found.
        #[source]
        error: StepError,
    },
    /// A down-migration would lose data and loss was not allowed.
    #[error(
        "{document}: migrating to format version {to} would lose {} {} (allow loss to go on): {loss}",
        loss.items.len(),
        if loss.items.len() == 1 { "item" } else { "items" }
    )]
    LossRefused {
        /// The document.
        document: String,
        /// The version it is at.
        from: FormatVersion,
        /// The target.
        to: FormatVersion,
        /// What would be lost.
        loss: LossReport,
    },
}

/// A migrated document.
#[derive(Debug, Clone)]
pub struct Migrated {
    /// The document at the target version, stamped with it.
    pub document: Document,
    /// The version it was at.
    pub from: FormatVersion,
    /// The version it is at now.
    pub to: FormatVersion,
    /// What was dropped (empty when migrating up, or when nothing was lost).
    pub loss: LossReport,
}

/// Resolves a target to a known version; errors name `origin`.
pub fn resolve_target(to: Target, origin: &str) -> Result<FormatVersion, MigrateError> {
    match to {
        Target::Latest => Ok(FormatVersion::LATEST),
        Target::Version(n) => {
            FormatVersion::from_number(n).ok_or_else(|| MigrateError::UnknownTarget {
                document: origin.to_string(),
                target: n,
            })
        }
    }
}

/// Migrates a document to `opts.to`, walking the registry of steps up or down, then stamps the target as
/// `metadata.format_version`. A down-migration that would lose data is refused with
/// [`MigrateError::LossRefused`] (listing what) unless `opts.allow_loss`.
pub fn migrate(mut doc: Document, opts: &MigrateOptions) -> Result<Migrated, MigrateError> {
    let from = doc.format_version();
    let to = resolve_target(opts.to, &opts.origin)?;
    let mut loss = LossReport::default();
    let wrap = |step: &Step, error: StepError| MigrateError::Step {
        document: opts.origin.clone(),
        from: step.from,
        to: step.to,
        error,
    };
    if from < to {
        for step in STEPS.iter().filter(|s| s.from >= from && s.to <= to) {
            (step.up)(doc.value_mut()).map_err(|e| wrap(step, e))?;
        }
    } else if from > to {
        for step in STEPS.iter().rev().filter(|s| s.to <= from && s.from >= to) {
            let step_loss = (step.down)(doc.value_mut()).map_err(|e| wrap(step, e))?;
            loss.items.extend(step_loss.items);
        }
        if !loss.is_empty() && !opts.allow_loss {
            return Err(MigrateError::LossRefused {
                document: opts.origin.clone(),
                from,
                to,
                loss,
            });
        }
    }
    doc.stamp_format_version(to);
    Ok(Migrated {
        document: doc,
        from,
        to,
        loss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &[u8] = include_bytes!("../../fixtures/reference/export-v1-legacy.json");
    const V2: &[u8] = include_bytes!("../../fixtures/reference/export-v2-order-sync.json");

    #[test]
    fn the_chain_is_contiguous_from_1_to_latest() {
        assert_eq!(STEPS.first().unwrap().from, FormatVersion::V1);
        assert_eq!(STEPS.last().unwrap().to, FormatVersion::LATEST);
        for step in STEPS {
            assert_eq!(step.to.number(), step.from.number() + 1, "{step:?}");
        }
        for pair in STEPS.windows(2) {
            assert_eq!(pair[0].to, pair[1].from);
        }
    }

    #[test]
    fn targets_parse_and_unknown_ones_name_the_document() {
        assert_eq!("latest".parse::<Target>(), Ok(Target::Latest));
        assert_eq!("2".parse::<Target>(), Ok(Target::Version(2)));
        assert_eq!(
            "two".parse::<Target>().unwrap_err(),
            "`two` is neither a format version number nor `latest`"
        );
        let doc = Document::from_slice(V1, "v1.json").unwrap();
        let mut opts = MigrateOptions::new(Target::Version(3));
        opts.origin = "v1.json".into();
        assert_eq!(
            migrate(doc, &opts).unwrap_err().to_string(),
            "v1.json: cannot migrate to format version 3 (known: 1, 2)"
        );
    }

    #[test]
    fn migrating_to_the_same_version_only_stamps() {
        for (bytes, n) in [(V1, 1), (V2, 2)] {
            let doc = Document::from_slice(bytes, "x").unwrap();
            let out = migrate(doc.clone(), &MigrateOptions::new(Target::Version(n))).unwrap();
            assert_eq!(out.from, out.to);
            assert!(out.loss.is_empty());
            assert_eq!(
                out.document.value().pointer("/metadata/format_version"),
                Some(&Value::from(n))
            );
            let mut back = out.document;
            back.unstamp_format_version();
            assert_eq!(
                serde_json::to_string(back.value()).unwrap(),
                serde_json::to_string(doc.value()).unwrap()
            );
        }
    }

    #[test]
    fn a_lossy_down_migration_is_refused_naming_what_would_be_lost() {
        let doc = Document::from_slice(V2, "order-sync.json").unwrap();
        let mut opts = MigrateOptions::new(Target::Version(1));
        opts.origin = "order-sync.json".into();
        let err = migrate(doc.clone(), &opts).unwrap_err();
        let MigrateError::LossRefused { loss, from, to, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!((*from, *to), (FormatVersion::V2, FormatVersion::V1));
        let msg = err.to_string();
        assert!(
            msg.starts_with("order-sync.json: migrating to format version 1 would lose "),
            "{msg}"
        );
        for pointer in [
            "/scripts/0",
            "/metadata/exported_by",
            "/flow/versions/0/variables/0",
            "/flow/versions/0/iteration",
        ] {
            assert!(
                loss.items.iter().any(|l| l.pointer == pointer),
                "{pointer}: {msg}"
            );
            assert!(msg.contains(pointer), "{msg}");
        }
        opts.allow_loss = true;
        let out = migrate(doc, &opts).unwrap();
        assert_eq!(&out.loss, loss);
        assert_eq!(out.document.format_version(), FormatVersion::V1);
        let v = out.document.value();
        assert!(v.get("scripts").is_none() && v.get("dependencies").is_none());
        assert_eq!(
            v["flow"]["versions"][0]["steps"][3]["microservice"],
            "batch"
        );
    }

    #[test]
    fn what_a_lossy_down_migration_keeps_goes_back_and_forth_without_loss() {
        let doc = Document::from_slice(V2, "v2").unwrap();
        let mut lossy = MigrateOptions::new(Target::Version(1));
        lossy.allow_loss = true;
        let v1 = migrate(doc, &lossy).unwrap().document;
        let up = migrate(v1.clone(), &MigrateOptions::new(Target::Latest)).unwrap();
        let down = migrate(up.document, &MigrateOptions::new(Target::Version(1))).unwrap();
        assert!(down.loss.is_empty(), "{}", down.loss);
        assert_eq!(
            serde_json::to_string(down.document.value()).unwrap(),
            serde_json::to_string(v1.value()).unwrap()
        );
    }

    #[test]
    fn step_errors_name_the_document_and_the_pointer() {
        let doc = Document::from_slice(
            br#"{"flow":{"versions":[{"steps":[{"name":"A","microservice":"branch",
                "routes":[{"name":"r","first_step":"Nope"}]}]}]}}"#,
            "x",
        )
        .unwrap();
        let mut opts = MigrateOptions::new(Target::Latest);
        opts.origin = "flows/a.json".into();
        assert_eq!(
            migrate(doc, &opts).unwrap_err().to_string(),
            "flows/a.json: cannot migrate from format version 1 to 2: \
             /flow/versions/0/steps/0/routes/0/first_step: route names step `Nope`, \
             but no step of this version has that name"
        );
    }

    fn compact(v: &Value) -> String {
        serde_json::to_string(v).unwrap()
    }

    fn no_errors(doc: &Document) -> Result<(), String> {
        use crate::validate::{Severity, ValidateOptions, validate};
        let report = validate(doc, &ValidateOptions::default());
        match report.count(Severity::Error) {
            0 => Ok(()),
            _ => Err(format!("{:#?}", report.findings)),
        }
    }

    /// Golden fixtures of the 1→2 step: `input/v2.<case>.json` migrates up to exactly
    /// `output/v2.<case>.json` (key order included), which migrates down to exactly the input
    /// without loss.
    #[test]
    fn golden_fixtures_of_the_1_to_2_step() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/migrate");
        let mut cases = 0;
        for entry in std::fs::read_dir(dir.join("input")).unwrap() {
            let input_path = entry.unwrap().path();
            let name = input_path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            assert!(name.starts_with("v2.") && name.ends_with(".json"), "{name}");
            let input = Document::read(&input_path).unwrap();
            assert_eq!(input.format_version(), FormatVersion::V1, "{name}");
            let expected = Document::read(&dir.join("output").join(&name)).unwrap();
            let up = migrate(input.clone(), &MigrateOptions::new(Target::Latest)).unwrap();
            assert_eq!((up.from, up.to), (FormatVersion::V1, FormatVersion::V2));
            assert_eq!(
                compact(up.document.value()),
                compact(expected.value()),
                "{name}"
            );
            no_errors(&up.document).unwrap_or_else(|e| panic!("{name}: {e}"));
            let down = migrate(expected, &MigrateOptions::new(Target::Version(1))).unwrap();
            assert!(down.loss.is_empty(), "{name}: {}", down.loss);
            let mut back = down.document;
            back.unstamp_format_version();
            assert_eq!(compact(back.value()), compact(input.value()), "{name}");
            cases += 1;
        }
        assert!(cases >= 5, "{cases} golden cases");
    }

    mod generated {
        use super::*;
        use proptest::prelude::*;
        use proptest::sample::Index;
        use serde_json::{Map, json};

        const KINDS: &[&str] = &[
            "trigger",
            "connector",
            "map",
            "filter",
            "script",
            "branch",
            "batch",
            "try-catch",
            "notify",
            "callback",
            "de-dupe",
            "x-vendor-step",
        ];
        const CRONS: &[&str] = &["0 * * * *", "*/15 * * * *", "30 6 * * 1-5", "0 2 1 * *"];

        fn number() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                "-?[1-9][0-9]{19,40}".prop_map(|s| serde_json::from_str(&s).unwrap()),
                "-?(0|[1-9][0-9]{0,2})\\.[0-9]{1,20}(e[+-][1-9][0-9]?)?"
                    .prop_map(|s| serde_json::from_str(&s).unwrap()),
            ]
        }

        fn any_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                number(),
                "[a-zA-Z0-9 ~/]{0,8}".prop_map(Value::from),
            ];
            leaf.prop_recursive(2, 12, 3, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                    prop::collection::vec(("x_[a-z]{1,5}", inner), 0..3)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                ]
            })
        }

        /// Fields neither version defines, with where to insert them.
        fn extras() -> impl Strategy<Value = Vec<(String, Value, Index)>> {
            prop::collection::vec(("x_[a-z]{1,5}", any_json(), any::<Index>()), 0..3)
        }

        fn with_extras(mut obj: Map<String, Value>, extras: Vec<(String, Value, Index)>) -> Value {
            for (k, v, at) in extras {
                if !obj.contains_key(&k) {
                    let i = at.index(obj.len() + 1);
                    obj.shift_insert(i, k, v);
                }
            }
            Value::Object(obj)
        }

        fn object(v: Value) -> Map<String, Value> {
            match v {
                Value::Object(m) => m,
                _ => unreachable!("an object literal"),
            }
        }

        type RawRoute = (Option<Option<Index>>, Vec<(String, Value, Index)>);
        type RawStep = (
            Index,
            Option<Value>,
            Option<Vec<RawRoute>>,
            Option<Index>,
            Vec<(String, Value, Index)>,
            Vec<(String, Value, Index)>,
        );

        fn raw_step() -> impl Strategy<Value = RawStep> {
            let route = (prop::option::of(prop::option::of(any::<Index>())), extras());
            (
                any::<Index>(),
                prop::option::of(number()),
                prop::option::weighted(0.3, prop::collection::vec(route, 0..3)),
                prop::option::of(any::<Index>()),
                extras(),
                extras(),
            )
        }

        fn step(i: usize, raw: RawStep, n: usize, systems: usize) -> Value {
            let (kind, size, routes, system, config_extras, step_extras) = raw;
            let kind = KINDS[kind.index(KINDS.len())];
            let mut config = Map::new();
            if let Some(size) = size {
                config.insert("size".into(), size);
            }
            if kind == "connector"
                && systems > 0
                && let Some(s) = system
            {
                config.insert(
                    "system".into(),
                    Value::from(format!("System {}", s.index(systems))),
                );
            }
            let mut obj = object(json!({ "name": format!("Step {i}"), "microservice": kind }));
            obj.insert("config".into(), with_extras(config, config_extras));
            if let Some(routes) = routes {
                let routes = routes
                    .into_iter()
                    .enumerate()
                    .map(|(r, (first, route_extras))| {
                        let mut route = object(json!({ "name": format!("Route {r}") }));
                        match first {
                            None => {}
                            Some(None) => {
                                route.insert("first_step".into(), Value::Null);
                            }
                            Some(Some(target)) => {
                                let name = format!("Step {}", target.index(n));
                                route.insert("first_step".into(), Value::from(name));
                            }
                        }
                        with_extras(route, route_extras)
                    })
                    .collect();
                obj.insert("routes".into(), Value::Array(routes));
            }
            with_extras(obj, step_extras)
        }

        fn version_one_document() -> impl Strategy<Value = Document> {
            let version = (
                1..=5u8,
                any::<Index>(),
                prop::collection::vec(raw_step(), 0..8),
                extras(),
            );
            (
                prop::collection::vec(version, 1..4),
                0..3usize,
                1..=5u8,
                any::<bool>(),
                (extras(), extras(), extras(), extras()),
            )
                .prop_map(|(versions, systems, priority, enabled, more)| {
                    let (top_x, meta_x, flow_x, system_x) = more;
                    let versions: Vec<Value> = versions
                        .into_iter()
                        .enumerate()
                        .map(|(vi, (flow_priority, cron, steps, version_x))| {
                            let status = match vi {
                                0 => "Deployed",
                                1 => "Draft",
                                _ => "Inactive",
                            };
                            let n = steps.len();
                            let steps: Vec<Value> = steps
                                .into_iter()
                                .enumerate()
                                .map(|(i, raw)| step(i, raw, n, systems))
                                .collect();
                            let obj = object(json!({
                                "flow_name": "Generated",
                                "flow_priority": flow_priority,
                                "status": status,
                                "is_deployed": status == "Deployed",
                                "steps": steps,
                                "schedules": [{ "cron_string": CRONS[cron.index(CRONS.len())] }],
                            }));
                            with_extras(obj, version_x)
                        })
                        .collect();
                    let systems: Vec<Value> = (0..systems)
                        .map(|s| {
                            let inner = object(json!({
                                "name": format!("System {s}"), "label": "L", "protocol": "HTTP"
                            }));
                            json!({ "system": with_extras(inner, system_x.clone()) })
                        })
                        .collect();
                    let metadata = object(json!({
                        "company_name": "Acme",
                        "flow_name": "Generated",
                        "exported_at": "2025-01-01T00:00:00Z",
                    }));
                    let flow = object(json!({
                        "name": "Generated", "is_enabled": enabled, "priority": priority,
                    }));
                    let mut flow = object(with_extras(flow, flow_x));
                    flow.insert("versions".into(), Value::Array(versions));
                    let mut root = Map::new();
                    root.insert("metadata".into(), with_extras(metadata, meta_x));
                    root.insert("flow".into(), Value::Object(flow));
                    root.insert("systems".into(), Value::Array(systems));
                    let mut doc =
                        Document::from_value(with_extras(root, top_x), "generated").unwrap();
                    // Without a `microservice`, version 1 is not inferred: say it.
                    if doc.format_version() != FormatVersion::V1 {
                        doc.stamp_format_version(FormatVersion::V1);
                    }
                    doc
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(96))]

            /// down ∘ up is the identity (key order and numbers included), up ∘ down ∘ up is
            /// up, and every migrated document validates without errors.
            #[test]
            fn up_then_down_is_exact_and_up_validates(doc in version_one_document()) {
                prop_assert_eq!(doc.format_version(), FormatVersion::V1);
                let up = migrate(doc.clone(), &MigrateOptions::new(Target::Latest)).unwrap();
                prop_assert_eq!(up.document.format_version(), FormatVersion::V2);
                if let Err(e) = no_errors(&up.document) {
                    return Err(TestCaseError::fail(e));
                }
                let down = migrate(up.document.clone(), &MigrateOptions::new(Target::Version(1)))
                    .unwrap();
                prop_assert!(down.loss.is_empty(), "{}", down.loss);
                let again = migrate(down.document.clone(), &MigrateOptions::new(Target::Latest))
                    .unwrap();
                prop_assert_eq!(compact(again.document.value()), compact(up.document.value()));
                let mut back = down.document;
                if doc.value().pointer("/metadata/format_version").is_none() {
                    back.unstamp_format_version();
                }
                prop_assert_eq!(compact(back.value()), compact(doc.value()));
            }

            /// An edit that version 1 cannot hold makes the down-migration refuse, naming the
            /// edited pointer; allowed, what it keeps goes up and down again without loss.
            #[test]
            fn down_refuses_what_version_1_cannot_hold(
                doc in version_one_document(),
                edit in 0..6usize,
                k in any::<Index>(),
            ) {
                let mut up = migrate(doc, &MigrateOptions::new(Target::Latest)).unwrap().document;
                let value = up.value_mut();
                let n = value["flow"]["versions"][0]["steps"].as_array().unwrap().len();
                let edit = if n == 0 { 2 + edit % 2 } else { edit };
                let k = k.index(n.max(1));
                let steps = "/flow/versions/0/steps";
                let expected = match edit {
                    0 => {
                        value["flow"]["versions"][0]["steps"][k]["position"] = json!({"x": 7, "y": 7});
                        format!("{steps}/{k}/position")
                    }
                    1 => {
                        let step = value["flow"]["versions"][0]["steps"][k].as_object_mut().unwrap();
                        step.insert("description".into(), Value::from("Does things"));
                        format!("{steps}/{k}/description")
                    }
                    2 => {
                        value["flow"]["versions"][0]["variables"] =
                            json!([{"key": "REGION", "value": "eu", "is_secret": false}]);
                        "/flow/versions/0/variables/0".to_string()
                    }
                    3 => {
                        value["scripts"] = json!([{"name": "s", "language": "javascript",
                            "version": 1, "code": ""}]);
                        "/scripts/0".to_string()
                    }
                    4 => {
                        let old = Value::from(k as u64 + 1);
                        let new = Value::from(1_000_000 + k as u64);
                        let version = &mut value["flow"]["versions"][0];
                        version["steps"][k]["id"] = new.clone();
                        for step in version["steps"].as_array_mut().unwrap() {
                            for route in step.get_mut("routes").and_then(Value::as_array_mut)
                                .into_iter().flatten()
                            {
                                if route.get("first_step") == Some(&old) {
                                    route["first_step"] = new.clone();
                                }
                            }
                        }
                        for c in version["connections"].as_array_mut().unwrap() {
                            for end in ["from", "to"] {
                                if c[end] == old {
                                    c[end] = new.clone();
                                }
                            }
                        }
                        format!("{steps}/{k}/id")
                    }
                    _ => {
                        let connections = value["flow"]["versions"][0]["connections"]
                            .as_array_mut()
                            .unwrap();
                        connections.push(json!({"from": n, "to": 1}));
                        format!("/flow/versions/0/connections/{}", connections.len() - 1)
                    }
                };
                let err = migrate(up.clone(), &MigrateOptions::new(Target::Version(1))).unwrap_err();
                let MigrateError::LossRefused { loss, .. } = &err else {
                    return Err(TestCaseError::fail(err.to_string()));
                };
                prop_assert!(loss.items.iter().any(|l| l.pointer == expected), "{}: {}", expected, loss);
                let mut lossy = MigrateOptions::new(Target::Version(1));
                lossy.allow_loss = true;
                let v1 = migrate(up, &lossy).unwrap();
                prop_assert_eq!(&v1.loss, loss);
                let again = migrate(v1.document.clone(), &MigrateOptions::new(Target::Latest))
                    .unwrap();
                let down = migrate(again.document, &MigrateOptions::new(Target::Version(1)))
                    .unwrap();
                prop_assert!(down.loss.is_empty(), "{}", down.loss);
                prop_assert_eq!(compact(down.document.value()), compact(v1.document.value()));
            }
        }
    }
}
