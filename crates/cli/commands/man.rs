//! `flowpack man DIR [--force]`

use std::path::PathBuf;

use clap::CommandFactory;
use flowpack_core::fsutil::write_bytes_new;

use crate::outcome::{Failure, Outcome, Verdict};

/// Write the manual pages: flowpack.1 and one page per command (flowpack-push.1, ...).
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  flowpack man /usr/local/share/man/man1\n\n\
DIR is created when missing. An existing page is never replaced silently: when any page \
already exists the command writes nothing and names it, unless --force, which replaces each \
page atomically (a symlinked page is replaced, not written through).\n\
Exit codes: 0 written, 2 could not run (a page exists, DIR not writable).")]
pub struct Args {
    /// The directory to write the pages into.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Replace pages that already exist.
    #[arg(long)]
    force: bool,
}

/// Runs the command.
pub fn run(args: Args) -> Outcome {
    let pages = pages().map_err(|e| Failure::usage(format!("rendering the manual pages: {e}")))?;
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| Failure::usage(format!("{}: {e}", args.dir.display())))?;
    if !args.force {
        let existing: Vec<String> = pages
            .iter()
            .map(|(name, _)| args.dir.join(name))
            .filter(|p| p.symlink_metadata().is_ok())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(Failure::usage(format!(
                "{} already exist{} (nothing was written; --force replaces them)",
                existing.join(", "),
                if existing.len() == 1 { "s" } else { "" }
            )));
        }
    }
    for (name, text) in &pages {
        let path = args.dir.join(name);
        write_bytes_new(&path, text, args.force).map_err(Failure::from)?;
        println!("{}", path.display());
    }
    Ok(Verdict::Success)
}

/// Every page as (file name, roff text): the top-level page first, then one per command.
fn pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    let subcommands: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    out.push(page(cmd)?);
    for sub in subcommands {
        out.push(page(sub)?);
    }
    Ok(out)
}

/// One page: clap_mangen's title, NAME, SYNOPSIS (ours: every option with its value name),
/// DESCRIPTION, OPTIONS and SUBCOMMANDS; then the `after_help` text as EXAMPLES, NOTES and EXIT
/// STATUS (clap_mangen would put it all under a heading "EXTRA"); then VERSION.
fn page(cmd: clap::Command) -> std::io::Result<(String, Vec<u8>)> {
    let after = cmd.get_after_help().map(|t| t.to_string());
    let usage = synopsis(&cmd);
    let cmd = cmd.override_usage(usage);
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("flowpack {}", env!("CARGO_PKG_VERSION")))
        .manual("flowpack manual");
    let mut text = Vec::new();
    man.render_title(&mut text)?;
    man.render_name_section(&mut text)?;
    man.render_synopsis_section(&mut text)?;
    man.render_description_section(&mut text)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut text)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut text)?;
    }
    if let Some(after) = &after {
        text.extend_from_slice(after_help_sections(after).as_bytes());
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut text)?;
    }
    Ok((man.get_filename(), once_preamble(&text)))
}

/// The page with clap_mangen's quote-character preamble (`.ie`/`.el`, which it writes before
/// every section rendered on its own) only at its top.
fn once_preamble(text: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(text);
    let mut seen = (false, false);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let first = if line.starts_with(".ie \\n(.g .ds Aq") {
            !std::mem::replace(&mut seen.0, true)
        } else if line.starts_with(".el .ds Aq") {
            !std::mem::replace(&mut seen.1, true)
        } else {
            true
        };
        if first {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// The synopsis of `cmd` with every option's value name, the way its `--help` writes them:
/// `flowpack export [--filter <name=TEXT>] … -o|--output <OUT> <--flow <ID>...|--all>`.
fn synopsis(cmd: &clap::Command) -> String {
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    let mut parts = vec![name.to_string()];
    let groups: Vec<Vec<&clap::Arg>> = cmd
        .get_groups()
        .filter(|g| g.is_required_set())
        .map(|g| {
            let ids: Vec<&clap::Id> = g.get_args().collect();
            cmd.get_arguments()
                .filter(|a| ids.contains(&a.get_id()))
                .collect()
        })
        .collect();
    let in_group = |a: &clap::Arg| groups.iter().flatten().any(|g| g.get_id() == a.get_id());
    let options: Vec<&clap::Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional() && !in_group(a))
        .collect();
    for required in [false, true] {
        for a in options.iter().filter(|a| a.is_required_set() == required) {
            let text = option_text(a);
            parts.push(if required { text } else { format!("[{text}]") });
        }
    }
    for members in &groups {
        let alternatives: Vec<String> = members.iter().map(|a| option_text(a)).collect();
        parts.push(format!("<{}>", alternatives.join("|")));
    }
    for a in cmd.get_positionals().filter(|a| !a.is_hide_set()) {
        let value = value_text(a);
        parts.push(if a.is_required_set() {
            value
        } else {
            format!("[{value}]")
        });
    }
    if cmd.has_subcommands() {
        parts.push("<COMMAND>".to_string());
    }
    parts.join(" ")
}

/// `-o|--output <OUT>`, `--flow <ID>...`, `--force`.
fn option_text(a: &clap::Arg) -> String {
    let flag = match (a.get_short(), a.get_long()) {
        (Some(s), Some(l)) => format!("-{s}|--{l}"),
        (Some(s), None) => format!("-{s}"),
        (None, Some(l)) => format!("--{l}"),
        (None, None) => a.get_id().to_string(),
    };
    let takes = a.get_num_args().is_some_and(|r| r.takes_values());
    if takes {
        format!("{flag} {}", value_text(a))
    } else {
        flag
    }
}

/// `<NAME>`, with `...` when it may be given more than once.
fn value_text(a: &clap::Arg) -> String {
    let names = a
        .get_value_names()
        .map(|v| {
            v.iter()
                .map(|n| format!("<{n}>"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| format!("<{}>", a.get_id().as_str().to_uppercase()));
    let many = matches!(a.get_action(), clap::ArgAction::Append)
        || a.get_num_args().is_some_and(|r| r.max_values() > 1);
    if many { format!("{names}...") } else { names }
}

/// The `after_help` text as man sections: the examples (a paragraph opening with `Example:` or
/// `Examples:`) under EXAMPLES, `Exit codes:` under EXIT STATUS, the rest under NOTES. Indented
/// lines are kept as they are (`.nf`); other lines are paragraphs of their own.
fn after_help_sections(text: &str) -> String {
    let mut examples: Vec<&str> = Vec::new();
    let mut notes: Vec<&str> = Vec::new();
    let mut exit: Vec<&str> = Vec::new();
    let mut in_examples = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            in_examples = false;
            if notes.last().is_some_and(|l| !l.is_empty()) {
                notes.push("");
            }
            continue;
        }
        if trimmed == "Example:" || trimmed == "Examples:" {
            in_examples = true;
            continue;
        }
        if in_examples && line.starts_with(' ') {
            examples.push(line);
        } else if let Some(rest) = trimmed.strip_prefix("Exit codes:") {
            in_examples = false;
            exit.push(rest.trim());
        } else {
            in_examples = false;
            notes.push(line);
        }
    }
    while notes.last().is_some_and(|l| l.is_empty()) {
        notes.pop();
    }
    let mut out = String::new();
    for (heading, lines) in [
        ("EXAMPLES", &examples),
        ("NOTES", &notes),
        ("\"EXIT STATUS\"", &exit),
    ] {
        if lines.is_empty() {
            continue;
        }
        out.push_str(&format!(".SH {heading}\n"));
        let mut preformatted = false;
        // Whether a line of text precedes in this paragraph (the next one breaks the line).
        let mut after_text = false;
        for line in lines.iter() {
            if line.is_empty() {
                if preformatted {
                    out.push_str(".fi\n");
                    preformatted = false;
                }
                out.push_str(".PP\n");
                after_text = false;
                continue;
            }
            let indented = line.starts_with(' ');
            if indented && !preformatted {
                out.push_str(".nf\n");
                preformatted = true;
            } else if !indented && preformatted {
                out.push_str(".fi\n");
                preformatted = false;
            } else if !indented && after_text {
                out.push_str(".br\n");
            }
            after_text = true;
            let shown = if heading == "EXAMPLES" {
                line.trim_start()
            } else {
                line
            };
            out.push_str(&roff_text(shown));
            out.push('\n');
        }
        if preformatted {
            out.push_str(".fi\n");
        }
    }
    out
}

/// A line of text for roff: backslashes and hyphens escaped, a leading `.` or `'` kept from
/// being read as a request.
fn roff_text(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}
