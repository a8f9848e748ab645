//! `smppd sim`: runs the SMSC simulator ([`smppd::sim`]) from flags, with an optional local
//! control port and periodic `--stats` lines. Prints `listening on ADDR` (and `control on ADDR`)
//! on stdout first, so scripts and tests can read the bound ports.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use smppd::sim::control::{parse_duration, parse_mix, parse_status};
use smppd::sim::{IdFormat, ReceiptIds, SimConfig, Simulator};

/// Flags of `smppd sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:2775")]
    listen: String,
    /// Accepted system_id (with --password); without both, any login is accepted.
    #[arg(long, requires = "password")]
    system_id: Option<String>,
    /// Accepted password.
    #[arg(long, requires = "system_id")]
    password: Option<String>,
    /// Message id format.
    #[arg(long, value_enum, default_value_t = IdArg::Hex)]
    id_format: IdArg,
    /// Do not send delivery receipts.
    #[arg(long)]
    no_receipts: bool,
    /// Delay between a submit and its receipt (e.g. 500ms, 2s), or a range MIN..MAX (e.g.
    /// 1s..30s): each receipt waits its own delay, drawn uniformly from the range.
    #[arg(long, default_value = "0ms", value_parser = delay_range)]
    receipt_delay: (Duration, Duration),
    /// Final states of receipts with weights, e.g. DELIVRD=90,UNDELIV=5,EXPIRED=3,REJECTD=2.
    #[arg(long, default_value = "DELIVRD=1")]
    receipt_mix: String,
    /// Id base of receipts relative to submit_sm_resp: same, other (text and TLV) or other-text.
    #[arg(long, value_enum, default_value_t = ReceiptIdsArg::Same)]
    receipt_ids: ReceiptIdsArg,
    /// Send each receipt before its submit_sm_resp (transceiver binds).
    #[arg(long)]
    receipts_before_response: bool,
    /// Send every receipt twice.
    #[arg(long)]
    duplicate_receipts: bool,
    /// Answer every Nth submit with ESME_RTHROTTLED.
    #[arg(long, default_value_t = 0)]
    throttle_every: u64,
    /// Answer submits beyond this rate per second with ESME_RTHROTTLED.
    #[arg(long, default_value_t = 0)]
    throttle_above_tps: u64,
    /// Reject every bind with this status (name such as ESME_RBINDFAIL, or 0x0d).
    #[arg(long, value_parser = status)]
    reject_binds: Option<smppd::pdu::CommandStatus>,
    /// Fail this fraction (0–1) of submits with --fail-status.
    #[arg(long, default_value_t = 0.0)]
    fail_fraction: f64,
    /// Status of failed submits.
    #[arg(long, value_parser = status)]
    fail_status: Option<smppd::pdu::CommandStatus>,
    /// Close a connection at its Nth submit without answering it.
    #[arg(long, default_value_t = 0)]
    drop_after: u64,
    /// Delay every submit response.
    #[arg(long, default_value = "0ms", value_parser = duration)]
    response_delay: Duration,
    /// Do not answer enquire_link.
    #[arg(long)]
    ignore_enquire_link: bool,
    /// Outstanding deliver_sm (receipts, MO) per connection before the simulator waits for a
    /// deliver_sm_resp: the SMSC's window towards the gateway, which bounds the receipt rate a
    /// gateway that answers only after storing can reach (window / time to store).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    deliver_window: u32,
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Local control port, one command per line: stats, faults, reset, throttle_every N,
    /// throttle_above_tps N, reject_binds STATUS|off, fail FRACTION [STATUS], drop_after N,
    /// response_delay D, silent on|off, ignore_enquire_link on|off, receipts on|off,
    /// receipt_delay D, receipt_mix MIX, receipt_ids same|other|other_text,
    /// receipts_before_response on|off, duplicate_receipts on|off, drop,
    /// malformed body|command|length, mo FROM TO TEXT, mo_concat FROM TO TEXT,
    /// unknown_receipt ID, pacing (submits per 100 ms, JSON), pacing_reset.
    #[arg(long)]
    control: Option<String>,
    /// Print the counters as a JSON line every --stats-interval and at exit.
    #[arg(long)]
    stats: bool,
    /// Interval of --stats lines.
    #[arg(long, default_value = "1s", value_parser = duration)]
    stats_interval: Duration,
    /// Write every submit received as a JSON line to this file at exit.
    #[arg(long)]
    submit_log: Option<PathBuf>,
    /// Write every delivery receipt created as a JSON line to this file at exit, with how often
    /// it was sent and acknowledged (`serial`, `system_id`, `message_id`, `text`, `unknown`,
    /// `sent`, `acked`).
    #[arg(long)]
    receipt_log: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum IdArg {
    Hex,
    Decimal,
    Uuid,
    Hex32,
    Hyphenated,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReceiptIdsArg {
    Same,
    Other,
    OtherText,
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).ok_or_else(|| format!("{s:?} is not a duration such as 250ms or 2s"))
}

fn delay_range(s: &str) -> Result<(Duration, Duration), String> {
    smppd::sim::control::parse_delay_range(s)
        .ok_or_else(|| format!("{s:?} is not a duration (250ms, 2s) or a range MIN..MAX (1s..30s)"))
}

fn status(s: &str) -> Result<smppd::pdu::CommandStatus, String> {
    parse_status(s).ok_or_else(|| format!("{s:?} is not a command_status name or number"))
}

fn tls_config(cert: &PathBuf, key: &PathBuf) -> Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("--tls-cert {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("--tls-key {}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("--tls-cert/--tls-key")?;
    Ok(Arc::new(config))
}

/// Runs the simulator until Ctrl-C or SIGTERM; errors are printed with their context.
pub fn run(args: SimArgs) -> std::process::ExitCode {
    match run_inner(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smppd sim: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_inner(args: SimArgs) -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_ansi(super::log::colour_on_stderr())
        .with_writer(std::io::stderr)
        .try_init();
    if !(0.0..=1.0).contains(&args.fail_fraction) {
        bail!("--fail-fraction must be within 0..=1");
    }
    let mix = parse_mix(&args.receipt_mix)
        .with_context(|| format!("--receipt-mix {:?}", args.receipt_mix))?;
    let mut config = SimConfig::new(args.listen.clone());
    if let (Some(id), Some(pw)) = (&args.system_id, &args.password) {
        config = config.account(id, pw);
    }
    config.id_format = match args.id_format {
        IdArg::Hex => IdFormat::Hex,
        IdArg::Decimal => IdFormat::Decimal,
        IdArg::Uuid => IdFormat::Uuid,
        IdArg::Hex32 => IdFormat::Hex32,
        IdArg::Hyphenated => IdFormat::Hyphenated,
    };
    config.receipts.enabled = !args.no_receipts;
    (config.receipts.delay, config.receipts.delay_max) = args.receipt_delay;
    config.receipts.mix = mix;
    config.receipts.ids = match args.receipt_ids {
        ReceiptIdsArg::Same => ReceiptIds::Same,
        ReceiptIdsArg::Other => ReceiptIds::Other,
        ReceiptIdsArg::OtherText => ReceiptIds::OtherInText,
    };
    config.receipts.before_response = args.receipts_before_response;
    config.receipts.duplicate = args.duplicate_receipts;
    config.faults.throttle_every = args.throttle_every;
    config.faults.throttle_above_tps = args.throttle_above_tps;
    config.faults.reject_binds = args.reject_binds;
    config.faults.fail_fraction = args.fail_fraction;
    config.faults.fail_status = args.fail_status;
    config.faults.drop_after = args.drop_after;
    config.faults.response_delay = args.response_delay;
    config.faults.ignore_enquire_link = args.ignore_enquire_link;
    config.deliver_window = args.deliver_window as usize;
    config.record_submits = args.submit_log.is_some();
    config.record_receipts = args.receipt_log.is_some();
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(tls_config(cert, key)?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(serve(args, config))
}

async fn serve(args: SimArgs, config: SimConfig) -> Result<()> {
    // Before the first line is printed: whoever reads it may signal us at once.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing the SIGINT handler")?;
    let sim = Simulator::start(config).await?;
    let mut out = std::io::stdout();
    writeln!(out, "listening on {}", sim.addr())?;
    if let Some(addr) = &args.control {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("--control {addr}"))?;
        writeln!(out, "control on {}", listener.local_addr()?)?;
        tokio::spawn(smppd::sim::control::serve(listener, sim.control()));
    }
    out.flush()?;
    let mut ticker = tokio::time::interval(args.stats_interval.max(Duration::from_millis(10)));
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick(), if args.stats => {
                writeln!(out, "{}", serde_json::to_string(&sim.stats())?)?;
                out.flush()?;
            }
            _ = interrupt.recv() => break,
            _ = term.recv() => break,
        }
    }
    if args.stats {
        writeln!(out, "{}", serde_json::to_string(&sim.stats())?)?;
    }
    if let Some(path) = &args.submit_log {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("--submit-log {}", path.display()))?,
        );
        for r in sim.submits() {
            let line = serde_json::json!({
                "system_id": r.system_id,
                "connection": r.connection,
                "sequence_number": r.sequence_number,
                "source_addr": r.source_addr,
                "destination_addr": r.destination_addr,
                "esm_class": r.esm_class,
                "payload_hex": hex::encode(&r.payload),
                "validity_period": r.validity_period,
                "status": r.status.map(|s| s.name().into_owned()),
                "message_id": r.message_id,
            });
            writeln!(f, "{line}")?;
        }
        f.flush()?;
    }
    if let Some(path) = &args.receipt_log {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("--receipt-log {}", path.display()))?,
        );
        for r in sim.receipts_log() {
            writeln!(f, "{}", serde_json::to_string(&r)?)?;
        }
        f.flush()?;
    }
    sim.shutdown().await;
    Ok(())
}
