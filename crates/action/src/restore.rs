//! Restoring what a backup's `flow.json` holds beside a flow's export document: its webhooks and
//! callbacks ([`create_hooks`]) and its state ([`restore_state`]: the deployed iteration,
//! enabled or not, priority, the platform's flags, the layout direction, and labels and
//! notification groups when restoring into the environment the backup came from).
//!
//! A restored flow without these would not receive events and would not run. The platform never
//! returns a webhook's HMAC secret key, so a backup cannot hold it: the secret is a required input
//! (`webhook_secret`) an overlay supplies as `[flows."Name".webhooks.N] hmac_secret_key = "…"`,
//! and a restore whose secrets no overlay supplies is refused before any write
//! ([`check_webhook_secrets`]) — not needed when webhooks are skipped (`--no-webhooks`).
//!
//! Secret values never appear in a report or an error of this module: webhooks are named by their
//! position in `flow.json`.

use flowpack_client::{
    Callback, CallbackId, CallbackRequest, ClientError, FlowId, FlowSettings as LiveSettings,
    FlowSettingsUpdate, Platform, VersionId, Webhook, WebhookId, WebhookRequest,
};
use flowpack_core::archive::{FlowSettings, Input, InputKind};
use flowpack_core::overlay::{self, ResolvedOverlay};

use crate::error::{Categorize, Category, Remedy};

/// Errors restoring a flow's webhooks, callbacks or state; each names the flow and the step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A platform call failed.
    #[error("flow {flow}: {step}: {error}{}", cleanup_note(.cleaned_up))]
    Request {
        /// The flow being restored (its id in the target).
        flow: FlowId,
        /// What was being done, e.g. `setting the HMAC of webhook 1`.
        step: String,
        /// What the platform said.
        #[source]
        error: Box<ClientError>,
        /// What was undone after the failure (webhooks and callbacks this call had created).
        cleaned_up: Vec<String>,
    },
    /// HMAC secret keys that no overlay supplies (nothing was written).
    #[error(
        "the archive's webhooks need HMAC secret keys that no overlay supplies: {}; add them to \
         the overlay (or leave webhooks out):\n{}",
        .missing.iter().map(|i| format!("flow {:?} webhook {}", i.flow, i.webhook.unwrap_or_default())).collect::<Vec<_>>().join(", "),
        overlay::toml_lines(.missing)
    )]
    MissingSecrets {
        /// The `webhook_secret` inputs not supplied.
        missing: Vec<Input>,
    },
    /// The iteration that was deployed is not among the target flow's versions.
    #[error(
        "flow {flow}: the archive's deployed iteration {iteration} is not among the flow's \
         versions (iterations {available:?})"
    )]
    NoSuchIteration {
        /// The flow.
        flow: FlowId,
        /// The iteration `flow.json` names.
        iteration: i64,
        /// The iterations the flow has.
        available: Vec<i64>,
    },
}

fn cleanup_note(cleaned_up: &[String]) -> String {
    if cleaned_up.is_empty() {
        String::new()
    } else {
        format!(" (undone: {})", cleaned_up.join(", "))
    }
}

impl Categorize for RestoreError {
    fn category(&self) -> Category {
        match self {
            RestoreError::Request { error, .. } => error.category(),
            RestoreError::MissingSecrets { .. } | RestoreError::NoSuchIteration { .. } => {
                Category::Rejected
            }
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            RestoreError::Request { error, .. } => error.remedy(),
            RestoreError::MissingSecrets { .. } => Some(Remedy::SkipWebhooks),
            RestoreError::NoSuchIteration { .. } => None,
        }
    }
}

/// One webhook created: its position in `flow.json` and its new id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct CreatedWebhook {
    /// The 0-based position in `flow.json`.
    pub position: usize,
    /// The new webhook's id (senders must be pointed at it).
    pub id: WebhookId,
    /// Whether an HMAC secret key was set.
    pub hmac_secret_key: bool,
}

/// What [`create_hooks`] created.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct HooksReport {
    /// The webhooks, in `flow.json` order.
    pub webhooks: Vec<CreatedWebhook>,
    /// The new callbacks' ids, in `flow.json` order.
    pub callbacks: Vec<CallbackId>,
}

/// What [`restore_state`] changed and what it left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct StateReport {
    /// The iteration deployed by this call (`None`: nothing was deployed, either because the
    /// archive names none or because it was deployed already).
    pub deployed_iteration: Option<i64>,
    /// Whether the flow is enabled afterwards.
    pub enabled: bool,
    /// The settings fields written (`enabled_at`, `priority`, `prod_flag`, …, `layout_direction`).
    pub updated: Vec<String>,
    /// What was not restored and why (labels and notification groups of another environment,
    /// a deployed version the archive says was not deployed).
    pub not_restored: Vec<String>,
}

/// The HMAC secret keys `overlay` supplies for `settings`' webhooks of flow `flow_name`, as
/// `(position, secret)` pairs for [`create_hooks`].
pub(crate) fn webhook_secrets_for(
    flow_name: &str,
    settings: &FlowSettings,
    overlay: Option<&ResolvedOverlay>,
) -> Vec<(usize, String)> {
    let Some(flow) = overlay.and_then(|o| o.overlay().flows.get(flow_name)) else {
        return Vec::new();
    };
    settings
        .webhook_secrets()
        .filter_map(|n| flow.webhook_secret(n).map(|s| (n as usize, s.to_string())))
        .collect()
}

/// The archive's `webhook_secret` inputs that `overlay` does not supply, in the manifest's order.
pub fn missing_webhook_secrets(inputs: &[Input], overlay: Option<&ResolvedOverlay>) -> Vec<Input> {
    let secrets: Vec<Input> = inputs
        .iter()
        .filter(|i| i.kind == InputKind::WebhookSecret)
        .cloned()
        .collect();
    match overlay::check_inputs(&secrets, overlay) {
        Ok(_) => Vec::new(),
        Err(overlay::OverlayError::MissingInputs { missing, .. }) => missing,
        Err(_) => secrets,
    }
}

/// Refuses a restore whose webhook HMAC secret keys no overlay supplies (each named), unless
/// webhooks are skipped (`no_webhooks`).
pub fn check_webhook_secrets(
    inputs: &[Input],
    overlay: Option<&ResolvedOverlay>,
    no_webhooks: bool,
) -> Result<(), RestoreError> {
    if no_webhooks {
        return Ok(());
    }
    let missing = missing_webhook_secrets(inputs, overlay);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(RestoreError::MissingSecrets { missing })
    }
}

/// The inputs a push checks against the overlay: all of them, or without the webhook secrets
/// when webhooks are skipped (`--no-webhooks` needs none).
pub(crate) fn inputs_to_check(inputs: &[Input], no_webhooks: bool) -> Vec<Input> {
    inputs
        .iter()
        .filter(|i| !(no_webhooks && i.kind == InputKind::WebhookSecret))
        .cloned()
        .collect()
}

/// Creates `settings`' webhooks and callbacks on flow `flow`, in `flow.json` order.
///
/// A webhook is created with `POST` (status, format, body), then its `hmac_algorithm` and HMAC
/// secret key (from `secrets`, `(position, secret)`) are set with `PUT`, because the platform
/// ignores `hmac_*` on create. A webhook that had a secret but has none in `secrets` is refused
/// before anything is created. On any failure, every webhook and callback this call created is
/// deleted again (a failed `PUT` deletes its new webhook) and the error lists what was undone.
pub fn create_hooks(
    platform: &dyn Platform,
    flow: FlowId,
    settings: &FlowSettings,
    secrets: &[(usize, String)],
) -> Result<HooksReport, RestoreError> {
    let missing: Vec<usize> = settings
        .webhook_secrets()
        .map(|n| n as usize)
        .filter(|n| !secrets.iter().any(|(p, _)| p == n))
        .collect();
    if !missing.is_empty() {
        return Err(RestoreError::MissingSecrets {
            missing: missing
                .into_iter()
                .map(|n| Input::webhook_secret(&format!("flow {flow}"), n as u32))
                .collect(),
        });
    }
    let mut report = HooksReport::default();
    let fail = |report: &HooksReport, step: String, error: ClientError| {
        let mut cleaned_up = Vec::new();
        for w in report.webhooks.iter().rev() {
            if platform.delete_webhook(flow, w.id).is_ok() {
                cleaned_up.push(format!("webhook {} deleted", w.id));
            }
        }
        for c in report.callbacks.iter().rev() {
            if platform.delete_callback(flow, *c).is_ok() {
                cleaned_up.push(format!("callback {c} deleted"));
            }
        }
        RestoreError::Request {
            flow,
            step,
            error: Box::new(error),
            cleaned_up,
        }
    };
    for (position, w) in settings.webhooks.iter().enumerate() {
        let create = WebhookRequest {
            status: Some(w.status.clone()),
            format: Some(w.format.clone()),
            body: Some(w.body.clone()),
            ..WebhookRequest::default()
        };
        let created = platform
            .create_webhook(flow, &create)
            .map_err(|e| fail(&report, format!("creating webhook {position}"), e))?;
        let secret = secrets
            .iter()
            .find(|(p, _)| *p == position && w.has_hmac_secret_key)
            .map(|(_, s)| s.clone());
        if w.hmac_algorithm.is_some() || secret.is_some() {
            let update = WebhookRequest {
                hmac_algorithm: Some(w.hmac_algorithm.clone()),
                hmac_secret_key: secret.clone().map(Some),
                ..WebhookRequest::default()
            };
            if let Err(e) = platform.update_webhook(flow, created.id, &update) {
                let mut err = fail(
                    &report,
                    format!(
                        "setting the HMAC of webhook {position} (new id {})",
                        created.id
                    ),
                    e,
                );
                if let RestoreError::Request { cleaned_up, .. } = &mut err
                    && platform.delete_webhook(flow, created.id).is_ok()
                {
                    cleaned_up.insert(0, format!("webhook {} deleted", created.id));
                }
                return Err(err);
            }
        }
        report.webhooks.push(CreatedWebhook {
            position,
            id: created.id,
            hmac_secret_key: secret.is_some(),
        });
    }
    for (position, c) in settings.callbacks.iter().enumerate() {
        let request = CallbackRequest {
            status: Some(c.status.clone()),
            format: Some(c.format.clone()),
        };
        let created = platform
            .create_callback(flow, &request)
            .map_err(|e| fail(&report, format!("creating callback {position}"), e))?;
        report.callbacks.push(created.id);
    }
    Ok(report)
}

/// Makes flow `flow`'s state what `settings` says: deploys the version whose iteration is
/// `deployed_iteration` (unless it is deployed already), then enables or disables the flow and
/// sets priority, `prod_flag`, `use_queued_time` and `remove_failed_payloads` with one `PUT`
/// (only the fields that differ; nothing when none does, so a re-run is a no-op), and the layout
/// direction with `PATCH` when it differs. Labels and notification groups are ids of one
/// environment: written only when `same_environment`, otherwise reported as not restored.
/// `now` (RFC 3339) is the `deployed_at` and `enabled_at` written.
pub fn restore_state(
    platform: &dyn Platform,
    flow: FlowId,
    settings: &FlowSettings,
    same_environment: bool,
    now: &str,
) -> Result<StateReport, RestoreError> {
    let plan = plan_state(platform, flow, settings, same_environment, now)?;
    apply_state(platform, flow, plan)
}

/// The names of the settings fields [`restore_state`] writes, as its report and a push's history
/// record name them (a rollback reads them back).
pub(crate) mod field {
    pub(crate) const ENABLED_AT: &str = "enabled_at";
    pub(crate) const PRIORITY: &str = "priority";
    pub(crate) const PROD_FLAG: &str = "prod_flag";
    pub(crate) const USE_QUEUED_TIME: &str = "use_queued_time";
    pub(crate) const REMOVE_FAILED_PAYLOADS: &str = "remove_failed_payloads";
    pub(crate) const LABELS: &str = "labels";
    pub(crate) const NOTIFICATION_GROUPS: &str = "notification_groups";
    pub(crate) const LAYOUT_DIRECTION: &str = "layout_direction";
}

/// What [`restore_state`] would write to a flow, read from the platform and not written yet:
/// a push records the flow's settings before it writes them (so a rollback can put them back).
#[derive(Debug)]
pub(crate) struct StatePlan {
    /// The flow's settings before any write.
    pub(crate) before: LiveSettings,
    /// The iteration deployed before (`None`: none).
    pub(crate) deployed_before: Option<i64>,
    /// The version to deploy and its iteration.
    deploy: Option<(VersionId, i64)>,
    /// The settings fields that differ, with their new values.
    update: FlowSettingsUpdate,
    /// The layout direction to set, when it differs.
    layout: Option<String>,
    /// The report, complete but for what the writes add.
    report: StateReport,
    /// The `deployed_at` written.
    now: String,
}

impl StatePlan {
    /// Whether nothing would be written.
    pub(crate) fn writes_nothing(&self) -> bool {
        self.deploy.is_none()
            && self.update == FlowSettingsUpdate::default()
            && self.layout.is_none()
    }

    /// The settings fields that would be written (`enabled_at`, `priority`, …,
    /// `layout_direction`), as the report names them.
    pub(crate) fn fields(&self) -> &[String] {
        &self.report.updated
    }

    /// Whether a version would be deployed.
    pub(crate) fn deploys(&self) -> bool {
        self.deploy.is_some()
    }

    /// The report [`apply_state`] would give (what a dry run shows).
    pub(crate) fn preview(&self) -> StateReport {
        let mut report = self.report.clone();
        report.deployed_iteration = self.deploy.map(|(_, iteration)| iteration);
        report
    }
}

/// Reads flow `flow`'s versions and settings and works out what [`restore_state`] writes.
pub(crate) fn plan_state(
    platform: &dyn Platform,
    flow: FlowId,
    settings: &FlowSettings,
    same_environment: bool,
    now: &str,
) -> Result<StatePlan, RestoreError> {
    let mut report = StateReport::default();
    let versions = platform
        .list_versions(flow)
        .map_err(request_error(flow, "listing the versions"))?;
    let deployed_before = versions.iter().find(|v| v.is_deployed).map(|v| v.iteration);
    let mut deploy = None;
    match settings.deployed_iteration {
        Some(iteration) => {
            let Some(v) = versions.iter().find(|v| v.iteration == iteration) else {
                return Err(RestoreError::NoSuchIteration {
                    flow,
                    iteration,
                    available: versions.iter().map(|v| v.iteration).collect(),
                });
            };
            if !v.is_deployed {
                deploy = Some((v.id, iteration));
            }
        }
        None => {
            if let Some(iteration) = deployed_before {
                report.not_restored.push(format!(
                    "iteration {iteration} stays deployed: the archive's flow had no deployed \
                     version and the platform cannot undeploy one"
                ));
            }
        }
    }
    let current = platform
        .show_flow_settings(flow)
        .map_err(request_error(flow, "reading the flow's settings"))?;
    let update = settings_update(settings, &current, same_environment, now, &mut report);
    let layout = (!settings.layout_direction.is_empty()
        && current.layout_direction.as_deref() != Some(settings.layout_direction.as_str()))
    .then(|| settings.layout_direction.clone());
    if layout.is_some() {
        report.updated.push(field::LAYOUT_DIRECTION.into());
    }
    report.enabled = settings.enabled;
    Ok(StatePlan {
        before: current,
        deployed_before,
        deploy,
        update,
        layout,
        report,
        now: now.to_string(),
    })
}

/// The settings fields of `current` that differ from `settings`, as one update; their names
/// go to `report.updated` (labels and notification groups of another environment to
/// `report.not_restored`).
fn settings_update(
    settings: &FlowSettings,
    current: &LiveSettings,
    same_environment: bool,
    now: &str,
    report: &mut StateReport,
) -> FlowSettingsUpdate {
    let mut update = FlowSettingsUpdate::default();
    if settings.enabled != current.enabled_at.is_some() {
        update.enabled_at = Some(settings.enabled.then(|| now.to_string()));
        report.updated.push(field::ENABLED_AT.into());
    }
    if Some(settings.priority) != current.priority {
        update.priority = Some(settings.priority);
        report.updated.push(field::PRIORITY.into());
    }
    for (name, want, have, slot) in [
        (
            field::PROD_FLAG,
            settings.prod_flag,
            current.prod_flag,
            &mut update.prod_flag,
        ),
        (
            field::USE_QUEUED_TIME,
            settings.use_queued_time,
            current.use_queued_time,
            &mut update.use_queued_time,
        ),
        (
            field::REMOVE_FAILED_PAYLOADS,
            settings.remove_failed_payloads,
            current.remove_failed_payloads,
            &mut update.remove_failed_payloads,
        ),
    ] {
        if want != have {
            *slot = Some(want);
            report.updated.push(name.into());
        }
    }
    for (name, want, have, slot) in [
        (
            field::LABELS,
            &settings.labels,
            &current.labels,
            &mut update.labels,
        ),
        (
            field::NOTIFICATION_GROUPS,
            &settings.notification_groups,
            &current.notification_groups,
            &mut update.notification_groups,
        ),
    ] {
        if want == have {
            continue;
        }
        if same_environment {
            *slot = Some(want.clone());
            report.updated.push(name.into());
        } else if !want.is_empty() {
            report.not_restored.push(format!(
                "{name} {want:?}: ids of the environment the archive came from"
            ));
        }
    }
    update
}

/// Writes what `plan` holds: the deployment, then the settings, then the layout direction.
pub(crate) fn apply_state(
    platform: &dyn Platform,
    flow: FlowId,
    plan: StatePlan,
) -> Result<StateReport, RestoreError> {
    let mut report = plan.report;
    if let Some((version, iteration)) = plan.deploy {
        platform
            .deploy_version(flow, version, &plan.now)
            .map_err(request_error(
                flow,
                &format!("deploying iteration {iteration}"),
            ))?;
        report.deployed_iteration = Some(iteration);
    }
    if plan.update != FlowSettingsUpdate::default() {
        platform
            .update_flow_settings(flow, &plan.update)
            .map_err(request_error(flow, "updating the flow's settings"))?;
    }
    if let Some(direction) = &plan.layout {
        platform
            .set_layout_direction(flow, direction)
            .map_err(request_error(flow, "setting the layout direction"))?;
    }
    Ok(report)
}

/// The error of a failed platform call of `step` on `flow`.
fn request_error(flow: FlowId, step: &str) -> impl FnOnce(ClientError) -> RestoreError {
    let step = step.to_string();
    move |error| RestoreError::Request {
        flow,
        step,
        error: Box::new(error),
        cleaned_up: Vec::new(),
    }
}

/// What a push restores from the archive's `flow.json` files (`push --no-webhooks`,
/// `push --restore-state`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// Create no webhooks or callbacks (and need no HMAC secrets).
    pub no_webhooks: bool,
    /// Also restore the state: deploy the iteration that was deployed, enable what was enabled
    /// (and disable what was not), the settings fields.
    pub restore_state: bool,
    /// The target's URL (redacted before comparing): labels and notification groups are
    /// restored only when it is the archive's `source.url`.
    pub target_url: Option<String>,
}

impl RestoreOptions {
    /// Whether the target is the environment an archive with `source_url` came from (labels
    /// and notification groups are restored only then).
    pub(crate) fn same_environment(&self, source_url: &str) -> bool {
        !source_url.is_empty()
            && self
                .target_url
                .as_deref()
                .is_some_and(|t| flowpack_client::redacted(t) == source_url)
    }
}

/// What was restored for one flow a push created.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct FlowRestoreReport {
    /// The webhooks and callbacks created (`None` under `--no-webhooks`).
    pub hooks: Option<HooksReport>,
    /// The state restored (`None` without `--restore-state`).
    pub state: Option<StateReport>,
}

impl FlowRestoreReport {
    /// Only webhooks and callbacks were created (a replaced flow's, from `flow.json`).
    pub(crate) fn hooks_only(hooks: HooksReport) -> FlowRestoreReport {
        FlowRestoreReport {
            hooks: Some(hooks),
            state: None,
        }
    }

    /// Only the state was restored (an existing flow's, `push --restore-state`).
    pub(crate) fn state_only(state: StateReport) -> FlowRestoreReport {
        FlowRestoreReport {
            hooks: None,
            state: Some(state),
        }
    }
}

/// The `flow.json` of each flow of an archive that has one, by the flow's `export.json` path.
pub(crate) fn archive_settings(
    archive: &mut flowpack_core::archive::Archive,
    manifest: &flowpack_core::archive::Manifest,
) -> Result<std::collections::BTreeMap<String, FlowSettings>, flowpack_core::archive::ArchiveError>
{
    let mut out = std::collections::BTreeMap::new();
    for record in &manifest.flows {
        if let Some(settings) = archive.flow_settings(record)? {
            out.insert(record.path.clone(), settings);
        }
    }
    Ok(out)
}

/// After a push created flow `flow` (named `name`) from a document with `settings`: creates its
/// webhooks and callbacks (unless `no_webhooks`; HMAC secrets from `overlay`) and, with
/// `restore_state`, restores its state. `None` when the archive has no `flow.json` for it (an
/// archive made before flow settings existed) or nothing was asked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn restore_flow(
    platform: &dyn Platform,
    flow: FlowId,
    name: &str,
    settings: Option<&FlowSettings>,
    overlay: Option<&ResolvedOverlay>,
    source_url: &str,
    opts: &RestoreOptions,
    now: &str,
) -> Result<Option<FlowRestoreReport>, RestoreError> {
    let Some(settings) = settings else {
        return Ok(None);
    };
    if opts.no_webhooks && !opts.restore_state {
        return Ok(None);
    }
    let mut report = FlowRestoreReport::default();
    if !opts.no_webhooks {
        let secrets = webhook_secrets_for(name, settings, overlay);
        report.hooks = Some(create_hooks(platform, flow, settings, &secrets)?);
    }
    if opts.restore_state {
        let same = opts.same_environment(source_url);
        report.state = Some(restore_state(platform, flow, settings, same, now)?);
    }
    Ok(Some(report))
}

/// Creates on `flow` a webhook like `w` (status, format, body, then its HMAC algorithm): how a
/// replace and a rollback give a flow another flow's webhooks. An HMAC secret cannot be read
/// back, so none is set.
pub(crate) fn recreate_webhook(
    p: &dyn Platform,
    flow: FlowId,
    w: &Webhook,
) -> Result<Webhook, ClientError> {
    let created = p.create_webhook(
        flow,
        &WebhookRequest {
            status: Some(w.status.clone()),
            format: Some(w.format.clone()),
            body: Some(w.body.clone()),
            ..WebhookRequest::default()
        },
    )?;
    if w.hmac_algorithm.is_some() {
        p.update_webhook(
            flow,
            created.id,
            &WebhookRequest {
                hmac_algorithm: Some(w.hmac_algorithm.clone()),
                ..WebhookRequest::default()
            },
        )?;
    }
    Ok(created)
}

/// Creates on `flow` a callback like `c` (status, format).
pub(crate) fn recreate_callback(
    p: &dyn Platform,
    flow: FlowId,
    c: &Callback,
) -> Result<Callback, ClientError> {
    p.create_callback(
        flow,
        &CallbackRequest {
            status: Some(c.status.clone()),
            format: Some(c.format.clone()),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowpack_client::ImportRequest;
    use flowpack_core::archive::{Callback, Webhook};
    use flowpack_core::overlay::Overlay;
    use flowpack_sandbox::{Store, StoreOptions};

    const ORDER_SYNC: &str = include_str!("../fixtures/reference/export-v2-order-sync.json");
    const SECRET: &str = "hunter2-very-secret";
    const NOW: &str = "2026-11-29T12:00:00Z";

    fn store_with_flow() -> (Store, FlowId) {
        let store = Store::open_in_memory(StoreOptions::default()).unwrap();
        let flow = store
            .import_flow(&ImportRequest {
                document: serde_json::from_str(ORDER_SYNC).unwrap(),
                as_marketplace: false,
                idempotency_key: None,
            })
            .unwrap();
        (store, flow.id)
    }

    fn settings() -> FlowSettings {
        let mut s = FlowSettings::new(true, Some(8));
        s.priority = 1;
        s.prod_flag = true;
        s.remove_failed_payloads = true;
        s.layout_direction = "horizontal".into();
        s.labels = vec![4, 9];
        s.notification_groups = vec![2];
        s.webhooks.push(Webhook {
            body: Some("{\"order\": 1}".into()),
            ..Webhook::new("active", "json")
        });
        s.webhooks.push(Webhook {
            hmac_algorithm: Some("sha256".into()),
            has_hmac_secret_key: true,
            ..Webhook::new("inactive", "xml")
        });
        s.callbacks.push(Callback::new("failed", "json"));
        s.callbacks.push(Callback::new("succeeded", "csv"));
        s
    }

    #[test]
    fn hooks_are_created_in_order_with_the_hmac_set_by_an_update() {
        let (store, flow) = store_with_flow();
        let s = settings();
        let report = create_hooks(&store, flow, &s, &[(1, SECRET.into())]).unwrap();
        let hooks = store.list_webhooks(flow).unwrap();
        assert_eq!(hooks.len(), 2);
        assert_eq!(
            report.webhooks.iter().map(|w| w.id).collect::<Vec<_>>(),
            hooks.iter().map(|w| w.id).collect::<Vec<_>>()
        );
        assert_eq!(
            (hooks[0].status.as_str(), hooks[0].format.as_str()),
            ("active", "json")
        );
        assert_eq!(hooks[0].body.as_deref(), Some("{\"order\": 1}"));
        assert!(!hooks[0].has_hmac_secret_key);
        assert_eq!(hooks[0].hmac_algorithm, None);
        assert_eq!(
            (hooks[1].status.as_str(), hooks[1].format.as_str()),
            ("inactive", "xml")
        );
        assert_eq!(hooks[1].hmac_algorithm.as_deref(), Some("sha256"));
        assert!(hooks[1].has_hmac_secret_key);
        assert!(report.webhooks[1].hmac_secret_key);
        let callbacks = store.list_callbacks(flow).unwrap();
        assert_eq!(
            callbacks
                .iter()
                .map(|c| (c.status.as_str(), c.format.as_str()))
                .collect::<Vec<_>>(),
            [("failed", "json"), ("succeeded", "csv")]
        );
        assert_eq!(
            report.callbacks,
            callbacks.iter().map(|c| c.id).collect::<Vec<_>>()
        );
        assert!(!serde_json::to_string(&report).unwrap().contains(SECRET));
    }

    #[test]
    fn a_failed_hmac_update_deletes_the_new_webhook_and_everything_before_it() {
        let (store, flow) = store_with_flow();
        let s = settings();
        // The platform refuses a secret over 128 characters: the PUT fails after the POST.
        let long = "k".repeat(129);
        let err = create_hooks(&store, flow, &s, &[(1, long.clone())]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "flow {flow}: setting the HMAC of webhook 1 (new id "
            )),
            "{text}"
        );
        assert!(text.contains("undone: webhook"), "{text}");
        assert!(!text.contains(&long), "{text}");
        assert_eq!(err.category(), Category::Rejected);
        assert_eq!(store.list_webhooks(flow).unwrap(), vec![]);
        assert_eq!(store.list_callbacks(flow).unwrap(), vec![]);
    }

    #[test]
    fn a_webhook_secret_not_supplied_is_refused_before_any_write() {
        let (store, flow) = store_with_flow();
        let err = create_hooks(&store, flow, &settings(), &[]).unwrap_err();
        assert!(
            matches!(&err, RestoreError::MissingSecrets { missing } if missing.len() == 1),
            "{err}"
        );
        assert_eq!(store.list_webhooks(flow).unwrap(), vec![]);
    }

    #[test]
    fn missing_secrets_are_named_and_not_needed_without_webhooks() {
        let inputs = vec![
            Input::webhook_secret("Orders", 1),
            Input::webhook_secret("Billing", 0),
            Input::new("Orders", InputKind::Variable, "TOKEN", true),
        ];
        let overlay = Overlay::parse(
            "[flows.Orders.webhooks.1]\nhmac_secret_key = \"${env:S}\"\n",
            "prod.toml",
        )
        .unwrap()
        .resolve(&|_| Some(SECRET.into()))
        .unwrap();
        assert_eq!(
            missing_webhook_secrets(&inputs, Some(&overlay)),
            vec![Input::webhook_secret("Billing", 0)]
        );
        let err = check_webhook_secrets(&inputs, Some(&overlay), false).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(
                "the archive's webhooks need HMAC secret keys that no overlay supplies: flow \
                 \"Billing\" webhook 0;"
            ),
            "{text}"
        );
        assert!(text.contains("[flows.\"Billing\".webhooks.0]"), "{text}");
        assert!(!text.contains(SECRET));
        assert_eq!(err.category(), Category::Rejected);
        check_webhook_secrets(&inputs, Some(&overlay), true).unwrap();
        assert_eq!(inputs_to_check(&inputs, true), inputs[2..].to_vec());
        assert_eq!(inputs_to_check(&inputs, false), inputs);
        let s = settings();
        assert_eq!(
            webhook_secrets_for("Orders", &s, Some(&overlay)),
            vec![(1, SECRET.to_string())]
        );
        assert_eq!(webhook_secrets_for("Billing", &s, Some(&overlay)), vec![]);
    }

    #[test]
    fn state_is_restored_and_a_second_run_writes_nothing() {
        let (store, flow) = store_with_flow();
        let s = settings();
        store
            .update_flow_settings(
                flow,
                &FlowSettingsUpdate {
                    enabled_at: Some(None),
                    ..FlowSettingsUpdate::default()
                },
            )
            .unwrap();
        let report = restore_state(&store, flow, &s, true, NOW).unwrap();
        assert_eq!(report.deployed_iteration, Some(8));
        assert!(report.not_restored.is_empty(), "{report:?}");
        let deployed: Vec<i64> = store
            .list_versions(flow)
            .unwrap()
            .iter()
            .filter(|v| v.is_deployed)
            .map(|v| v.iteration)
            .collect();
        assert_eq!(deployed, [8]);
        let now = store.show_flow_settings(flow).unwrap();
        assert!(now.enabled_at.is_some());
        assert_eq!(now.priority, Some(1));
        assert!(now.prod_flag && now.remove_failed_payloads && !now.use_queued_time);
        assert_eq!(now.layout_direction.as_deref(), Some("horizontal"));
        assert_eq!(now.labels, [4, 9]);
        assert_eq!(now.notification_groups, [2]);
        let again = restore_state(&store, flow, &s, true, NOW).unwrap();
        assert_eq!(again.deployed_iteration, None);
        assert!(again.updated.is_empty(), "{again:?}");
        assert_eq!(store.show_flow_settings(flow).unwrap(), now);
    }

    #[test]
    fn another_environment_gets_no_labels_and_disabled_stays_disabled() {
        let (store, flow) = store_with_flow();
        let mut s = settings();
        s.enabled = false;
        let report = restore_state(&store, flow, &s, false, NOW).unwrap();
        assert_eq!(
            report.not_restored,
            [
                "labels [4, 9]: ids of the environment the archive came from",
                "notification_groups [2]: ids of the environment the archive came from"
            ]
        );
        let now = store.show_flow_settings(flow).unwrap();
        assert_eq!(now.enabled_at, None);
        assert!(now.labels.is_empty() && now.notification_groups.is_empty());
        assert!(!report.enabled);
    }

    #[test]
    fn an_unknown_deployed_iteration_is_named() {
        let (store, flow) = store_with_flow();
        let s = FlowSettings::new(true, Some(42));
        let err = restore_state(&store, flow, &s, true, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "flow {flow}: the archive's deployed iteration 42 is not among the flow's \
                 versions (iterations [7, 8])"
            )
        );
    }
}
