//! `export`: flows of an environment into one archive (a backup).
//!
//! The flow list is paged 100 at a time; the exports run on `jobs` worker threads (bounded
//! concurrency) and stream into the archive writer, which writes the archive atomically (an
//! interrupted or failed export leaves no file). Any flow that cannot be exported fails the
//! whole export: a backup silently missing flows is worse than none. Documents are packed as the
//! platform exported them, without validation (a backup keeps what the platform has), with
//! secret values stripped into the manifest's `inputs`. A name filter that matches no flow is
//! refused before anything is written: an empty backup would look like a successful one.
//!
//! Beside each document the archive gets the flow's settings and state, `flows/<slug>/flow.json`
//! ([`flow_settings`]): a restored flow without its webhooks, callbacks, enabled state and
//! deployed version would not receive events nor run. Webhook and callback ids and HMAC secrets
//! are never written (the platform never returns a secret; a webhook that has one becomes a
//! required `webhook_secret` input). The manifest's `source.url` is always stored redacted (no
//! user information, query or fragment).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use flowpack_client::{ClientError, FlowId, ListQuery, Platform, list_all};
use flowpack_core::archive::{
    ArchiveError, ArchiveWriter, BackupRecord, Callback, FLOW_SETTINGS_FORMAT, FlowInput,
    FlowSettings, ManifestParams, PackReport, PackageKind, SourceInfo, Webhook, WriterOptions,
};
use flowpack_core::names::is_replaced_name;
use flowpack_core::sign::SigningKey;

use crate::error::{Categorize, Category, Remedy};

/// Errors exporting; each names the flow or file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Listing the flows failed.
    #[error("listing the flows: {0}")]
    List(ClientError),
    /// One flow could not be exported (the whole export fails: nothing is written).
    #[error("exporting flow {id}: {error}; nothing was written")]
    Flow {
        /// The flow.
        id: FlowId,
        /// What the platform said.
        #[source]
        error: ClientError,
    },
    /// The name filter matched no flow.
    #[error("no flow matches the filter name={filter:?}; nothing was written")]
    NoMatch {
        /// The filter.
        filter: String,
    },
    /// The archive could not be written.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Object storage failed (an `s3://` output: settings, credentials, the store, an object
    /// that exists).
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// An export worker thread panicked.
    #[error("an export worker thread failed")]
    Worker,
}

impl Categorize for ExportError {
    fn category(&self) -> Category {
        match self {
            ExportError::List(e) | ExportError::Flow { error: e, .. } => e.category(),
            ExportError::NoMatch { .. } => Category::Rejected,
            ExportError::Archive(e) => e.category(),
            ExportError::Worker => Category::CouldNotRun,
            ExportError::Storage(e) => e.category(),
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            ExportError::List(e) | ExportError::Flow { error: e, .. } => e.remedy(),
            ExportError::Archive(e) => e.remedy(),
            _ => None,
        }
    }
}

/// Which flows to export.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selection {
    /// These ids.
    Ids(Vec<FlowId>),
    /// Every flow, optionally only those whose name matches the platform's `filter[name]`.
    All {
        /// `filter[name]`.
        name: Option<String>,
    },
}

/// Called after each flow is exported: (done, total).
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// What to export, from where, into what.
#[non_exhaustive]
pub struct ExportOptions {
    /// The source environment.
    pub platform: Arc<dyn Platform>,
    /// Its name and URL, recorded in the manifest's `source`.
    pub source: SourceInfo,
    /// The flows.
    pub selection: Selection,
    /// The archive to write.
    pub output: PathBuf,
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: semver::Version,
    /// The archive's `created_at`.
    pub created_at: time::OffsetDateTime,
    /// Keys to sign with.
    pub signers: Vec<SigningKey>,
    /// Export requests in flight (at least 1).
    pub jobs: usize,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
    /// Replace an existing output (atomically; a symlink is replaced, not written through).
    /// Without it an existing output is refused before anything is exported.
    pub force: bool,
    /// Keep flows that a replacing push renamed aside (`<name> (replaced <time>)`); without it
    /// they are left out of an export of every flow ([`Selection::All`]).
    pub include_replaced: bool,
    /// The manifest's `backup` record, when the export is a backup of the environment.
    pub backup: Option<BackupRecord>,
}

impl ExportOptions {
    /// Exports `selection` from `platform` into `output` as package `name`@`version`; no
    /// signers, 4 jobs, no progress callback.
    pub fn new(
        platform: Arc<dyn Platform>,
        source: SourceInfo,
        selection: Selection,
        output: PathBuf,
        name: String,
        version: semver::Version,
        created_at: time::OffsetDateTime,
    ) -> ExportOptions {
        ExportOptions {
            platform,
            source,
            selection,
            output,
            name,
            version,
            created_at,
            signers: Vec::new(),
            jobs: 4,
            progress: None,
            force: false,
            include_replaced: false,
            backup: None,
        }
    }
}

/// What an export produced.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct ExportReport {
    /// The archive written, its manifest and signatures.
    pub pack: PackReport,
}

/// Runs an export.
pub fn run(opts: &ExportOptions) -> Result<ExportReport, ExportError> {
    run_checked(opts, |_| Ok(()))
}

/// Runs an export; `check` runs on the finished archive (a temporary file beside the output)
/// before it is renamed into place, after the writer's own check: an error from it leaves
/// nothing at the output.
pub fn run_checked(
    opts: &ExportOptions,
    check: impl FnOnce(&std::path::Path) -> Result<(), ArchiveError>,
) -> Result<ExportReport, ExportError> {
    if let Some(spec) = opts.output.to_str().filter(|o| crate::storage::is_s3(o)) {
        return run_to_s3(opts, spec, check);
    }
    run_local(opts, check)
}

/// An export to `s3://BUCKET/KEY`: refused before anything is exported when the object exists
/// (unless forced); written and verified (integrity) in a private local temporary directory,
/// then uploaded whole, never replacing an object written meanwhile unless forced.
fn run_to_s3(
    opts: &ExportOptions,
    spec: &str,
    check: impl FnOnce(&std::path::Path) -> Result<(), ArchiveError>,
) -> Result<ExportReport, ExportError> {
    let upload = crate::storage::Upload::prepare(spec, opts.force)?;
    let local = upload.local.clone();
    let mut local_opts = ExportOptions::new(
        Arc::clone(&opts.platform),
        opts.source.clone(),
        opts.selection.clone(),
        local.clone(),
        opts.name.clone(),
        opts.version.clone(),
        opts.created_at,
    );
    local_opts.signers = opts.signers.clone();
    local_opts.jobs = opts.jobs;
    local_opts.progress = opts.progress.clone();
    local_opts.include_replaced = opts.include_replaced;
    local_opts.backup = opts.backup.clone();
    let mut report = run_local(&local_opts, |tmp| {
        upload.verify(tmp)?;
        check(tmp)
    })?;
    upload.finish(opts.force)?;
    report.pack.path = PathBuf::from(spec);
    Ok(report)
}

fn run_local(
    opts: &ExportOptions,
    check: impl FnOnce(&std::path::Path) -> Result<(), ArchiveError>,
) -> Result<ExportReport, ExportError> {
    flowpack_core::fsutil::refuse_existing(&opts.output, opts.force).map_err(ArchiveError::from)?;
    let ids: Vec<FlowId> = match &opts.selection {
        Selection::Ids(ids) => ids.clone(),
        Selection::All { name } => {
            let query = ListQuery {
                name: name.clone(),
                ..ListQuery::default()
            };
            let ids: Vec<FlowId> = list_all(opts.platform.as_ref(), &query)
                .map_err(ExportError::List)?
                .into_iter()
                .filter(|f| opts.include_replaced || !is_replaced_name(&f.name))
                .map(|f| f.id)
                .collect();
            if let (true, Some(filter)) = (ids.is_empty(), name) {
                return Err(ExportError::NoMatch {
                    filter: filter.clone(),
                });
            }
            ids
        }
    };
    let total = ids.len() as u64;
    let mut writer_opts = WriterOptions::new(opts.created_at);
    writer_opts.validate = false;
    writer_opts.replace = opts.force;
    // An embedded store builds each export as a parsed document in this process: those run one
    // at a time whatever `jobs`, each holding the whole of the writer's parse budget, so a store
    // of documents near the bound never has more than one such document parsed at once (its
    // export or the writer's check of it). Two threads are then all it can use (one exporting,
    // one reading settings): more would only hold more exported documents waiting and more of
    // the allocator's per-thread memory.
    let platform = opts.platform.as_ref();
    let budget = Arc::new(flowpack_core::budget::ParseBudget::default());
    writer_opts.budget = Some(Arc::clone(&budget));
    let mut writer = ArchiveWriter::create(&opts.output, writer_opts)?;
    let jobs = if platform.builds_exports_in_process() {
        opts.jobs.clamp(1, 2)
    } else {
        opts.jobs.max(1)
    };
    let mut done = 0;
    let mut failure = None;
    flowpack_core::pool::stream(
        ids.into_iter(),
        jobs,
        |id| {
            let exported = {
                // The whole budget: one in-process export at a time, never beside a parse.
                let _alone = platform
                    .builds_exports_in_process()
                    .then(|| budget.acquire(budget.capacity()));
                platform.export_flow_bytes(id)
            };
            let result = exported.and_then(|bytes| Ok((bytes, flow_settings(platform, id)?)));
            (id, result)
        },
        |(id, result)| {
            // The first failure stops handing out work; the requests running finish.
            let added = match result {
                Ok((bytes, settings)) => writer
                    .add_flow_with_settings(
                        FlowInput {
                            bytes,
                            origin: format!("flow {id}"),
                            source_id: id.to_string(),
                            name: None,
                        },
                        settings,
                    )
                    .map_err(ExportError::from),
                Err(error) => Err(ExportError::Flow { id, error }),
            };
            match added {
                Ok(()) => {
                    done += 1;
                    if let Some(p) = &opts.progress {
                        p(done, total);
                    }
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failure = Some(e);
                    ControlFlow::Break(())
                }
            }
        },
    );
    if let Some(e) = failure {
        return Err(e);
    }
    let mut params = ManifestParams::new(&opts.name, opts.version.clone(), PackageKind::Backup);
    params.generator = format!("flowpack {}", env!("CARGO_PKG_VERSION"));
    params.source = opts.source.clone();
    params.source.url = flowpack_client::redacted(&params.source.url);
    params.backup = opts.backup.clone();
    let pack = writer.finish_checked(params, &opts.signers, check)?;
    Ok(ExportReport { pack })
}

/// A flow's settings and state as `flow.json` holds them, read from the platform: the flow's
/// settings (`GET /flows/{flow}`), the iteration of its deployed version, its webhooks and
/// callbacks in the platform's order, without ids or secrets.
pub fn flow_settings(platform: &dyn Platform, id: FlowId) -> Result<FlowSettings, ClientError> {
    let flow = platform.show_flow_settings(id)?;
    let deployed_iteration = platform
        .list_versions(id)?
        .iter()
        .find(|v| v.is_deployed)
        .map(|v| v.iteration);
    let webhooks = platform
        .list_webhooks(id)?
        .into_iter()
        .map(|w| Webhook {
            status: w.status,
            format: w.format,
            body: w.body,
            hmac_algorithm: w.hmac_algorithm,
            has_hmac_secret_key: w.has_hmac_secret_key,
        })
        .collect();
    let callbacks = platform
        .list_callbacks(id)?
        .into_iter()
        .map(|c| Callback {
            status: c.status,
            format: c.format,
        })
        .collect();
    Ok(FlowSettings {
        format: FLOW_SETTINGS_FORMAT,
        enabled: flow.enabled_at.is_some(),
        deployed_iteration,
        priority: flow.priority.unwrap_or(3),
        prod_flag: flow.prod_flag,
        use_queued_time: flow.use_queued_time,
        remove_failed_payloads: flow.remove_failed_payloads,
        layout_direction: flow.layout_direction.unwrap_or_default(),
        labels: flow.labels,
        notification_groups: flow.notification_groups,
        webhooks,
        callbacks,
    })
}

/// The default package version of an export: `0.0.0+<YYYYMMDDhhmmss>` of `created_at` (UTC),
/// so successive backups of one environment are told apart.
pub fn default_version(created_at: time::OffsetDateTime) -> semver::Version {
    let t = created_at.to_offset(time::UtcOffset::UTC);
    let stamp = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    semver::Version {
        major: 0,
        minor: 0,
        patch: 0,
        pre: semver::Prerelease::EMPTY,
        build: semver::BuildMetadata::new(&stamp).expect("digits are valid build metadata"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_settings_read_state_hooks_without_ids_or_secrets() {
        use flowpack_client::{CallbackRequest, ImportRequest, WebhookRequest};
        let store =
            flowpack_sandbox::Store::open_in_memory(flowpack_sandbox::StoreOptions::default())
                .unwrap();
        let doc = include_str!("../fixtures/reference/export-v2-order-sync.json");
        let flow = store
            .import_flow(&ImportRequest {
                document: serde_json::from_str(doc).unwrap(),
                as_marketplace: false,
                idempotency_key: None,
            })
            .unwrap()
            .id;
        let p: &dyn Platform = &store;
        let hook = p
            .create_webhook(
                flow,
                &WebhookRequest {
                    status: Some("active".into()),
                    format: Some("json".into()),
                    ..WebhookRequest::default()
                },
            )
            .unwrap();
        p.update_webhook(
            flow,
            hook.id,
            &WebhookRequest {
                hmac_algorithm: Some(Some("sha256".into())),
                hmac_secret_key: Some(Some("s3cr3t-hmac".into())),
                ..WebhookRequest::default()
            },
        )
        .unwrap();
        p.create_callback(
            flow,
            &CallbackRequest {
                status: Some("failed".into()),
                format: Some("json".into()),
            },
        )
        .unwrap();
        p.set_layout_direction(flow, "vertical").unwrap();
        let seventh = p.list_versions(flow).unwrap();
        let seventh = seventh.iter().find(|v| v.iteration == 7).unwrap();
        p.deploy_version(flow, seventh.id, "2026-11-29T12:00:00Z")
            .unwrap();
        p.update_flow(
            flow,
            &flowpack_client::FlowUpdate {
                enabled_at: Some(Some("2026-11-29T12:00:00Z".into())),
                priority: Some(2),
            },
        )
        .unwrap();
        let s = flow_settings(p, flow).unwrap();
        let mut want_hook = Webhook::new("active", "json");
        want_hook.hmac_algorithm = Some("sha256".into());
        want_hook.has_hmac_secret_key = true;
        assert_eq!(s.webhooks, [want_hook]);
        assert_eq!(s.callbacks, [Callback::new("failed", "json")]);
        assert_eq!(s.layout_direction, "vertical");
        assert_eq!(s.deployed_iteration, Some(7));
        assert!(s.enabled);
        assert_eq!(s.priority, 2);
        let bytes = String::from_utf8(s.to_bytes()).unwrap();
        assert!(
            !bytes.contains("s3cr3t-hmac") && !bytes.contains("\"id\""),
            "{bytes}"
        );
    }

    #[test]
    fn default_version_is_the_utc_timestamp() {
        let t = time::OffsetDateTime::from_unix_timestamp(1_767_323_045).unwrap();
        assert_eq!(default_version(t).to_string(), "0.0.0+20260102030405");
    }
}
