//! The parsed file as spanned tables checked against the key tables, and typed getters that
//! apply each key's range, choices and default.
//!
//! Owns: refusing a key that is not in its section's table (in every table, nested ones too)
//! and a value of the wrong TOML type, and building every error with the key path and line
//! ([`Ctx`]). Must never hold a default, range or choice of its own: those come from
//! [`super::keys`], so the documentation cannot disagree with the parser.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ConfigError;
use super::schema::{Bounds, Default, Key, Kind, Section};
use super::values::{parse_duration, parse_size};

/// Maps byte offsets to line and column and builds errors.
pub(super) struct Ctx<'a> {
    pub text: &'a str,
    pub origin: &'a str,
    /// Where relative file names (TLS files) are resolved.
    pub base: &'a Path,
}

impl Ctx<'_> {
    pub fn err(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError {
            origin: self.origin.to_owned(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }

    /// A file named in the configuration, which must exist.
    pub fn file(&self, s: &Spanned<&str>, key: &str) -> Result<PathBuf, ConfigError> {
        let p = self.base.join(s.get_ref());
        if p.is_file() {
            Ok(p)
        } else {
            let message = format!("file {} does not exist", p.display());
            Err(self.err(s.span(), key, message))
        }
    }
}

type Value<'a> = Spanned<DeValue<'a>>;

/// The file's top-level sections, each checked against its key table.
pub(super) struct Document<'a> {
    cx: &'a Ctx<'a>,
    sections: BTreeMap<&'static str, Vec<Table<'a>>>,
}

impl<'a> Document<'a> {
    /// Checks every table of the file (unknown keys and value types) before any validation,
    /// so a misspelt key is reported even when another section is also wrong.
    pub fn new(
        cx: &'a Ctx<'a>,
        root: &'a DeTable<'a>,
        top: &[&'static Section],
    ) -> Result<Self, ConfigError> {
        let mut sections = BTreeMap::new();
        for (name, value) in root {
            let Some(section) = top.iter().find(|s| s.name == name.get_ref().as_ref()) else {
                return Err(unknown(
                    cx,
                    name,
                    name.get_ref(),
                    &top.iter().map(|s| s.name).collect::<Vec<_>>(),
                ));
            };
            let tables = section_tables(cx, section, value)?;
            sections.insert(section.name, tables);
        }
        Ok(Document { cx, sections })
    }

    /// A `[table]` section; an absent one has every key at its default.
    pub fn table(&mut self, section: &'static Section) -> Table<'a> {
        self.sections
            .remove(section.name)
            .and_then(|mut t| t.pop())
            .unwrap_or_else(|| Table::empty(self.cx, section))
    }

    /// The sections of an `[[array]]`, in file order.
    pub fn tables(&mut self, section: &'static Section) -> Vec<Table<'a>> {
        self.sections.remove(section.name).unwrap_or_default()
    }
}

fn section_tables<'a>(
    cx: &'a Ctx<'a>,
    section: &'static Section,
    value: &'a Value<'a>,
) -> Result<Vec<Table<'a>>, ConfigError> {
    let key = section.name;
    if !section.array {
        let Some(entries) = value.get_ref().as_table() else {
            return Err(type_error(cx, value, key, "a table"));
        };
        return Ok(vec![Table::new(
            cx,
            section,
            key.to_owned(),
            value.span(),
            entries,
        )?]);
    }
    let Some(items) = value.get_ref().as_array() else {
        return Err(type_error(cx, value, key, "an array of tables"));
    };
    let mut tables = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{key}[{i}]");
        let Some(entries) = item.get_ref().as_table() else {
            return Err(type_error(cx, item, &path, "a table"));
        };
        tables.push(Table::new(cx, section, path, item.span(), entries)?);
    }
    Ok(tables)
}

/// serde's wording, which the file's errors have always used: "unknown field `x`, expected one
/// of `a`, `b`, `c`" (or "expected `a` or `b`").
fn unknown(
    cx: &Ctx<'_>,
    at: &Spanned<std::borrow::Cow<'_, str>>,
    key: &str,
    known: &[&str],
) -> ConfigError {
    let quoted: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    let expected = match quoted.as_slice() {
        [one] => format!("expected {one}"),
        [a, b] => format!("expected {a} or {b}"),
        _ => format!("expected one of {}", quoted.join(", ")),
    };
    let message = format!("unknown field `{}`, {expected}", at.get_ref());
    cx.err(at.span(), key, message)
}

/// "invalid type: integer `5`, expected a string", in serde's words.
fn type_error(cx: &Ctx<'_>, v: &Value<'_>, key: &str, expected: &str) -> ConfigError {
    let found = match v.get_ref() {
        DeValue::String(s) => format!("string {s:?}"),
        DeValue::Integer(i) => format!("integer `{i}`"),
        DeValue::Float(f) => format!("floating point `{f}`"),
        DeValue::Boolean(b) => format!("boolean `{b}`"),
        DeValue::Datetime(d) => format!("datetime `{d}`"),
        DeValue::Array(_) => "sequence".to_owned(),
        DeValue::Table(_) => "map".to_owned(),
    };
    cx.err(
        v.span(),
        key,
        format!("invalid type: {found}, expected {expected}"),
    )
}

/// `false`, `true`, or a nested table (`tls`).
pub(super) enum FlagOrTable<'a> {
    Flag(bool),
    Table(Table<'a>),
}

/// One section (or nested table) whose keys are all in its key table and of the right type.
pub(super) struct Table<'a> {
    cx: &'a Ctx<'a>,
    section: &'static Section,
    /// The key path of the table: `listen`, `smsc[1]`, `smsc[1].tls`.
    path: String,
    /// The whole section, for errors about a missing key (`0..0` when the section is absent).
    span: Range<usize>,
    entries: Option<&'a DeTable<'a>>,
}

impl<'a> Table<'a> {
    fn new(
        cx: &'a Ctx<'a>,
        section: &'static Section,
        path: String,
        span: Range<usize>,
        entries: &'a DeTable<'a>,
    ) -> Result<Self, ConfigError> {
        let table = Table {
            cx,
            section,
            path,
            span,
            entries: Some(entries),
        };
        for (name, value) in entries {
            let Some(key) = section.key(name.get_ref()) else {
                return Err(unknown(
                    cx,
                    name,
                    &table.key(name.get_ref()),
                    &section.key_names(),
                ));
            };
            table.check_type(key, value)?;
        }
        Ok(table)
    }

    fn empty(cx: &'a Ctx<'a>, section: &'static Section) -> Self {
        Table {
            cx,
            section,
            path: section.name.to_owned(),
            span: 0..0,
            entries: None,
        }
    }

    fn check_type(&self, key: &Key, v: &'a Value<'a>) -> Result<(), ConfigError> {
        let ok = match (&key.kind, v.get_ref()) {
            (Kind::Str | Kind::Duration(_) | Kind::Size | Kind::Choice(_), DeValue::String(_)) => {
                true
            }
            (Kind::Bool, DeValue::Boolean(_)) | (Kind::Int { .. }, DeValue::Integer(_)) => true,
            (Kind::Statuses, DeValue::Array(_)) => true,
            (Kind::Strings | Kind::Choices(_), DeValue::Array(items)) => {
                for item in items {
                    if !item.get_ref().is_str() {
                        return Err(type_error(self.cx, item, &self.key(key.name), "a string"));
                    }
                }
                true
            }
            (Kind::FlagOrTable(_), DeValue::Boolean(_)) => true,
            (Kind::FlagOrTable(nested), DeValue::Table(t)) => {
                Table::new(self.cx, nested, self.key(key.name), v.span(), t)?;
                true
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(type_error(
                self.cx,
                v,
                &self.key(key.name),
                key.kind.expected(),
            ))
        }
    }

    /// The dotted path of one of this table's keys: `smsc[0].window`.
    pub fn key(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    /// The span of the whole section.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// Where a key's value is written, or the section when it is not.
    pub fn span_of(&self, name: &str) -> Range<usize> {
        self.value(name).map_or(self.span.clone(), |v| v.span())
    }

    /// An error about one key of this table.
    pub fn err(&self, span: Range<usize>, name: &str, message: impl Into<String>) -> ConfigError {
        self.cx.err(span, self.key(name), message)
    }

    /// An error about the table as a whole (its key is the table's path).
    pub fn section_err(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        self.cx.err(span, self.path.clone(), message)
    }

    fn value(&self, name: &str) -> Option<&'a Value<'a>> {
        self.entries.and_then(|e| e.get(name))
    }

    /// The key's table entry. Every getter names a key of its section; one that does not is a
    /// bug that the defaults test finds (every getter runs on every parse).
    fn schema(&self, name: &str) -> Result<&'static Key, ConfigError> {
        self.section
            .key(name)
            .ok_or_else(|| self.err(self.span(), name, "not in the key table (a bug in smppd)"))
    }

    /// A string, or the key's default (placed at the section), or `None` when it has none.
    pub fn str(&self, name: &str) -> Result<Option<Spanned<&'a str>>, ConfigError> {
        let key = self.schema(name)?;
        match self.value(name) {
            Some(v) => match v.get_ref().as_str() {
                Some(s) => Ok(Some(Spanned::new(v.span(), s))),
                None => Err(type_error(self.cx, v, &self.key(name), "a string")),
            },
            None => match key.default {
                Default::Str(s) => Ok(Some(Spanned::new(self.span(), s))),
                _ => Ok(None),
            },
        }
    }

    /// A file that must exist (relative to the configuration file), or `None` when absent.
    pub fn file(&self, name: &str) -> Result<Option<PathBuf>, ConfigError> {
        self.str(name)?
            .map(|s| self.cx.file(&s, &self.key(name)))
            .transpose()
    }

    /// A string that must be given.
    pub fn required(&self, name: &str) -> Result<Spanned<&'a str>, ConfigError> {
        self.str(name)?
            .ok_or_else(|| self.err(self.span(), name, "missing (required)"))
    }

    pub fn bool(&self, name: &str) -> Result<bool, ConfigError> {
        let key = self.schema(name)?;
        match self.value(name) {
            Some(v) => v
                .get_ref()
                .as_bool()
                .ok_or_else(|| type_error(self.cx, v, &self.key(name), "a boolean")),
            None => Ok(matches!(key.default, Default::Bool(true))),
        }
    }

    /// An integer within the key's range, or its default.
    pub fn int(&self, name: &str) -> Result<i64, ConfigError> {
        match (self.opt_int(name)?, &self.schema(name)?.default) {
            (Some(n), _) | (None, &Default::Int(n)) => Ok(n),
            (None, _) => Err(self.err(self.span(), name, "no default (a bug in smppd)")),
        }
    }

    /// An integer within the key's range, or `None` when the key is absent.
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, ConfigError> {
        let Kind::Int { min, max } = self.schema(name)?.kind else {
            return Err(self.err(self.span(), name, "not an integer key (a bug in smppd)"));
        };
        let Some(v) = self.value(name) else {
            return Ok(None);
        };
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .map_err(|_| self.err(v.span(), name, format!("{i} is too large")))?,
            _ => return Err(type_error(self.cx, v, &self.key(name), "an integer")),
        };
        if (min..=max).contains(&n) {
            Ok(Some(n))
        } else {
            let message = format!("must be between {min} and {max} (got {n})");
            Err(self.err(v.span(), name, message))
        }
    }

    /// A duration within the key's bounds, or its default.
    pub fn duration(&self, name: &str) -> Result<Duration, ConfigError> {
        let key = self.schema(name)?;
        let span = self.span_of(name);
        let text = self.str(name)?.map(|s| *s.get_ref());
        let Some(text) = text else {
            return Err(self.err(span, name, "no default (a bug in smppd)"));
        };
        let d = parse_duration(text).map_err(|m| self.err(span.clone(), name, m))?;
        let bound = |s: &str| parse_duration(s).map_err(|m| self.err(span.clone(), name, m));
        match key.kind {
            Kind::Duration(Bounds::AtLeast(min)) if d < bound(min)? => {
                Err(self.err(span, name, format!("must be at least {min}")))
            }
            Kind::Duration(Bounds::Between(min, max)) if d < bound(min)? || d > bound(max)? => {
                Err(self.err(span, name, format!("must be between {min} and {max}")))
            }
            _ => Ok(d),
        }
    }

    /// A size in bytes, or `None` when the key is absent.
    pub fn size(&self, name: &str) -> Result<Option<u64>, ConfigError> {
        match self.str(name)? {
            None => Ok(None),
            Some(s) => parse_size(s.get_ref())
                .map(Some)
                .map_err(|m| self.err(s.span(), name, m)),
        }
    }

    /// The value among `values` at the position of the word written (or the default) in the
    /// key's choices; `values` lists them in the key table's order.
    pub fn choice<T: Copy>(&self, name: &str, values: &[T]) -> Result<T, ConfigError> {
        let Some(word) = self.str(name)? else {
            return Err(self.err(self.span(), name, "no default (a bug in smppd)"));
        };
        self.pick(name, &word, values)
    }

    fn pick<T: Copy>(
        &self,
        name: &str,
        word: &Spanned<&str>,
        values: &[T],
    ) -> Result<T, ConfigError> {
        let words = match self.schema(name)?.kind {
            Kind::Choice(w) | Kind::Choices(w) => w,
            _ => &[],
        };
        match words.iter().position(|w| w == word.get_ref()) {
            Some(i) => values.get(i).copied().ok_or_else(|| {
                self.err(
                    word.span(),
                    name,
                    "no value for this choice (a bug in smppd)",
                )
            }),
            None => Err(self.err(
                word.span(),
                name,
                format!("{:?} is not one of: {}", word.get_ref(), words.join(", ")),
            )),
        }
    }

    /// An array of strings, or the key's default list (placed at the section; empty when the
    /// key has none).
    pub fn strings(&self, name: &str) -> Result<Vec<Spanned<&'a str>>, ConfigError> {
        let key = self.schema(name)?;
        match self.value(name) {
            Some(v) => self.string_items(name, v),
            None => Ok(match key.default {
                Default::List(l) => l.iter().map(|s| Spanned::new(self.span(), *s)).collect(),
                _ => Vec::new(),
            }),
        }
    }

    fn string_items(
        &self,
        name: &str,
        v: &'a Value<'a>,
    ) -> Result<Vec<Spanned<&'a str>>, ConfigError> {
        let Some(items) = v.get_ref().as_array() else {
            return Err(type_error(self.cx, v, &self.key(name), "a sequence"));
        };
        items
            .iter()
            .map(|item| match item.get_ref().as_str() {
                Some(s) => Ok(Spanned::new(item.span(), s)),
                None => Err(type_error(self.cx, item, &self.key(name), "a string")),
            })
            .collect()
    }

    /// An array of words, each mapped like [`Table::choice`].
    pub fn choices<T: Copy>(&self, name: &str, values: &[T]) -> Result<Vec<T>, ConfigError> {
        self.strings(name)?
            .iter()
            .map(|w| self.pick(name, w, values))
            .collect()
    }

    /// The raw items of an array key (`None` when absent), for keys whose items mix types.
    pub fn items(&self, name: &str) -> Option<&'a [Value<'a>]> {
        self.value(name)
            .and_then(|v| v.get_ref().as_array())
            .map(|a| &**a)
    }

    /// The key's default list.
    pub fn default_list(&self, name: &str) -> Result<&'static [&'static str], ConfigError> {
        Ok(match self.schema(name)?.default {
            Default::List(l) => l,
            _ => &[],
        })
    }

    /// `false`/`true`, or the nested table checked against its own key table.
    pub fn flag_or_table(&self, name: &str) -> Result<FlagOrTable<'a>, ConfigError> {
        let key = self.schema(name)?;
        let Kind::FlagOrTable(nested) = key.kind else {
            return Err(self.err(
                self.span(),
                name,
                "not a flag-or-table key (a bug in smppd)",
            ));
        };
        match self.value(name) {
            None => Ok(FlagOrTable::Flag(matches!(
                key.default,
                Default::Bool(true)
            ))),
            Some(v) => match v.get_ref() {
                DeValue::Boolean(b) => Ok(FlagOrTable::Flag(*b)),
                DeValue::Table(t) => Ok(FlagOrTable::Table(Table::new(
                    self.cx,
                    nested,
                    self.key(name),
                    v.span(),
                    t,
                )?)),
                _ => Err(type_error(self.cx, v, &self.key(name), key.kind.expected())),
            },
        }
    }
}
