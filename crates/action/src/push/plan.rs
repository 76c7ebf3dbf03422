//! The plan of a push: each flow against the live flows of its name.

use super::*;

/// The live flow a plan compared with (unchanged, replace).
pub(super) struct LiveFlow {
    pub(super) flow: Flow,
}

/// Plans one flow against the live flows of its name: the archive's document is read and
/// prepared again only when live flows of its name exist, and held only while they are compared.
pub(super) fn plan_one(
    platform: &dyn Platform,
    source: &Source,
    c: &Candidate,
    matches: &[&Flow],
    opts: &PushOptions,
) -> Result<(FlowReport, Option<LiveFlow>), ClientError> {
    let mut report = FlowReport {
        name: c.name.clone(),
        path: c.path().to_string(),
        plan: Plan::Create,
        outcome: Outcome::Planned,
        existing_id: None,
        id: None,
        changes: Vec::new(),
        duplicates: Vec::new(),
        deployed_version: None,
        enabled: false,
        replaced: None,
        restored: None,
        error: None,
    };
    if matches.is_empty() {
        return Ok((report, None));
    }
    // Several live flows of the name: which one is "the" flow is not ours to guess.
    if matches.len() > 1 {
        report.plan = Plan::Duplicate;
        report.outcome = Outcome::Failed;
        report.duplicates = matches.iter().map(|f| f.id).collect();
        let ids: Vec<String> = report.duplicates.iter().map(u64::to_string).collect();
        report.error = Some(format!(
            "{} live flows named {:?} exist in the target (ids {}): rename or delete all but one",
            matches.len(),
            c.name,
            ids.join(", ")
        ));
        return Ok((report, None));
    }
    // Charged twice: the live flow's export is held beside it while they are compared.
    let prepared = source.prepare(opts, &c.record, &c.name, 2).and_then(|p| {
        normalise_owned(p.document, &entry_origin(&source.origin, c.path()))
            .map(|n| (n, p.permit))
            .map_err(|e| e.to_string())
    });
    let (normalised, _permit) = match prepared {
        Ok(n) => n,
        Err(e) => {
            report.outcome = Outcome::Failed;
            report.error = Some(e);
            return Ok((report, None));
        }
    };
    let mut first: Option<(Flow, Vec<Change>)> = None;
    for flow in matches {
        let document = platform.export_flow_bytes(flow.id)?;
        let shown = format!("flow {} ({:?}) of the target", flow.id, flow.name);
        // Under the same per-document bound as the archive's documents.
        let live = Document::from_slice_bounded(&document, &shown, &source.bound)
            .map_err(|e| e.to_string())
            .and_then(|d| normalise_owned(d, &shown).map_err(|e| e.to_string()))
            .map_err(|message| ClientError::Decode {
                request: format!("POST /api/v1/flows/export (flow {})", flow.id),
                message,
            })?;
        let found = changes(&live, &normalised);
        if found.is_empty() {
            report.plan = Plan::Unchanged;
            report.existing_id = Some(flow.id);
            return Ok((
                report,
                Some(LiveFlow {
                    flow: (*flow).clone(),
                }),
            ));
        }
        if first.is_none() {
            first = Some(((*flow).clone(), found));
        }
    }
    let Some((flow, found)) = first else {
        return Ok((report, None));
    };
    report.existing_id = Some(flow.id);
    report.changes = found.into_iter().take(PLAN_CHANGES).collect();
    if opts.on_conflict != OnConflict::Replace {
        report.plan = Plan::Conflict;
        return Ok((report, None));
    }
    report.plan = Plan::Replace;
    Ok((report, Some(LiveFlow { flow })))
}

/// What a plan found besides the flows' reports: the live flow each one was compared with, the
/// ids the target held, and the ids of the live flows of each candidate's name (what the
/// history records as the state before), with when each of those was enabled.
pub(super) type Planned = (
    Vec<Option<LiveFlow>>,
    BTreeSet<FlowId>,
    BTreeMap<String, Vec<FlowId>>,
    BTreeMap<FlowId, Option<String>>,
);

/// The one paged listing of the target a plan is made from.
pub(super) fn list_target(opts: &PushOptions) -> Result<Vec<Flow>, ClientError> {
    list_all(
        opts.platform.as_ref(),
        &ListQuery {
            include: Some("versions".into()),
            ..ListQuery::default()
        },
    )
}

/// The plan of every candidate (in its order, into `report.flows`) from `live`, the one paged
/// listing of the target.
pub(super) fn plan(
    opts: &PushOptions,
    source: &Source,
    candidates: &[Candidate],
    live: Vec<Flow>,
    report: &mut PushReport,
) -> Result<Planned, PushError> {
    let platform = opts.platform.as_ref();
    let existing_ids: BTreeSet<FlowId> = live.iter().map(|f| f.id).collect();
    let mut before: BTreeMap<String, Vec<FlowId>> = candidates
        .iter()
        .map(|c| (c.name.clone(), Vec::new()))
        .collect();
    let mut before_enabled = BTreeMap::new();
    for flow in &live {
        if let Some(ids) = before.get_mut(&flow.name) {
            ids.push(flow.id);
            before_enabled.insert(flow.id, flow.enabled_at.clone());
        }
    }
    let mut by_name: HashMap<&str, Vec<&Flow>> = HashMap::new();
    for flow in live.iter().filter(|f| !is_replaced_name(&f.name)) {
        by_name.entry(flow.name.as_str()).or_default().push(flow);
    }
    let done = AtomicUsize::new(0);
    let planned = parallel(candidates, opts.jobs, |_, c| {
        let planned = plan_one(
            platform,
            source,
            c,
            by_name.get(c.name.as_str()).map_or(&[][..], Vec::as_slice),
            opts,
        );
        if let Some(progress) = &opts.progress {
            progress(PushProgress {
                phase: PushPhase::Planning,
                done: done.fetch_add(1, Ordering::Relaxed) + 1,
                total: candidates.len(),
                replaced: 0,
                failed: 0,
            });
        }
        planned
    });
    let mut lives = Vec::with_capacity(planned.len());
    for p in planned {
        let (flow, live) = p?;
        report.flows.push(flow);
        lives.push(live);
    }
    Ok((lives, existing_ids, before, before_enabled))
}

/// What `--restore-state` would write to each `unchanged` flow, for a dry run: its state read
/// (versions and settings, in parallel) and compared with the archive's `flow.json`. A flow
/// whose state would be written gets the preview as its `restored`; one whose state cannot be
/// restored (an iteration the flow lacks) fails, as the push would.
pub(super) fn preview_state(
    opts: &PushOptions,
    settings: &BTreeMap<String, FlowSettings>,
    source_url: &str,
    candidates: &[Candidate],
    lives: &[Option<LiveFlow>],
    report: &mut PushReport,
) {
    if !opts.restore.restore_state {
        return;
    }
    let same = opts.restore.same_environment(source_url);
    let work: Vec<(usize, FlowId, &FlowSettings)> = candidates
        .iter()
        .zip(lives)
        .zip(&report.flows)
        .enumerate()
        .filter(|(_, (_, f))| f.plan == Plan::Unchanged)
        .filter_map(|(i, ((c, live), _))| {
            Some((i, live.as_ref()?.flow.id, settings.get(c.path())?))
        })
        .collect();
    let previews = parallel(&work, opts.jobs, |_, (_, id, s)| {
        plan_state(opts.platform.as_ref(), *id, s, same, &opts.now)
    });
    for ((i, _, _), preview) in work.iter().zip(previews) {
        let f = &mut report.flows[*i];
        match preview {
            Ok(plan) if plan.writes_nothing() => {}
            Ok(plan) => f.restored = Some(FlowRestoreReport::state_only(plan.preview())),
            Err(e) => {
                f.outcome = Outcome::Failed;
                f.error = Some(e.to_string());
            }
        }
    }
}
