//! What a key is: its name, the kind of value it takes, its default and its documentation.
//!
//! Owns the vocabulary of the key tables in [`super::keys`] and how one key is shown to a
//! person (type and default as words). Must never know a particular key: the tables do, and
//! validation reads them through [`super::table::Table`].

/// One `[table]` or `[[array]]` of the file, or a nested table such as `tls`.
#[derive(Debug)]
pub struct Section {
    /// The table's name as written (`smsc`), or the nested key (`tls`).
    pub name: &'static str,
    /// `[[name]]`: the section may be repeated.
    pub array: bool,
    /// The section a nested table's key belongs to (`smsc` for `tls`).
    pub within: Option<&'static str>,
    /// What the section is for; shown above its header in `conf/smppd.toml` and in the README.
    pub doc: &'static str,
    pub keys: &'static [Key],
}

/// One key: everything a reader, the parser and the documentation need to know about it.
#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Default,
    /// One or more sentences; a `\n` starts a new line in `conf/smppd.toml` (lines starting
    /// with spaces are kept as they are, for examples).
    pub doc: &'static str,
}

/// The value a key takes. The parser refuses a value of another TOML type before validation,
/// and the ranges and choices here are checked by [`super::table::Table`]'s getters.
#[derive(Debug)]
pub enum Kind {
    /// A string checked by the section's validation (addresses, names, filters).
    Str,
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// A duration such as `"30s"`, `"500ms"`, `"48h"`, `"7d"`.
    Duration(Bounds),
    /// A size such as `"512MiB"` or `"2GiB"`.
    Size,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// An array of strings.
    Strings,
    /// An array of these words.
    Choices(&'static [&'static str]),
    /// An array of command_status names or numbers.
    Statuses,
    /// `false`, `true`, or a table with these keys.
    FlagOrTable(&'static Section),
}

/// The range a duration must lie in.
#[derive(Debug)]
pub enum Bounds {
    Any,
    AtLeast(&'static str),
    Between(&'static str, &'static str),
}

/// What an absent key means.
#[derive(Debug)]
pub enum Default {
    /// The key must be given.
    Required,
    /// The feature the key turns on is off (or, for lists, the rule matches everything); the
    /// words say what that means for this key.
    Off(&'static str),
    Int(i64),
    Bool(bool),
    /// A string value (also a duration, size or choice), as it would be written in the file.
    Str(&'static str),
    List(&'static [&'static str]),
    /// Computed from other keys; the words say how.
    Derived(&'static str),
}

impl Kind {
    /// The TOML type the value must have, in the words serde uses ("a string").
    pub fn expected(&self) -> &'static str {
        match self {
            Kind::Str | Kind::Duration(_) | Kind::Size | Kind::Choice(_) => "a string",
            Kind::Bool => "a boolean",
            Kind::Int { .. } => "an integer",
            Kind::Strings | Kind::Choices(_) | Kind::Statuses => "a sequence",
            Kind::FlagOrTable(_) => "a boolean or a table",
        }
    }

    /// The kind as a reader wants it described (the README's type column).
    pub fn describe(&self) -> String {
        let words = |w: &[&str]| {
            w.iter()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Kind::Str => "string".into(),
            Kind::Bool => "boolean".into(),
            Kind::Int { min, max } => format!("integer {min}–{max}"),
            Kind::Duration(Bounds::Any) => "duration".into(),
            Kind::Duration(Bounds::AtLeast(min)) => format!("duration ≥ {min}"),
            Kind::Duration(Bounds::Between(min, max)) => format!("duration {min}–{max}"),
            Kind::Size => "size".into(),
            Kind::Choice(w) => format!("one of {}", words(w)),
            Kind::Strings => "array of strings".into(),
            Kind::Choices(w) => format!("array of {}", words(w)),
            Kind::Statuses => "array of status names or numbers".into(),
            Kind::FlagOrTable(s) => format!("boolean or table ({})", s.key_names().join(", ")),
        }
    }
}

impl Default {
    /// The default as a reader wants it: the TOML value, or words.
    pub fn describe(&self) -> String {
        match self {
            Default::Required => "required".into(),
            Default::Off(words) | Default::Derived(words) => (*words).into(),
            Default::Int(n) => n.to_string(),
            Default::Bool(b) => b.to_string(),
            Default::Str(s) => format!("\"{s}\""),
            Default::List(l) => format!(
                "[{}]",
                l.iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl Section {
    pub fn key(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().find(|k| k.name == name)
    }

    pub fn key_names(&self) -> Vec<&'static str> {
        self.keys.iter().map(|k| k.name).collect()
    }

    /// How the section is written as a header: `[store]`, `[[smsc]]`, or for a nested table
    /// `tls = { … }` in `[[smsc]]`.
    pub fn header(&self) -> String {
        if let Some(parent) = self.within {
            format!("{} = {{ … }} in [[{parent}]]", self.name)
        } else if self.array {
            format!("[[{}]]", self.name)
        } else {
            format!("[{}]", self.name)
        }
    }
}
