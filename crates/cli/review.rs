//! Review reports of a diff: one self-contained HTML file (inline CSS and SVG, no script, a
//! Content-Security-Policy that forbids every remote load) and GitHub-flavoured Markdown.
//!
//! Every text that comes from the compared flows (names, step names and types, pointers,
//! values) is escaped: flow names are hostile input. Secrets are already `••••` in the diff's
//! changes (the normalised documents mask them), so the report shows them as the text output
//! does.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use flowpack_action::diff::DiffReport;
use flowpack_core::archive::slugify;
use flowpack_core::diff::{Change, FlowDiff, FlowStatus};
use flowpack_core::graph::{Mark, VersionGraph, svg_with_id, xml_escape};

/// The Content-Security-Policy of every HTML report: nothing remote, no script.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// The most characters of a Markdown report (what a pull-request comment holds, with room).
pub const MARKDOWN_LIMIT: usize = 65_000;

/// The changed versions' graphs of each changed flow, by name (in the order pairs came).
pub type Graphs = BTreeMap<String, Vec<VersionGraph>>;

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1b1b1b;background:#fff;max-width:110rem}\
h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1.15rem;display:inline;margin:0}\
code{font-family:ui-monospace,monospace;font-size:.9em}\
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem;\
text-align:left;vertical-align:top}th{background:#f3f3f3}\
td.v{font-family:ui-monospace,monospace;font-size:.85em;word-break:break-all;max-width:40rem}\
section{border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}\
summary{cursor:pointer;padding:.25rem 0}figure{margin:.5rem 0;overflow-x:auto}\
figcaption{font-weight:bold;margin:.25rem 0}\
.legend .added,figcaption.added{color:#1e7b34}.legend .removed,figcaption.removed{color:#b3261e}\
.legend .changed,figcaption.changed{color:#8a5a00}\
.legend span{margin-right:1.5rem}ul.flows{columns:3 20rem}";

fn esc(s: &str) -> String {
    xml_escape(s)
}

fn value_text(v: &Option<serde_json::Value>) -> String {
    match v {
        None => "(none)".to_string(),
        Some(v) => v.to_string(),
    }
}

struct Counts {
    changed: usize,
    added: usize,
    removed: usize,
    duplicate: usize,
    same: usize,
}

fn counts(report: &DiffReport) -> Counts {
    let mut c = Counts {
        changed: 0,
        added: 0,
        removed: 0,
        duplicate: 0,
        same: 0,
    };
    for f in &report.content.flows {
        match f.status {
            FlowStatus::Changed => c.changed += 1,
            FlowStatus::Added => c.added += 1,
            FlowStatus::Removed => c.removed += 1,
            FlowStatus::Duplicate => c.duplicate += 1,
            _ => c.same += 1,
        }
    }
    c
}

fn symbol(status: FlowStatus) -> &'static str {
    match status {
        FlowStatus::Added => "+",
        FlowStatus::Removed => "\u{2212}",
        FlowStatus::Changed => "~",
        FlowStatus::Duplicate => "!",
        _ => "=",
    }
}

/// Section ids: `flow-<slug>`, repeated slugs numbered `-2`, `-3`…
fn section_ids<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    names
        .map(|name| {
            let slug = slugify(name);
            let n = seen.entry(slug.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                format!("flow-{slug}")
            } else {
                format!("flow-{slug}-{n}")
            }
        })
        .collect()
}

/// The HTML report (see the module docs).
pub fn html(report: &DiffReport, left: &str, right: &str, graphs: &Graphs) -> String {
    let c = counts(report);
    let mut s = String::with_capacity(64 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>flowpack diff: {} \u{2192} {}</title><style>{STYLE}</style></head>\n<body>\n\
         <header><h1>flowpack diff</h1>\
         <p class=\"sides\">LEFT <code>{}</code> \u{2192} RIGHT <code>{}</code></p>\n",
        esc(left),
        esc(right),
        esc(left),
        esc(right)
    );
    let _ = writeln!(
        s,
        "<table class=\"summary\" id=\"summary\"><tr><th>result</th><th>changed</th><th>added</th>\
         <th>removed</th><th>same</th>{}</tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td>{}</tr></table>",
        if c.duplicate > 0 {
            "<th>duplicate</th>"
        } else {
            ""
        },
        if report.is_same() {
            "same"
        } else {
            "different"
        },
        c.changed,
        c.added,
        c.removed,
        c.same,
        if c.duplicate > 0 {
            format!("<td>{}</td>", c.duplicate)
        } else {
            String::new()
        }
    );
    s.push_str(
        "<p class=\"legend\">Steps: <span class=\"added\">+ added (thick border)</span>\
         <span class=\"removed\">\u{2212} removed (dashed border)</span>\
         <span class=\"changed\">~ changed (dotted border)</span><span>same (thin border)</span></p>\
         </header>\n<main>\n",
    );
    for w in &report.warnings {
        let _ = writeln!(s, "<p class=\"warning\">warning: {}</p>", esc(w));
    }
    let ids = section_ids(report.content.flows.iter().map(|f| f.name.as_str()));
    let mut drawings = 0usize;
    for (flow, id) in report.content.flows.iter().zip(&ids) {
        if flow.status != FlowStatus::Changed {
            continue;
        }
        let _ = writeln!(
            s,
            "<section id=\"{}\" class=\"flow changed\"><details open><summary>\
             <h2>~ {}</h2> ({})</summary>",
            esc(id),
            esc(&flow.name),
            crate::output::count(flow.changes.len(), "change", "changes")
        );
        for (i, g) in graphs.get(&flow.name).into_iter().flatten().enumerate() {
            drawings += 1;
            let caption = format!("{} ({})", g.label(i), g.mark.as_str());
            let _ = writeln!(
                s,
                "<figure><figcaption class=\"{}\">{}{}</figcaption>{}</figure>",
                g.mark.as_str(),
                match g.mark {
                    Mark::Same => String::new(),
                    m => format!("{} ", m.symbol()),
                },
                esc(&caption),
                svg_with_id(
                    g,
                    &format!("{}, {caption}", flow.name),
                    &format!("d{drawings}")
                )
            );
        }
        change_table(&mut s, &flow.changes);
        s.push_str("</details></section>\n");
    }
    for (status, title) in [
        (FlowStatus::Added, "Added flows"),
        (FlowStatus::Removed, "Removed flows"),
        (FlowStatus::Duplicate, "Duplicate flows (not compared)"),
    ] {
        let flows: Vec<(&FlowDiff, &String)> = report
            .content
            .flows
            .iter()
            .zip(&ids)
            .filter(|(f, _)| f.status == status)
            .collect();
        if flows.is_empty() {
            continue;
        }
        let _ = write!(
            s,
            "<section class=\"flows {}\"><details open><summary><h2>{} {title}</h2> ({})</summary><ul>",
            status.as_str(),
            symbol(status),
            flows.len()
        );
        for (f, id) in flows {
            let ids = if f.ids.is_empty() {
                String::new()
            } else {
                format!(" ({})", flowpack_core::diff::ids_text(&f.ids))
            };
            let _ = write!(
                s,
                "<li id=\"{}\">{} {}{}</li>",
                esc(id),
                symbol(status),
                esc(&f.name),
                esc(&ids)
            );
        }
        s.push_str("</ul></details></section>\n");
    }
    if c.same > 0 {
        let _ = write!(
            s,
            "<section class=\"flows same\"><details><summary><h2>Flows the same</h2> ({})</summary>\
             <ul class=\"flows\">",
            c.same
        );
        for f in report
            .content
            .flows
            .iter()
            .filter(|f| f.status == FlowStatus::Same)
        {
            let _ = write!(s, "<li>{}</li>", esc(&f.name));
        }
        s.push_str("</ul></details></section>\n");
    }
    s.push_str("</main>\n</body></html>\n");
    s
}

fn change_table(s: &mut String, changes: &[Change]) {
    s.push_str(
        "<table class=\"changes\"><thead><tr><th>pointer</th><th>old</th><th>new</th></tr></thead><tbody>",
    );
    for ch in changes {
        let _ = write!(
            s,
            "<tr><td><code>{}</code></td><td class=\"v\">{}</td><td class=\"v\">{}</td></tr>",
            esc(&ch.pointer),
            esc(&value_text(&ch.old)),
            esc(&value_text(&ch.new))
        );
    }
    s.push_str("</tbody></table>\n");
}

/// Text safe in Markdown tables and in GitHub's HTML: the characters that Markdown or HTML
/// would read (`& < > | \ ` * _ [ ] ~`) as numeric character references, line breaks as
/// spaces.
pub fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "&<>|\\`*_[]~".contains(c) {
            let _ = write!(out, "&#{};", c as u32);
        } else if c.is_control() {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// A Markdown cell value: shortened to `limit` characters.
fn md_value(s: &str, limit: usize) -> String {
    if s.chars().count() <= limit {
        md_text(s)
    } else {
        let t: String = s.chars().take(limit).collect();
        format!("{}…", md_text(&t))
    }
}

/// A GitHub-flavoured Markdown report, at most [`MARKDOWN_LIMIT`] characters: a summary table,
/// then a collapsed `<details>` per changed flow with its changes. What does not fit is left
/// out, and the report ends saying how much.
pub fn markdown(report: &DiffReport, left: &str, right: &str) -> String {
    let c = counts(report);
    let mut head = String::new();
    let _ = write!(
        head,
        "### flowpack diff: {} \u{2192} {}\n\n**{}**\n\n| | flows |\n|---|---:|\n\
         | ~ changed | {} |\n| + added | {} |\n| \u{2212} removed | {} |\n",
        md_code(left),
        md_code(right),
        if report.is_same() {
            "same"
        } else {
            "different"
        },
        c.changed,
        c.added,
        c.removed
    );
    if c.duplicate > 0 {
        let _ = writeln!(head, "| ! duplicate | {} |", c.duplicate);
    }
    let _ = writeln!(head, "| = same | {} |\n", c.same);
    let mut blocks: Vec<String> = Vec::new();
    for f in &report.content.flows {
        match f.status {
            FlowStatus::Changed => {
                let mut b = format!(
                    "<details><summary>~ <b>{}</b> ({})</summary>\n\n",
                    md_text(&f.name),
                    crate::output::count(f.changes.len(), "change", "changes")
                );
                change_rows(&mut b, &f.changes);
                b.push_str("\n</details>\n\n");
                blocks.push(b);
            }
            FlowStatus::Added | FlowStatus::Removed | FlowStatus::Duplicate => {
                blocks.push(format!(
                    "- {} {}: {}\n",
                    symbol(f.status),
                    f.status.as_str(),
                    md_text(&f.name)
                ));
            }
            _ => {}
        }
    }
    fit(head, &blocks)
}

/// `head`, then as many `blocks` as fit under [`MARKDOWN_LIMIT`] characters, then a note
/// saying how many were left out.
fn fit(head: String, blocks: &[String]) -> String {
    // Details first, then the list (a list item right before an HTML block could swallow it).
    let (items, details): (Vec<&String>, Vec<&String>) =
        blocks.iter().partition(|b| b.starts_with("- "));
    let blocks = details.into_iter().chain(items);
    // Room for the closing note.
    let budget = MARKDOWN_LIMIT - 400;
    let mut out = head;
    let mut left_out = 0usize;
    let mut in_list = false;
    for b in blocks {
        if left_out > 0 || out.chars().count() + b.chars().count() > budget {
            left_out += 1;
            continue;
        }
        let is_item = b.starts_with("- ");
        if is_item && !in_list {
            out.push('\n');
        }
        in_list = is_item;
        out.push_str(b);
    }
    if left_out > 0 {
        let _ = write!(
            out,
            "\n\n**{} left out** to stay under {MARKDOWN_LIMIT} characters; \
             the human or JSON output shows every one.\n",
            crate::output::count(left_out, "flow", "flows")
        );
    }
    out
}

fn change_rows(b: &mut String, changes: &[Change]) {
    b.push_str("| pointer | old | new |\n|---|---|---|\n");
    for ch in changes {
        let _ = writeln!(
            b,
            "| <code>{}</code> | {} | {} |",
            md_text(&ch.pointer),
            md_value(&value_text(&ch.old), 200),
            md_value(&value_text(&ch.new), 200)
        );
    }
}

/// The plan of a dry-run push as GitHub-flavoured Markdown (at most [`MARKDOWN_LIMIT`]
/// characters): a summary table of the plans, then a collapsed `<details>` per flow that would
/// be replaced or is in conflict (its first changes), and a line per flow created or
/// duplicated.
pub fn push_markdown(report: &flowpack_action::push::PushReport, env: &str) -> String {
    use flowpack_action::push::Plan;
    let mut head = String::new();
    let _ = write!(
        head,
        "### flowpack push {} \u{2192} {} (dry run)\n\n",
        md_code(&report.archive),
        md_code(env)
    );
    if let Some(why) = &report.refused {
        let _ = write!(head, "**refused**: {}\n\n", md_text(why));
    }
    head.push_str("| plan | flows |\n|---|---:|\n");
    for plan in [
        Plan::Create,
        Plan::Replace,
        Plan::Conflict,
        Plan::Duplicate,
        Plan::Unchanged,
    ] {
        let n = report.flows.iter().filter(|f| f.plan == plan).count();
        let _ = writeln!(head, "| {} | {n} |", plan.as_str());
    }
    head.push('\n');
    let mut blocks = Vec::new();
    for f in &report.flows {
        match f.plan {
            Plan::Replace | Plan::Conflict => {
                let mut b = format!(
                    "<details><summary>{} <b>{}</b> ({})</summary>\n\n",
                    f.plan.as_str(),
                    md_text(&f.name),
                    crate::output::count(f.changes.len(), "change shown", "changes shown")
                );
                change_rows(&mut b, &f.changes);
                b.push_str("\n</details>\n\n");
                blocks.push(b);
            }
            Plan::Create | Plan::Duplicate => {
                blocks.push(format!("- {}: {}\n", f.plan.as_str(), md_text(&f.name)));
            }
            _ => {}
        }
    }
    fit(head, &blocks)
}

fn md_code(s: &str) -> String {
    format!("<code>{}</code>", md_text(s))
}

/// One flow's drawings for `inspect`: its name and its versions' graphs.
pub struct FlowGraphs {
    /// The flow's name (or the file or entry, when it has none).
    pub name: String,
    /// Each version's graph.
    pub graphs: Vec<VersionGraph>,
}

/// An HTML page (the report's CSP and style, no script) drawing every version of every flow.
pub fn graphs_html(file: &str, flows: &[FlowGraphs]) -> String {
    let mut s = String::with_capacity(16 * 1024);
    let _ = writeln!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>flowpack inspect: {}</title><style>{STYLE}</style></head>\n<body>\n\
         <header><h1>flowpack inspect</h1><p><code>{}</code>: {}</p></header>\n<main>",
        esc(file),
        esc(file),
        crate::output::count(flows.len(), "flow", "flows")
    );
    let ids = section_ids(flows.iter().map(|f| f.name.as_str()));
    let mut drawings = 0usize;
    for (f, id) in flows.iter().zip(&ids) {
        let _ = write!(
            s,
            "<section id=\"{}\" class=\"flow\"><details open><summary><h2>{}</h2> ({})</summary>",
            esc(id),
            esc(&f.name),
            crate::output::count(f.graphs.len(), "version", "versions")
        );
        for (i, g) in f.graphs.iter().enumerate() {
            drawings += 1;
            let caption = format!(
                "{}: {}",
                g.label(i),
                crate::output::count(g.nodes.len(), "step", "steps")
            );
            let _ = write!(
                s,
                "<figure><figcaption>{}</figcaption>{}</figure>",
                esc(&caption),
                svg_with_id(
                    g,
                    &format!("{}, {caption}", f.name),
                    &format!("d{drawings}")
                )
            );
        }
        s.push_str("</details></section>\n");
    }
    s.push_str("</main>\n</body></html>\n");
    s
}

/// `(title, graph)` of every version of every flow, for Mermaid and DOT.
pub fn titled(flows: &[FlowGraphs]) -> Vec<(String, &VersionGraph)> {
    flows
        .iter()
        .flat_map(|f| {
            f.graphs
                .iter()
                .enumerate()
                .map(move |(i, g)| (format!("{} · {}", f.name, g.label(i)), g))
        })
        .collect()
}
