//! The documentation made from the key tables: the README's key reference and the comments
//! above each key in `conf/smppd.toml`.
//!
//! Owns how a key is shown to a reader. Must never be the source of a fact about a key (the
//! tables in [`super::keys`] are); tests/config.rs checks that the committed README and
//! `conf/smppd.toml` equal what this module makes from them.

use super::keys::{SECTIONS, TOP};
use super::schema::{Default, Key, Section};

/// Comment lines are wrapped to this many characters, like the rest of the repository.
const WIDTH: usize = 100;

/// Markdown: for each section, its purpose and a table of its keys (key, type, default,
/// meaning). `smppd check-config --keys` prints it; the README holds a copy.
pub fn reference_markdown() -> String {
    let mut out = String::new();
    for section in SECTIONS {
        out.push_str(&format!(
            "**`{}`** — {}\n\n",
            section.header(),
            one_line(section.doc)
        ));
        out.push_str("| key | type | default | meaning |\n|---|---|---|---|\n");
        for key in section.keys {
            let default = match key.default {
                Default::Required | Default::Off(_) | Default::Derived(_) => key.default.describe(),
                _ => format!("`{}`", key.default.describe()),
            };
            out.push_str(&format!(
                "| `{}` | {} | {default} | {} |\n",
                key.name,
                key.kind.describe(),
                one_line(key.doc)
            ));
        }
        out.push('\n');
    }
    out
}

/// `text` (a configuration file) with the comment block directly above each key of the first
/// section of each kind, and above that section's header, rewritten from the key tables.
/// Values, later sections and other comments are kept. `smppd check-config --annotate` prints
/// it; `conf/smppd.toml` is its own annotation.
pub fn annotate(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    // The section being read, while it is the first of its kind, and its keys already done.
    let mut first: Option<(&Section, Vec<&str>)> = None;
    for line in text.lines() {
        if let Some(name) = header_name(line) {
            let section = TOP.iter().find(|s| s.name == name).copied();
            first = section
                .filter(|_| !seen.contains(&name))
                .map(|s| (s, Vec::new()));
            seen.push(name);
            if let Some((s, _)) = &first {
                replace_block(&mut out, s, &comment(s.doc, None));
            }
        } else if let Some((section, done)) = &mut first
            && let Some(key) = key_of_line(line, section)
            && !done.contains(&key.name)
        {
            done.push(key.name);
            replace_block(&mut out, section, &comment(key.doc, Some(&key.default)));
        }
        out.push(line.to_owned());
    }
    let mut s = out.join("\n");
    if text.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// Replaces the comment lines at the end of `out` (up to a blank line, a non-comment line or a
/// commented-out key) with `block`.
fn replace_block(out: &mut Vec<String>, section: &Section, block: &[String]) {
    while let Some(last) = out.last() {
        if last.starts_with('#') && key_of_line(last, section).is_none() {
            out.pop();
        } else {
            break;
        }
    }
    out.extend(block.iter().cloned());
}

/// `smsc` for `[[smsc]]`, `listen` for `[listen]  # comment`.
fn header_name(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix('[')?;
    let name = rest.trim_start_matches('[').split(']').next()?.trim();
    Some(name)
}

/// The key set (`window = 50`) or shown commented out (`# token = "…"`) on this line.
fn key_of_line(line: &str, section: &Section) -> Option<&'static Key> {
    let rest = line.strip_prefix("# ").unwrap_or(line);
    let name_end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let (name, after) = rest.split_at(name_end);
    if after.trim_start().starts_with('=') {
        section.key(name)
    } else {
        None
    }
}

/// A doc as `# ` lines of at most [`WIDTH`] characters, with the default as its last sentence.
fn comment(doc: &str, default: Option<&Default>) -> Vec<String> {
    let mut text = doc.to_owned();
    match default {
        None => {}
        Some(Default::Required) => text.push_str(" Required."),
        Some(d) => text.push_str(&format!(" Default: {}.", d.describe())),
    }
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        if paragraph.starts_with(' ') {
            // An example, kept as written.
            lines.push(format!("#{paragraph}"));
            continue;
        }
        let mut line = String::from("#");
        for word in paragraph.split_whitespace() {
            if line.len() > 1 && line.chars().count() + 1 + word.chars().count() > WIDTH {
                lines.push(std::mem::replace(&mut line, String::from("#")));
            }
            line.push(' ');
            line.push_str(word);
        }
        if line.len() > 1 {
            lines.push(line);
        }
    }
    lines
}

/// A doc on one line (the README's table cells).
fn one_line(doc: &str) -> String {
    doc.split_whitespace().collect::<Vec<_>>().join(" ")
}
