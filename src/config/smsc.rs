//! `[[smsc]]` sections (and their `tls` tables) to validated [`Smsc`]s.
//!
//! Owns what an SMSC's values must satisfy beyond their key table: unique names, `host:port`,
//! SMPP 3.4's length limits on the login, TLS files that exist, backoff bounds in order, known
//! command_status names. Must never write a default, range or choice list (they are in
//! [`super::keys`]) and never echo a password in an error.

use toml::Spanned;
use toml::de::DeValue;

use super::table::{FlagOrTable, Table};
use super::values::{status_named, valid_name};
use super::*;

/// Every `[[smsc]]`, in file order, with unique names.
pub(super) fn smscs(tables: &[Table<'_>]) -> Result<Vec<Smsc>, ConfigError> {
    let mut smscs: Vec<Smsc> = Vec::with_capacity(tables.len());
    for t in tables {
        let smsc = smsc(t)?;
        if smscs.iter().any(|o| o.name == smsc.name) {
            let message = format!("duplicate SMSC name {:?}", smsc.name);
            return Err(t.err(t.span_of("name"), "name", message));
        }
        smscs.push(smsc);
    }
    Ok(smscs)
}

fn smsc(t: &Table<'_>) -> Result<Smsc, ConfigError> {
    let name = t.required("name")?;
    if !valid_name(name.get_ref()) {
        let message = "names are 1-64 characters of letters, digits, '-', '_' and '.'";
        return Err(t.err(name.span(), "name", message));
    }
    let (host, port) = address(t)?;
    let tls = tls(t, &host)?;
    let (system_id, password, system_type) = login(t)?;
    let reconnect_min = t.duration("reconnect_min")?;
    let reconnect_max = t.duration("reconnect_max")?;
    if reconnect_max < reconnect_min {
        let message = "must not be shorter than reconnect_min";
        return Err(t.err(t.span_of("reconnect_max"), "reconnect_max", message));
    }
    use NationalLanguage::{Portuguese, Spanish, Turkish};
    let mut shift_tables = t.choices("shift_tables", &[Turkish, Spanish, Portuguese])?;
    dedup(&mut shift_tables);
    Ok(Smsc {
        name: (*name.get_ref()).to_owned(),
        host,
        port,
        tls,
        system_id,
        password,
        system_type,
        bind: t.choice("bind", &[BindMode::Transceiver, BindMode::TxRx])?,
        binds: t.int("binds")? as u16,
        window: t.int("window")? as u32,
        tps: t.opt_int("tps")?.map(|n| n as u32),
        enquire_link: t.duration("enquire_link")?,
        response_timeout: t.duration("response_timeout")?,
        reconnect_min,
        reconnect_max,
        split: t.choice(
            "split",
            &[
                SplitMethod::Udh8,
                SplitMethod::Udh16,
                SplitMethod::Sar,
                SplitMethod::Payload,
            ],
        )?,
        receipt_id: t.choice(
            "receipt_id",
            &[
                ReceiptIdRule::Same,
                ReceiptIdRule::HexToDec,
                ReceiptIdRule::DecToHex,
            ],
        )?,
        shift_tables,
        gsm_packed: t.bool("gsm_packed")?,
        max_parts: t.int("max_parts")? as u8,
        failover_statuses: failover_statuses(t)?,
        acceptd_final: t.bool("acceptd_final")?,
        validity: t.choice(
            "validity",
            &[
                ValidityFormat::Relative,
                ValidityFormat::Absolute,
                ValidityFormat::None,
            ],
        )?,
    })
}

/// Keeps the first of each repeated item, in order.
fn dedup<T: PartialEq>(items: &mut Vec<T>) {
    let mut i = 0;
    while i < items.len() {
        if items[..i].contains(&items[i]) {
            items.remove(i);
        } else {
            i += 1;
        }
    }
}

/// `host:port` (an IPv6 host in brackets).
fn address(t: &Table<'_>) -> Result<(String, u16), ConfigError> {
    let address = t.required("address")?;
    match address.get_ref().rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => match p.parse::<u16>() {
            Ok(p) if p > 0 => Ok((
                h.trim_start_matches('[').trim_end_matches(']').to_owned(),
                p,
            )),
            _ => Err(t.err(
                address.span(),
                "address",
                format!("{p:?} is not a port number"),
            )),
        },
        _ => {
            let message = format!(
                "{:?} is not host:port (SMPP's usual port is 2775)",
                address.get_ref()
            );
            Err(t.err(address.span(), "address", message))
        }
    }
}

/// system_id, password and system_type within SMPP 3.4's limits.
fn login(t: &Table<'_>) -> Result<(String, Secret, String), ConfigError> {
    let system_id = t.required("system_id")?;
    let id = *system_id.get_ref();
    if id.is_empty() || id.len() > 15 || !id.is_ascii() {
        let message = "must be 1-15 ASCII characters (SMPP 3.4 limit)";
        return Err(t.err(system_id.span(), "system_id", message));
    }
    let password = t.required("password")?;
    let pw = *password.get_ref();
    if pw.len() > 8 || !pw.is_ascii() {
        // The value is never echoed: only its length.
        let message = format!(
            "must be at most 8 ASCII characters (SMPP 3.4 limit); it has {}",
            pw.chars().count()
        );
        return Err(t.err(password.span(), "password", message));
    }
    let system_type = t.required("system_type")?;
    if system_type.get_ref().len() > 12 || !system_type.get_ref().is_ascii() {
        let message = "must be at most 12 ASCII characters";
        return Err(t.err(system_type.span(), "system_type", message));
    }
    Ok((
        id.to_owned(),
        Secret::new(pw.to_owned()),
        (*system_type.get_ref()).to_owned(),
    ))
}

fn tls(t: &Table<'_>, host: &str) -> Result<Option<Tls>, ConfigError> {
    let table = match t.flag_or_table("tls")? {
        FlagOrTable::Flag(false) => return Ok(None),
        FlagOrTable::Flag(true) => {
            return Ok(Some(Tls {
                server_name: Some(host.to_owned()),
                ..Tls::default()
            }));
        }
        FlagOrTable::Table(table) => table,
    };
    let ca_file = table.file("ca")?;
    let (client_cert, client_key) = (table.file("cert")?, table.file("key")?);
    if client_cert.is_some() != client_key.is_some() {
        return Err(table.section_err(table.span(), "cert and key must be given together"));
    }
    let server_name = table.str("server_name")?.map_or(host, |s| *s.get_ref());
    Ok(Some(Tls {
        ca_file,
        client_cert,
        client_key,
        server_name: Some(server_name.to_owned()),
        insecure_skip_verify: table.bool("insecure")?,
    }))
}

/// Names or numbers; the default list is of names.
fn failover_statuses(t: &Table<'_>) -> Result<Vec<u32>, ConfigError> {
    let Some(items) = t.items("failover_statuses") else {
        return Ok(t
            .default_list("failover_statuses")?
            .iter()
            .filter_map(|n| status_named(n))
            .collect());
    };
    items
        .iter()
        .map(|v| {
            let status = match v.get_ref() {
                DeValue::Integer(i) => u32::from_str_radix(i.as_str(), i.radix())
                    .ok()
                    .filter(|n| *n > 0),
                DeValue::String(name) => status_named(name),
                _ => None,
            };
            status.ok_or_else(|| {
                let message = format!(
                    "{} is not a command_status number or a known name such as \"ESME_RSYSERR\"",
                    shown(v)
                );
                t.err(v.span(), "failover_statuses", message)
            })
        })
        .collect()
}

/// A value as TOML writes it (strings quoted), for error messages.
fn shown(v: &Spanned<DeValue<'_>>) -> String {
    match v.get_ref() {
        DeValue::String(s) => format!("{s:?}"),
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(f) => f.to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}
