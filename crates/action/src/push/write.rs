//! The writing phase of a push: imports prepared ahead, then per flow create, converge or
//! replace, recorded in the history as it goes.

use super::*;

/// What the writing phase shares.
pub(super) struct Ctx<'a> {
    pub(super) platform: &'a dyn Platform,
    pub(super) opts: &'a PushOptions,
    /// The flows' `flow.json`, by the export document's entry path.
    pub(super) settings: BTreeMap<String, FlowSettings>,
    /// Where the archive came from (labels and notification groups restore only there).
    pub(super) source_url: String,
    pub(super) manifest_sha256: String,
    pub(super) as_marketplace: bool,
    pub(super) existing_ids: BTreeSet<FlowId>,
    pub(super) recorder: &'a Recorder,
    pub(super) warnings: Mutex<Vec<String>>,
    /// The archive, read again for each flow imported.
    pub(super) source: &'a Source,
    /// Imports prepared ahead of the writers.
    pub(super) ahead: Ahead<'a>,
    /// What makes this attempt's idempotency keys its own: the start time, and the record's
    /// nonce when recorded (a push run again in the same second, as `recover --forward` does,
    /// must not get the platform's replay of the interrupted attempt's imports).
    pub(super) attempt: String,
    /// The parse budget of replaced flows' exports stripped of their secrets for the history
    /// (its own, so that a writer holding its import's share never waits on the other budget).
    pub(super) strip_budget: ParseBudget,
}

/// What the writing phase does with one flow, from its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// The plan already failed.
    Fail,
    /// Unchanged: converge its state.
    Converge,
    /// A conflict skipped.
    Skip,
    /// The cut-over.
    Replace,
    /// Imported as new (`create`, `duplicate`).
    Create,
}

impl Step {
    pub(super) fn of(f: &FlowReport, on_conflict: OnConflict, live: Option<&LiveFlow>) -> Step {
        if f.error.is_some() {
            return Step::Fail;
        }
        match (f.plan, on_conflict, live) {
            (Plan::Unchanged, _, Some(_)) => Step::Converge,
            (Plan::Conflict, OnConflict::Skip, _) => Step::Skip,
            (Plan::Replace, _, Some(_)) => Step::Replace,
            _ => Step::Create,
        }
    }

    pub(super) fn imports(self) -> bool {
        matches!(self, Step::Replace | Step::Create)
    }
}

/// An import request ready to send, with the share of the parse budget it holds.
pub(super) type PreparedImport<'s> = Result<(ImportRequest, Permit<'s>), StepError>;

/// Import requests prepared ahead of the writers by [`PREPARERS`] threads ([`Ahead::prepare`],
/// taking the flows in order), so reading, parsing and serialising a flow overlaps the requests
/// in flight instead of adding to each. The preparers run at most `lookahead` flows ahead of
/// the writers (and within the parse budget); each writer first marks its flow started, then
/// takes the flow's prepared import before any step that could fail, so every prepared import
/// is taken and its share freed.
pub(super) struct Ahead<'s> {
    pub(super) state: Mutex<AheadState<'s>>,
    pub(super) changed: std::sync::Condvar,
    pub(super) lookahead: usize,
    /// The next item a preparer takes.
    next: AtomicUsize,
}

/// How many threads prepare imports: two, so that preparing keeps up with the writers on a
/// busy machine too (one preparer was the slowest part of a push whose CPU share was small).
pub(super) const PREPARERS: usize = 2;

pub(super) struct AheadState<'s> {
    pub(super) ready: BTreeMap<usize, PreparedImport<'s>>,
    /// The writers have started every flow before this index.
    pub(super) started: usize,
    /// Preparers that stopped (done, or panicked); when all have, what is not ready now never
    /// will be.
    pub(super) stopped: usize,
    /// The phase is over: nobody waits any more, prepared imports left were dropped (their
    /// shares freed).
    pub(super) closed: bool,
}

impl<'s> Ahead<'s> {
    pub(super) fn new(lookahead: usize) -> Ahead<'s> {
        Ahead {
            state: Mutex::new(AheadState {
                ready: BTreeMap::new(),
                started: 0,
                stopped: 0,
                closed: false,
            }),
            changed: std::sync::Condvar::new(),
            lookahead: lookahead.max(1),
            next: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AheadState<'s>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Prepares imports of `items` (work index, candidate), taking the next one not taken by
    /// another preparer, in index order. Marks itself stopped when it returns, even by a
    /// panic, so no writer waits for it forever.
    pub(super) fn prepare(&self, ctx: &Ctx<'s>, items: &[(usize, &Candidate)]) {
        let _done = Done(self);
        while let Some(&(i, c)) = items.get(self.next.fetch_add(1, Ordering::Relaxed)) {
            {
                let mut state = self.lock();
                while i >= state.started + self.lookahead && !state.closed {
                    state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                if state.closed {
                    return;
                }
            }
            let prepared = import_request(ctx, c);
            let mut state = self.lock();
            if state.closed {
                return;
            }
            state.ready.insert(i, prepared);
            drop(state);
            self.changed.notify_all();
        }
    }

    /// Marks flow `i` started: the preparer may run ahead of it.
    pub(super) fn start(&self, i: usize) {
        let mut state = self.lock();
        state.started = state.started.max(i + 1);
        drop(state);
        self.changed.notify_all();
    }

    /// Flow `i`'s prepared import, waiting for it (an error if the preparer stopped without
    /// preparing it).
    pub(super) fn take(&self, i: usize) -> PreparedImport<'s> {
        let mut state = self.lock();
        loop {
            if let Some(prepared) = state.ready.remove(&i) {
                return prepared;
            }
            if state.stopped == PREPARERS || state.closed {
                return Err(StepError::Local(
                    "the flow's import was not prepared (the preparing thread stopped)".into(),
                ));
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Ends the phase: wakes everyone waiting and frees the shares of imports left prepared.
    pub(super) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let left = std::mem::take(&mut state.ready);
        drop(state);
        drop(left);
        self.changed.notify_all();
    }
}

/// Marks one of an [`Ahead`]'s preparers stopped when dropped.
struct Done<'a, 's>(&'a Ahead<'s>);

impl Drop for Done<'_, '_> {
    fn drop(&mut self) {
        self.0.lock().stopped += 1;
        self.0.changed.notify_all();
    }
}

/// Ends the writing phase when dropped, also when a writer panicked: the saver saves the record
/// and stops, the preparer stops, so the phase's threads can all be joined.
pub(super) struct EndOfPhase<'a, 'c>(pub(super) &'a Ctx<'c>);

impl Drop for EndOfPhase<'_, '_> {
    fn drop(&mut self) {
        self.0.recorder.stop();
        self.0.ahead.close();
    }
}

/// Why one flow's writes stopped.
pub(super) enum StepError {
    Client(ClientError),
    History(String),
    Restore(String),
    /// The archive's flow could not be read again (changed on disk since it was verified).
    Local(String),
}

impl From<ClientError> for StepError {
    fn from(e: ClientError) -> StepError {
        StepError::Client(e)
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Client(e) => e.fmt(f),
            StepError::History(e) | StepError::Restore(e) | StepError::Local(e) => f.write_str(e),
        }
    }
}

/// Writes one flow as planned; returns an authentication failure (which stops the push).
pub(super) fn execute(
    ctx: &Ctx<'_>,
    index: usize,
    c: &Candidate,
    f: &mut FlowReport,
    live: Option<&LiveFlow>,
) -> Option<ClientError> {
    let step = Step::of(f, ctx.opts.on_conflict, live);
    ctx.ahead.start(index);
    // Taken first, whatever happens next: a prepared import left behind would keep its share
    // of the parse budget.
    let prepared = step.imports().then(|| ctx.ahead.take(index));
    let result = match (step, live, prepared) {
        (Step::Fail, _, _) => {
            f.outcome = Outcome::Failed;
            return None;
        }
        (Step::Converge, Some(live), _) => {
            f.outcome = Outcome::Unchanged;
            f.id = f.existing_id;
            converge(ctx, c, f, live)
        }
        (Step::Skip, _, _) => {
            f.outcome = Outcome::Skipped;
            Ok(())
        }
        (Step::Replace, Some(live), Some(prepared)) => replace(ctx, c, f, live, prepared),
        (_, _, Some(prepared)) => create(ctx, c, f, prepared),
        (step, _, None) => unreachable!("{step:?} needs no import"),
    };
    match result {
        Ok(()) => None,
        Err(e) => {
            if f.outcome != Outcome::RolledBack {
                f.outcome = Outcome::Failed;
            }
            if f.error.is_none() {
                f.error = Some(e.to_string());
            }
            match e {
                StepError::Client(ClientError::Unauthenticated { request }) => {
                    Some(ClientError::Unauthenticated { request })
                }
                _ => None,
            }
        }
    }
}

/// Imports a flow as new (`create`, `duplicate`), then deploys and enables it as asked.
pub(super) fn create<'s>(
    ctx: &Ctx<'s>,
    c: &Candidate,
    f: &mut FlowReport,
    prepared: PreparedImport<'s>,
) -> Result<(), StepError> {
    let flow = {
        let (request, _permit) = prepared?;
        import_one(ctx.platform, &request, &c.name, &ctx.existing_ids)?
    };
    f.id = Some(flow.id);
    ctx.recorder
        .add(Entry::Created {
            id: flow.id,
            name: c.name.clone(),
        })
        .map_err(StepError::History)?;
    let versions = versions_of(ctx.platform, &flow)?;
    if ctx.opts.deploy
        && let Some(v) = deploy_target(&versions, c.deployed_iteration)
    {
        ctx.platform.deploy_version(flow.id, v.id, &ctx.opts.now)?;
        f.deployed_version = Some(v.id);
    }
    if ctx.opts.enable {
        set_enabled(ctx.platform, flow.id, Some(ctx.opts.now.clone()))?;
        f.enabled = true;
    }
    // Webhooks, callbacks and state from flow.json; a failure leaves the flow created but not
    // completely restored, and says so.
    f.restored = crate::restore::restore_flow(
        ctx.platform,
        flow.id,
        &c.name,
        ctx.settings.get(c.path()),
        ctx.opts.overlay.as_ref(),
        &ctx.source_url,
        &ctx.opts.restore,
        &ctx.opts.now,
    )
    .map_err(|e| StepError::Restore(e.to_string()))?;
    f.outcome = if f.plan == Plan::Conflict {
        Outcome::Duplicated
    } else {
        Outcome::Created
    };
    Ok(())
}

/// Brings an unchanged flow's state to what `--deploy`/`--enable` ask, then (with
/// `--restore-state`) to what the archive's `flow.json` holds, writing only what differs.
pub(super) fn converge(
    ctx: &Ctx<'_>,
    c: &Candidate,
    f: &mut FlowReport,
    live: &LiveFlow,
) -> Result<(), StepError> {
    converge_flags(ctx, c, f, live)?;
    converge_settings(ctx, c, f, live)
}

/// `--deploy` and `--enable` on an unchanged flow.
fn converge_flags(
    ctx: &Ctx<'_>,
    c: &Candidate,
    f: &mut FlowReport,
    live: &LiveFlow,
) -> Result<(), StepError> {
    let opts = ctx.opts;
    if !opts.deploy && !opts.enable {
        return Ok(());
    }
    let flow = &live.flow;
    let versions = versions_of(ctx.platform, flow)?;
    let deployed_before = versions.iter().find(|v| v.is_deployed).map(|v| v.iteration);
    let deploy = if opts.deploy {
        deploy_target(&versions, c.deployed_iteration).filter(|v| !v.is_deployed)
    } else {
        None
    };
    let enable = opts.enable && flow.enabled_at.is_none();
    if deploy.is_none() && !enable {
        return Ok(());
    }
    ctx.recorder
        .add(Entry::State {
            id: flow.id,
            name: c.name.clone(),
            enabled_at_before: flow.enabled_at.clone(),
            enabled_changed: enable,
            deployed_before,
            deployed_changed: deploy.is_some(),
        })
        .map_err(StepError::History)?;
    if let Some(v) = deploy {
        ctx.platform.deploy_version(flow.id, v.id, &opts.now)?;
        f.deployed_version = Some(v.id);
    }
    if enable {
        set_enabled(ctx.platform, flow.id, Some(opts.now.clone()))?;
        f.enabled = true;
    }
    Ok(())
}

/// `--restore-state` on an unchanged flow: its state made what the archive's `flow.json` says
/// (the deployed iteration, enabled, priority, the flags, the layout direction, and labels and
/// notification groups in the environment the archive came from). The settings before are
/// recorded first, so a rollback writes them back. Nothing is written, recorded or reported
/// when the state is already that.
fn converge_settings(
    ctx: &Ctx<'_>,
    c: &Candidate,
    f: &mut FlowReport,
    live: &LiveFlow,
) -> Result<(), StepError> {
    let opts = ctx.opts;
    let Some(settings) = ctx
        .settings
        .get(c.path())
        .filter(|_| opts.restore.restore_state)
    else {
        return Ok(());
    };
    let restore = |e: RestoreError| StepError::Restore(e.to_string());
    let same = opts.restore.same_environment(&ctx.source_url);
    let id = live.flow.id;
    let plan = plan_state(ctx.platform, id, settings, same, &opts.now).map_err(restore)?;
    // A flow whose state is already the archive's is not mentioned (what cannot be restored
    // into another environment was said when the state was first written).
    let writes = !plan.writes_nothing();
    if writes {
        ctx.recorder
            .add(Entry::Settings(Box::new(SettingsChange::new(
                id,
                &c.name,
                plan.before.clone(),
                plan.fields().to_vec(),
                plan.deployed_before,
                plan.deploys(),
            ))))
            .map_err(StepError::History)?;
    }
    let state = apply_state(ctx.platform, id, plan).map_err(restore)?;
    if writes {
        f.restored = Some(FlowRestoreReport::state_only(state));
    }
    Ok(())
}

/// The cut-over of one flow (see the module docs): reads and the history entry first, then
/// the new flow prepared beside the old one, then the cut-over; a failure before the cut-over
/// deletes the new flow, one during it undoes it.
pub(super) fn replace<'s>(
    ctx: &Ctx<'s>,
    c: &Candidate,
    f: &mut FlowReport,
    live: &LiveFlow,
    prepared: PreparedImport<'s>,
) -> Result<(), StepError> {
    let old = &live.flow;
    let (request, _permit) = prepared?;
    let before = read_old(ctx, c, old)?;

    // 1. The new flow, disabled.
    let new = match import_one(ctx.platform, &request, &c.name, &ctx.existing_ids) {
        Ok(new) => new,
        Err(e) => {
            f.error = Some(format!(
                "{e}; before the cut-over: the old flow {} is untouched",
                old.id
            ));
            return Err(StepError::Client(e));
        }
    };
    f.id = Some(new.id);
    ctx.recorder
        .replaced(before.index, |r| r.new_id = Some(new.id));
    let cut = Cutover {
        ctx,
        c,
        old,
        new: &new,
        index: before.index,
    };
    let mut rep = ReplaceReport {
        old_id: old.id,
        renamed_to: None,
        pruned: false,
        webhooks: Vec::new(),
        callbacks: Vec::new(),
    };
    // 2. Deploy, 3. webhooks and callbacks.
    if let Err(e) = cut.prepare_new(f, &mut rep, before) {
        cut.abandon_new(f, &e);
        return Err(e);
    }
    // 4. The cut-over: disable old → enable new → rename (or delete) old.
    let mut old_disabled = false;
    if let Err(e) = cut.switch(f, &mut rep, &mut old_disabled) {
        cut.undo(f, old_disabled, &e);
        return Err(StepError::Client(e));
    }
    f.replaced = Some(rep);
    f.outcome = Outcome::Replaced;
    Ok(())
}

/// What a replace read of the old flow before writing anything, and the index of its history
/// entry.
struct OldFlow {
    index: Option<usize>,
    deployed: Option<i64>,
    webhooks: Vec<flowpack_client::Webhook>,
    callbacks: Vec<flowpack_client::Callback>,
}

/// The old flow's export with every secret value stripped (as packing strips them), and any
/// value the overlay supplies as a secret blanked wherever it stands: what the history keeps of
/// a flow the push deletes, and the inputs a re-import needs again.
fn stripped_export(
    ctx: &Ctx<'_>,
    c: &Candidate,
    old: &Flow,
) -> Result<(DocumentText, Vec<Input>), StepError> {
    let decode = |message: String| ClientError::Decode {
        request: format!("POST /api/v1/flows/export (flow {})", old.id),
        message,
    };
    let bytes = ctx.platform.export_flow_bytes(old.id)?;
    let shown = format!("flow {} ({:?}) of the target", old.id, old.name);
    let (mut doc, _permit) =
        Document::parse_within(&bytes, &shown, &ctx.source.bound, &ctx.strip_budget)
            .map_err(|e| decode(e.to_string()))?;
    drop(bytes);
    let inputs = flowpack_core::archive::strip_document_secrets(&mut doc, &c.name);
    let mut value = doc.into_value();
    if let Some(overlay) = &ctx.opts.overlay {
        blank_values(&mut value, &overlay_secrets(overlay.overlay()));
    }
    let text = serde_json::to_string(&value).expect("a JSON value serialises");
    let text = DocumentText::from_json(text).map_err(|e| decode(e.to_string()))?;
    Ok((text, inputs))
}

/// Every value an overlay sets as a secret (credentials, secret variables, webhook HMAC keys).
pub(crate) fn overlay_secrets(o: &overlay::Overlay) -> BTreeSet<&str> {
    let flows = o.flows.values();
    o.secrets
        .values()
        .chain(o.variables.values().filter(|v| v.secret))
        .chain(
            flows
                .clone()
                .flat_map(|f| f.variables.values().filter(|v| v.secret)),
        )
        .chain(flows.flat_map(|f| f.webhooks.values()))
        .map(|v| v.value.as_str())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Blanks every string in `value` equal to one of `secrets`.
pub(crate) fn blank_values(value: &mut Value, secrets: &BTreeSet<&str>) {
    match value {
        Value::String(s) if secrets.contains(s.as_str()) => s.clear(),
        Value::Array(items) => items.iter_mut().for_each(|v| blank_values(v, secrets)),
        Value::Object(map) => map.values_mut().for_each(|v| blank_values(v, secrets)),
        _ => {}
    }
}

/// Reads first (a failure here writes nothing), then records the replace. A flow the push will
/// delete (`--prune-replaced`) has its export kept, stripped of secrets, read now (not kept from
/// the plan): what rollback re-imports is the flow as it was at the cut-over.
fn read_old(ctx: &Ctx<'_>, c: &Candidate, old: &Flow) -> Result<OldFlow, StepError> {
    let p = ctx.platform;
    let (old_document, old_inputs) = if ctx.opts.prune_replaced {
        let (doc, inputs) = stripped_export(ctx, c, old)?;
        (Some(doc), inputs)
    } else {
        (None, Vec::new())
    };
    let deployed = versions_of(p, old)?
        .iter()
        .find(|v| v.is_deployed)
        .map(|v| v.iteration);
    let webhooks = p.list_webhooks(old.id)?;
    let callbacks = p.list_callbacks(old.id)?;
    let index = ctx
        .recorder
        .add(Entry::Replaced(Box::new(Replaced {
            name: c.name.clone(),
            old_id: old.id,
            old_enabled_at: old.enabled_at.clone(),
            old_deployed_iteration: deployed,
            old_document,
            old_inputs,
            old_webhooks: webhooks.clone(),
            old_callbacks: callbacks.clone(),
            new_id: None,
            webhooks: Vec::new(),
            callbacks: Vec::new(),
            old_disabled: false,
            renamed_to: None,
            pruned: false,
        })))
        .map_err(StepError::History)?;
    Ok(OldFlow {
        index,
        deployed,
        webhooks,
        callbacks,
    })
}

/// One replace after its new flow was imported.
struct Cutover<'c, 's> {
    ctx: &'c Ctx<'s>,
    c: &'c Candidate,
    old: &'c Flow,
    new: &'c Flow,
    /// The replace's history entry.
    index: Option<usize>,
}

impl Cutover<'_, '_> {
    /// Deploys the new flow (when the old one had a deployed version, or as asked) and gives it
    /// webhooks and callbacks: from the archive's `flow.json` when it has one, else the old
    /// flow's; never both, and none when webhooks are left out.
    fn prepare_new(
        &self,
        f: &mut FlowReport,
        rep: &mut ReplaceReport,
        before: OldFlow,
    ) -> Result<(), StepError> {
        let (p, opts) = (self.ctx.platform, self.ctx.opts);
        if before.deployed.is_some() || opts.deploy {
            let versions = versions_of(p, self.new)?;
            if let Some(v) = deploy_target(&versions, self.c.deployed_iteration) {
                p.deploy_version(self.new.id, v.id, &opts.now)?;
                f.deployed_version = Some(v.id);
            }
        }
        if opts.restore.no_webhooks {
            return Ok(());
        }
        match self.ctx.settings.get(self.c.path()) {
            Some(settings) => {
                let secrets = crate::restore::webhook_secrets_for(
                    &self.c.name,
                    settings,
                    opts.overlay.as_ref(),
                );
                let hooks = crate::restore::create_hooks(p, self.new.id, settings, &secrets)
                    .map_err(|e| StepError::Restore(e.to_string()))?;
                // Which old webhook each new one takes over (same status, format and body, in
                // order), so the report says old → new as when the old flow's are copied.
                rep.webhooks = pair_webhooks(&before.webhooks, settings, &hooks);
                rep.callbacks = pair_callbacks(&before.callbacks, settings, &hooks);
                let (webhooks, callbacks) = (rep.webhooks.clone(), rep.callbacks.clone());
                self.ctx.recorder.replaced(self.index, |r| {
                    r.webhooks = webhooks;
                    r.callbacks = callbacks;
                });
                f.restored = Some(crate::restore::FlowRestoreReport::hooks_only(hooks));
            }
            None => {
                self.copy_webhooks(rep, &before.webhooks)?;
                self.copy_callbacks(rep, &before.callbacks)?;
            }
        }
        Ok(())
    }

    /// The old flow's webhooks, recreated on the new one (HMAC secrets cannot be read back:
    /// each needing one is a warning).
    fn copy_webhooks(
        &self,
        rep: &mut ReplaceReport,
        webhooks: &[flowpack_client::Webhook],
    ) -> Result<(), StepError> {
        for w in webhooks {
            let created = crate::restore::recreate_webhook(self.ctx.platform, self.new.id, w)?;
            let pair = IdPair {
                old: w.id,
                new: created.id,
            };
            rep.webhooks.push(pair);
            self.ctx
                .recorder
                .replaced(self.index, |r| r.webhooks.push(pair));
            if w.has_hmac_secret_key {
                self.ctx.warnings.lock().expect("no panic").push(format!(
                    "flow {:?}: webhook {} (was {}) needs its HMAC secret key set again: secrets cannot be read back",
                    self.c.name, created.id, w.id
                ));
            }
        }
        Ok(())
    }

    /// The old flow's callbacks, recreated on the new one.
    fn copy_callbacks(
        &self,
        rep: &mut ReplaceReport,
        callbacks: &[flowpack_client::Callback],
    ) -> Result<(), StepError> {
        for cb in callbacks {
            let created = crate::restore::recreate_callback(self.ctx.platform, self.new.id, cb)?;
            let pair = IdPair {
                old: cb.id,
                new: created.id,
            };
            rep.callbacks.push(pair);
            self.ctx
                .recorder
                .replaced(self.index, |r| r.callbacks.push(pair));
        }
        Ok(())
    }

    /// Deletes the new flow after a failure before the cut-over; the old one is untouched.
    fn abandon_new(&self, f: &mut FlowReport, e: &StepError) {
        f.deployed_version = None;
        let cleanup = delete_if_present(self.ctx.platform, self.new.id);
        if cleanup.is_ok() {
            self.forget_new();
        }
        f.error = Some(match cleanup {
            Ok(()) => format!(
                "{e}; before the cut-over: the new flow {} was deleted, the old flow {} is untouched",
                self.new.id, self.old.id
            ),
            Err(d) => format!(
                "{e}; before the cut-over: deleting the new flow {} failed too ({d}): `flowpack rollback` removes it; the old flow {} is untouched",
                self.new.id, self.old.id
            ),
        });
    }

    /// The history entry no longer names the (deleted) new flow and its hooks.
    fn forget_new(&self) {
        self.ctx.recorder.replaced(self.index, |r| {
            r.new_id = None;
            r.webhooks.clear();
            r.callbacks.clear();
        });
    }

    /// Disables the old flow (when enabled), enables the new one (when the old one was enabled,
    /// or as asked), then renames the old one `<name> (replaced …)` or deletes it.
    fn switch(
        &self,
        f: &mut FlowReport,
        rep: &mut ReplaceReport,
        old_disabled: &mut bool,
    ) -> Result<(), ClientError> {
        let (p, opts, old, index) = (self.ctx.platform, self.ctx.opts, self.old, self.index);
        let old_enabled = old.enabled_at.is_some();
        if old_enabled {
            set_enabled(p, old.id, None)?;
            *old_disabled = true;
            self.ctx.recorder.replaced(index, |r| r.old_disabled = true);
        }
        if old_enabled || opts.enable {
            set_enabled(p, self.new.id, Some(opts.now.clone()))?;
            f.enabled = true;
        }
        if opts.prune_replaced {
            p.delete_flow(old.id)?;
            rep.pruned = true;
            self.ctx.recorder.replaced(index, |r| r.pruned = true);
        } else {
            let name = replaced_name(&self.c.name, &opts.now);
            p.update_flow_settings(
                old.id,
                &FlowSettingsUpdate {
                    name: Some(name.clone()),
                    ..FlowSettingsUpdate::default()
                },
            )?;
            rep.renamed_to = Some(name.clone());
            self.ctx
                .recorder
                .replaced(index, |r| r.renamed_to = Some(name));
        }
        Ok(())
    }

    /// Undoes a failed cut-over: the new flow goes first (disable before enable), then the old
    /// one is enabled again.
    fn undo(&self, f: &mut FlowReport, old_disabled: bool, e: &ClientError) {
        let (p, old, new) = (self.ctx.platform, self.old, self.new);
        f.enabled = false;
        f.deployed_version = None;
        let mut undo = delete_if_present(p, new.id).map(|()| self.forget_new());
        if undo.is_ok() && old_disabled {
            undo = set_enabled(p, old.id, old.enabled_at.clone()).map(|()| {
                self.ctx
                    .recorder
                    .replaced(self.index, |r| r.old_disabled = false)
            });
        }
        f.error = Some(match undo {
            Ok(()) => {
                f.outcome = Outcome::RolledBack;
                format!(
                    "{e}; the cut-over was undone: the new flow {} was deleted{}",
                    new.id,
                    if old_disabled {
                        format!(" and the old flow {} enabled again", old.id)
                    } else {
                        format!(", the old flow {} is as it was", old.id)
                    }
                )
            }
            Err(u) => format!(
                "{e}; undoing the cut-over failed too ({u}): run `flowpack rollback` to finish it"
            ),
        });
    }
}

/// The import of `c`: its document read and prepared again, with the share of the parse budget
/// it holds until the request is dropped.
pub(super) fn import_request<'s>(
    ctx: &Ctx<'s>,
    c: &Candidate,
) -> Result<(ImportRequest, Permit<'s>), StepError> {
    let prepared = ctx
        .source
        .prepare(ctx.opts, &c.record, &c.name, 1)
        .map_err(StepError::Local)?;
    let document = prepared.document.into_value();
    let key = idempotency_key(&ctx.manifest_sha256, c.path(), &ctx.attempt, &document);
    Ok((
        ImportRequest {
            document,
            as_marketplace: ctx.as_marketplace,
            idempotency_key: Some(key),
        },
        prepared.permit,
    ))
}

/// A flow's versions: from the flow when it came with them, else listed.
pub(crate) fn versions_of(
    platform: &dyn Platform,
    flow: &Flow,
) -> Result<Vec<FlowVersion>, ClientError> {
    match &flow.versions {
        Some(v) if !v.is_empty() => Ok(v.clone()),
        _ => platform.list_versions(flow.id),
    }
}

/// The version to deploy: the archive's deployed iteration, else the draft.
pub(super) fn deploy_target(
    versions: &[FlowVersion],
    iteration: Option<i64>,
) -> Option<&FlowVersion> {
    iteration
        .and_then(|it| versions.iter().find(|v| v.iteration == it))
        .or_else(|| versions.iter().find(|v| v.status == "Draft"))
}

/// Enables (`Some(time)`) or disables (`None`) a flow.
pub(crate) fn set_enabled(
    platform: &dyn Platform,
    flow: FlowId,
    enabled_at: Option<String>,
) -> Result<(), ClientError> {
    platform
        .update_flow(
            flow,
            &FlowUpdate {
                enabled_at: Some(enabled_at),
                priority: None,
            },
        )
        .map(|_| ())
}

/// Deletes a flow; one already gone is fine.
pub(crate) fn delete_if_present(platform: &dyn Platform, flow: FlowId) -> Result<(), ClientError> {
    match platform.delete_flow(flow) {
        Ok(()) | Err(ClientError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Imports one flow; after a transport failure, takes a flow of that name that appeared since
/// the plan, else retries.
pub(super) fn import_one(
    platform: &dyn Platform,
    request: &ImportRequest,
    name: &str,
    existing: &BTreeSet<FlowId>,
) -> Result<Flow, ClientError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match platform.import_flow(request) {
            Err(ClientError::Transport { .. }) if attempt < 3 => {
                if let Ok(found) = find_by_name(platform, name)
                    && let Some(landed) = found.into_iter().find(|f| !existing.contains(&f.id))
                {
                    return platform.show_flow(landed.id);
                }
            }
            other => return other,
        }
    }
}

/// The writing phase: every flow's step on up to `jobs` threads, with the history saver and
/// the import preparer beside them; the flows' reports replace the plan's in `report`. The
/// platform refusing the API key is the one error returned (after every flow was tried).
pub(super) fn write_all(
    ctx: Ctx<'_>,
    candidates: &[Candidate],
    lives: &[Option<LiveFlow>],
    report: &mut PushReport,
) -> Result<(), PushError> {
    let opts = ctx.opts;
    let work: Vec<(&Candidate, &FlowReport, &Option<LiveFlow>)> = candidates
        .iter()
        .zip(report.flows.iter())
        .zip(lives.iter())
        .map(|((c, f), l)| (c, f, l))
        .collect();
    let imports: Vec<(usize, &Candidate)> = work
        .iter()
        .enumerate()
        .filter(|(_, (_, f, live))| Step::of(f, opts.on_conflict, live.as_ref()).imports())
        .map(|(i, (c, _, _))| (i, *c))
        .collect();
    let counts = Counts::default();
    let done = std::thread::scope(|s| {
        s.spawn(|| ctx.recorder.saver());
        for _ in 0..PREPARERS {
            s.spawn(|| ctx.ahead.prepare(&ctx, &imports));
        }
        // When the writers are done (or one panicked): the saver writes the finished record and
        // stops, the preparer stops, then the scope ends.
        let _end = EndOfPhase(&ctx);
        parallel(&work, opts.jobs, |i, (c, f, live)| {
            let mut f = (*f).clone();
            let unauthenticated = execute(&ctx, i, c, &mut f, live.as_ref());
            if f.error.is_none() && f.outcome != Outcome::Skipped {
                ctx.recorder.flow_done(&c.name);
            }
            counts.tell(opts, &f, work.len());
            (f, unauthenticated)
        })
    });
    let mut unauthenticated = None;
    report.flows = done
        .into_iter()
        .map(|(f, u)| {
            if unauthenticated.is_none() {
                unauthenticated = u;
            }
            f
        })
        .collect();
    report
        .warnings
        .extend(ctx.warnings.into_inner().expect("no panic"));
    match unauthenticated {
        Some(e) => Err(PushError::Client(e)),
        None => Ok(()),
    }
}

/// The writing phase's counts, for the progress display.
#[derive(Default)]
struct Counts {
    done: AtomicUsize,
    replaced: AtomicUsize,
    failed: AtomicUsize,
}

impl Counts {
    /// Counts flow `f` as written and tells the caller.
    fn tell(&self, opts: &PushOptions, f: &FlowReport, total: usize) {
        let Some(progress) = &opts.progress else {
            return;
        };
        let replaced = usize::from(f.outcome == Outcome::Replaced);
        let failed = usize::from(matches!(f.outcome, Outcome::Failed | Outcome::RolledBack));
        progress(PushProgress {
            phase: PushPhase::Writing,
            done: self.done.fetch_add(1, Ordering::Relaxed) + 1,
            total,
            replaced: self.replaced.fetch_add(replaced, Ordering::Relaxed) + replaced,
            failed: self.failed.fetch_add(failed, Ordering::Relaxed) + failed,
        });
    }
}

/// The old flow's webhook each webhook created from `flow.json` takes over: the first one not
/// taken yet with the same status, format and body.
fn pair_webhooks(
    old: &[flowpack_client::Webhook],
    settings: &FlowSettings,
    hooks: &crate::restore::HooksReport,
) -> Vec<IdPair> {
    let mut taken = vec![false; old.len()];
    hooks
        .webhooks
        .iter()
        .filter_map(|created| {
            let want = settings.webhooks.get(created.position)?;
            let (i, w) = old.iter().enumerate().find(|(i, w)| {
                !taken[*i]
                    && w.status == want.status
                    && w.format == want.format
                    && w.body == want.body
            })?;
            taken[i] = true;
            Some(IdPair {
                old: w.id,
                new: created.id,
            })
        })
        .collect()
}

/// The old flow's callback each callback created from `flow.json` takes over (same status and
/// format, in order).
fn pair_callbacks(
    old: &[flowpack_client::Callback],
    settings: &FlowSettings,
    hooks: &crate::restore::HooksReport,
) -> Vec<IdPair> {
    let mut taken = vec![false; old.len()];
    hooks
        .callbacks
        .iter()
        .zip(&settings.callbacks)
        .filter_map(|(new, want)| {
            let (i, c) = old
                .iter()
                .enumerate()
                .find(|(i, c)| !taken[*i] && c.status == want.status && c.format == want.format)?;
            taken[i] = true;
            Some(IdPair {
                old: c.id,
                new: *new,
            })
        })
        .collect()
}
