//! The local check of a push: every flow read, migrated, overlaid and checked before any
//! request, and read again (digest-checked, within the parse budget) by the later phases.

use super::*;

/// A flow chosen for the push: what the later phases need without holding its document.
pub(super) struct Candidate {
    pub(super) record: FlowRecord,
    pub(super) name: String,
    pub(super) deployed_iteration: Option<i64>,
}

impl Candidate {
    pub(super) fn path(&self) -> &str {
        &self.record.path
    }
}

/// The archive, shared by the workers that read its flows again, and the parse budget they
/// share (see [`flowpack_core::budget`]).
pub(super) struct Source {
    /// Readers of the archive (clones reading the same open file), one taken per read so that
    /// the workers decompress in parallel.
    pub(super) readers: Mutex<Vec<Archive>>,
    pub(super) origin: String,
    pub(super) budget: ParseBudget,
    /// The per-document bound of the archive's limits, for its documents and live exports.
    pub(super) bound: DocumentBound,
}

/// What the local check found for one flow of the archive: its name, and for a chosen flow
/// either its deployed iteration and overlay report or why it cannot be pushed.
pub(super) struct Checked {
    pub(super) name: String,
    pub(super) chosen: Option<Result<Ready, String>>,
}

/// A chosen flow that passed the local check: its deployed iteration and overlay report.
pub(super) struct Ready {
    pub(super) deployed_iteration: Option<i64>,
    pub(super) overlay: Option<OverlayReport>,
}

/// One flow as it would be imported, with the share of the parse budget it holds.
pub(super) struct Prepared<'s> {
    pub(super) document: Document,
    pub(super) permit: Permit<'s>,
}

impl Source {
    /// Reads `record`'s document again (its SHA-256 checked against the verified manifest) and
    /// parses it within the budget.
    pub(super) fn read(&self, record: &FlowRecord) -> Result<(Document, Permit<'_>), ArchiveError> {
        self.read_charged(record, 1)
    }

    /// [`read`](Source::read), charging the budget `copies` times the document's cost: for a
    /// step that holds that many documents of its size at once (the plan holds the live
    /// flow's export beside the archive's document).
    pub(super) fn read_charged(
        &self,
        record: &FlowRecord,
        copies: u64,
    ) -> Result<(Document, Permit<'_>), ArchiveError> {
        let mut reader = {
            let mut readers = self.readers.lock().expect("no panic");
            // The last one stays, the template of further clones.
            if readers.len() > 1 {
                readers.pop().expect("more than one")
            } else {
                readers[0].clone()
            }
        };
        let bytes = reader.flow_bytes(record);
        self.readers.lock().expect("no panic").push(reader);
        let bytes = bytes?;
        Ok(Document::parse_within_charged(
            &bytes,
            &entry_origin(&self.origin, &record.path),
            &self.bound,
            &self.budget,
            copies,
        )?)
    }

    /// `record`'s document as it would be imported: migrated to the target's export format
    /// (refused when the migration would lose something) and the overlay applied.
    pub(super) fn prepare(
        &self,
        opts: &PushOptions,
        record: &FlowRecord,
        name: &str,
        copies: u64,
    ) -> Result<Prepared<'_>, String> {
        let (doc, permit) = self
            .read_charged(record, copies)
            .map_err(|e| e.to_string())?;
        prepare_document(opts, doc, record, name, &self.origin)
            .map(|(document, _overlay)| Prepared { document, permit })
    }
}

/// Migrates `doc` to the target's export format and applies the overlay.
pub(super) fn prepare_document(
    opts: &PushOptions,
    mut doc: Document,
    record: &FlowRecord,
    name: &str,
    origin: &str,
) -> Result<(Document, Option<OverlayReport>), String> {
    // A migration that would lose something refuses the push before any request, naming the
    // flow and what would be lost.
    if doc.format_version().number() != opts.export_format {
        let mut mopts = MigrateOptions::new(Target::Version(u64::from(opts.export_format)));
        mopts.origin = entry_origin(origin, &record.path);
        doc = migrate(doc, &mopts).map_err(|e| e.to_string())?.document;
        // Send what the platform itself would have exported: no stamp.
        doc.unstamp_format_version();
    }
    let overlay = opts
        .overlay
        .as_ref()
        .map(|o| overlay::apply(&mut doc, name, o));
    Ok((doc, overlay))
}

/// The local check of one flow of the archive (run in parallel, before any request).
pub(super) fn check_flow(
    source: &Source,
    opts: &PushOptions,
    record: &FlowRecord,
    settings: &BTreeMap<String, FlowSettings>,
    targets: &Mutex<overlay::Targets>,
) -> Result<Checked, PushError> {
    // The first read of each flow is the verification of its entry (verify left the flows'
    // digests to this pass): a failure refuses the push as verification does.
    let (doc, _permit) = source.read(record).map_err(|e| match e {
        ArchiveError::Digest { .. } | ArchiveError::Hostile { .. } => {
            PushError::from(Refused::Verification {
                archive: source.origin.clone(),
                check: match e {
                    ArchiveError::Digest { .. } => "digests",
                    _ => "structure",
                }
                .to_string(),
                detail: e.to_string(),
                failure: None,
            })
        }
        e => PushError::from(e),
    })?;
    let name = doc
        .flow()
        .and_then(|f| f.name())
        .unwrap_or(record.name.as_str())
        .to_string();
    {
        // What the overlay's keys may name: every flow of the archive (chosen or not), as packed.
        let mut targets = targets.lock().expect("no panic");
        targets.add(&doc);
        if let Some(s) = settings.get(&record.path) {
            targets.add_settings(&name, s);
        }
    }
    if !opts.flows.matches(&name) {
        return Ok(Checked { name, chosen: None });
    }
    let chosen =
        prepare_document(opts, doc, record, &name, &source.origin).and_then(|(doc, overlay)| {
            let deployed_iteration = doc.flow().and_then(|f| {
                f.versions()
                    .find(|v| v.status() == Some(VersionStatus::Deployed))
                    .and_then(|v| v.iteration())
            });
            // The comparison migrates to the newest format first; that is the only step of it
            // that can fail, so it is tried here (before any request) when it will be needed.
            if doc.format_version() != FormatVersion::LATEST {
                normalise_owned(doc, &entry_origin(&source.origin, &record.path))
                    .map_err(|e| e.to_string())?;
            }
            Ok(Ready {
                deployed_iteration,
                overlay,
            })
        });
    Ok(Checked {
        name,
        chosen: Some(chosen),
    })
}

/// The one warning of a push about optional inputs the overlay does not supply (`None` when
/// there are none): one line per input, however many flows carry it (naming them all). Systems
/// are left out: one the overlay does not rename keeps its name.
pub(super) fn input_warning(optional: &[Input], overlay_given: bool) -> Option<String> {
    let lines = input_lines(optional);
    if lines.is_empty() {
        return None;
    }
    let mut warning = format!(
        "{} not supplied {}; set in the target after the push if the flows need {}:",
        if lines.len() == 1 {
            "1 optional input is".to_string()
        } else {
            format!("{} optional inputs are", lines.len())
        },
        if overlay_given {
            "by the overlay"
        } else {
            "(no overlay given)"
        },
        if lines.len() == 1 { "it" } else { "them" }
    );
    for line in lines {
        warning.push_str("\n  ");
        warning.push_str(&line);
    }
    Some(warning)
}

/// One line per optional input not supplied (systems left out), each naming every flow that has
/// it.
pub(super) fn input_lines(optional: &[Input]) -> Vec<String> {
    grouped_inputs(optional)
        .into_iter()
        .map(|g| {
            if g.flows.len() == 1 {
                format!("{} of flow {:?}", g.input, g.flows[0])
            } else {
                let names: Vec<String> = g.flows.iter().map(|f| format!("{f:?}")).collect();
                format!("{} of flows {}", g.input, names.join(", "))
            }
        })
        .collect()
}

/// The optional inputs not supplied (systems left out), each once with the flows that have it.
pub(super) fn grouped_inputs(optional: &[Input]) -> Vec<OptionalInput> {
    let mut grouped: Vec<(&Input, Vec<&str>)> = Vec::new();
    for i in optional.iter().filter(|i| i.kind != InputKind::System) {
        match grouped
            .iter_mut()
            .find(|(first, _)| first.kind == i.kind && first.name == i.name)
        {
            Some((_, flows)) if flows.contains(&i.flow.as_str()) => {}
            Some((_, flows)) => flows.push(&i.flow),
            None => grouped.push((i, vec![&i.flow])),
        }
    }
    grouped
        .into_iter()
        .map(|(first, flows)| OptionalInput {
            input: describe_input_kind(first),
            flows: flows.into_iter().map(str::to_string).collect(),
        })
        .collect()
}

/// The local check of every flow of the archive (before any request): the flows chosen with
/// their deployed iteration, in archive order; the overlay's reports and the warnings go into
/// `report`. Refuses on `--flow` patterns matching nothing, documents in a format the target
/// cannot take, overlay keys matching nothing, and required inputs not supplied.
pub(super) fn check_local(
    opts: &PushOptions,
    source: &Source,
    manifest: &Manifest,
    settings: &BTreeMap<String, FlowSettings>,
    report: &mut PushReport,
) -> Result<Vec<Candidate>, PushError> {
    let targets = Mutex::new(overlay::Targets::new());
    let checked = parallel(&manifest.flows, opts.jobs, |_, record| {
        check_flow(source, opts, record, settings, &targets)
    });
    let mut candidates = Vec::new();
    let mut format_errors = Vec::new();
    let mut all_names = Vec::new();
    for (record, result) in manifest.flows.iter().zip(checked) {
        let Checked { name, chosen } = result?;
        all_names.push(name.clone());
        match chosen {
            None => {}
            Some(Err(e)) => format_errors.push(format!("flow {name:?}: {e}")),
            Some(Ok(Ready {
                deployed_iteration,
                overlay,
            })) => {
                report.overlay.extend(overlay);
                candidates.push(Candidate {
                    record: record.clone(),
                    name,
                    deployed_iteration,
                });
            }
        }
    }
    let targets = targets.into_inner().expect("no panic");
    let unmatched = opts.flows.unmatched(all_names.iter().map(String::as_str));
    if !unmatched.is_empty() {
        let known: Vec<String> = all_names.iter().map(|n| format!("{n:?}")).collect();
        return Err(Refused::UnknownFlows {
            archive: source.origin.clone(),
            patterns: unmatched.into_iter().map(str::to_string).collect(),
            known: known.join(", "),
        }
        .into());
    }
    if !format_errors.is_empty() {
        return Err(Refused::Content(format_errors.join("; ")).into());
    }
    // Every overlay key must match something in the archive: a typo would silently do nothing.
    if let Some(o) = &opts.overlay {
        match overlay::check_unmatched(o.overlay(), &targets, opts.on_unmatched) {
            Ok(found) => report
                .warnings
                .extend(found.iter().map(|u| format!("{}: {u}", o.overlay().origin))),
            Err(e) => return Err(Refused::Content(e.to_string()).into()),
        }
    }
    let inputs: Vec<Input> = manifest
        .inputs
        .iter()
        .filter(|i| opts.flows.matches(&i.flow))
        .cloned()
        .collect();
    let inputs = crate::restore::inputs_to_check(&inputs, opts.restore.no_webhooks);
    match overlay::check_inputs(&inputs, opts.overlay.as_ref()) {
        // A system the overlay does not rename keeps its name: nothing to warn about. Empty
        // credentials and variables do need a value on the target, so they are named.
        Ok(optional) => {
            if let Some(w) = input_warning(&optional, opts.overlay.is_some()) {
                report.inputs_warning = Some(report.warnings.len());
                report.warnings.push(w);
                report.optional_inputs = grouped_inputs(&optional);
            }
        }
        Err(e) => return Err(Refused::Content(e.to_string()).into()),
    }

    Ok(candidates)
}
