//! Session behaviour against the in-process simulator: submit and receipts, window, reconnect
//! after drops without loss, throttling backoff and recovery, TLS with a generated certificate,
//! wrong password backoff, keep-alive, response timeouts, graceful stop, inbound answers, SMSC
//! requests (enquire_link, unbind, unknown and malformed PDUs).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use smppd::pdu::{
    Address, Body, CommandStatus, Npi, OctetString, Pdu, RegisteredDelivery, SubmitSm, Ton,
};
use smppd::session::{
    BindId, BindMode, BindState, DownReason, Event, InboundPdu, Job, JobBody, RetryReason,
    SessionConfig, SmscHandle, TlsConfig,
};
use smppd::sim::{Malformed, MoMessage, SimConfig, SimHandle, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::Decoder;

fn config(addr: &str) -> SessionConfig {
    let mut c = SessionConfig::new("op-a", addr);
    c.system_id = "esme".into();
    c.password = "secret".into();
    c.window = 10;
    c.response_timeout = Duration::from_secs(5);
    c.reconnect_min = Duration::from_millis(10);
    c.reconnect_max = Duration::from_millis(200);
    c.throttle_min = Duration::from_millis(20);
    c.throttle_max = Duration::from_millis(400);
    c
}

fn sim_config() -> SimConfig {
    let mut c = SimConfig::new("127.0.0.1:0").account("esme", "secret");
    c.record_submits = true;
    c
}

fn job(key: u64) -> Job {
    let sm = SubmitSm {
        source_addr: Address::new(Ton::ALPHANUMERIC, Npi::UNKNOWN, "ACME").unwrap(),
        dest_addr: Address::new(Ton::INTERNATIONAL, Npi::ISDN, "46700000001").unwrap(),
        registered_delivery: RegisteredDelivery::RECEIPT,
        short_message: OctetString::new(Bytes::from(format!("k={key}"))).unwrap(),
        ..SubmitSm::default()
    };
    Job {
        key,
        body: JobBody::SubmitSm(sm),
        validity: None,
    }
}

fn key_of(payload: &[u8]) -> u64 {
    std::str::from_utf8(payload)
        .ok()
        .and_then(|s| s.strip_prefix("k="))
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("payload {payload:?} is not one of ours"))
}

/// What a test saw.
#[derive(Default, Debug)]
struct Outcome {
    submitted: HashMap<u64, Vec<String>>,
    failed: HashMap<u64, CommandStatus>,
    /// Jobs whose validity ended before the bind wrote them.
    expired: Vec<u64>,
    retries: Vec<(u64, RetryReason)>,
    states: Vec<(BindId, BindState)>,
    inbound: Vec<InboundPdu>,
    /// Order of interesting events: ("submitted", id) and ("receipt", id).
    order: Vec<(&'static str, String)>,
}

impl Outcome {
    fn finished(&self) -> usize {
        self.submitted.len() + self.failed.len() + self.expired.len()
    }
}

/// Plays the dispatcher: feeds jobs, puts retried jobs back (throttled ones first), answers
/// inbound PDUs with `answer` (None = drop the reply), until every job has a final outcome and
/// `done` agrees. Never blocks on the jobs channel while events wait (uses `reserve`).
async fn drive(
    handle: &SmscHandle,
    events: &mut mpsc::Receiver<Event>,
    jobs: Vec<Job>,
    answer: impl Fn(&InboundPdu) -> Option<CommandStatus>,
    done: impl Fn(&Outcome) -> bool,
) -> Outcome {
    let total = jobs.len();
    let mut queue: VecDeque<Job> = jobs.into();
    let tx = handle.jobs();
    let mut out = Outcome::default();
    let work = async {
        loop {
            if out.finished() >= total && done(&out) {
                return;
            }
            tokio::select! {
                permit = tx.reserve(), if !queue.is_empty() => {
                    if let (Ok(permit), Some(job)) = (permit, queue.pop_front()) {
                        permit.send(job);
                    }
                }
                ev = events.recv() => match ev.expect("event channel closed") {
                    Event::Submitted { key, message_id, .. } => {
                        out.order.push(("submitted", message_id.clone()));
                        out.submitted.entry(key).or_default().push(message_id);
                    }
                    Event::Failed { key, status, .. } => {
                        out.failed.insert(key, status);
                    }
                    Event::Expired { key, .. } => out.expired.push(key),
                    Event::Retry { job, reason, .. } => {
                        out.retries.push((job.key, reason));
                        if matches!(reason, RetryReason::Throttled(_)) {
                            queue.push_front(job);
                        } else {
                            queue.push_back(job);
                        }
                    }
                    Event::Inbound { pdu, reply, .. } => {
                        if let InboundPdu::DeliverSm(d) = &pdu
                            && let Some(id) = d.tlvs.receipted_message_id()
                        {
                            out.order.push(("receipt", id.as_str().unwrap_or("").to_owned()));
                        }
                        if let Some(status) = answer(&pdu) {
                            reply.answer(status);
                        }
                        out.inbound.push(pdu);
                    }
                    Event::BindState { bind, state } => out.states.push((bind, state)),
                },
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .is_err()
    {
        panic!(
            "not finished: {} of {total} final; retries {:?}; states {:?}",
            out.finished(),
            out.retries.len(),
            out.states.iter().rev().take(5).collect::<Vec<_>>()
        );
    }
    out
}

fn ok(_: &InboundPdu) -> Option<CommandStatus> {
    Some(CommandStatus::ESME_ROK)
}

async fn start(
    sim: SimConfig,
    session: impl FnOnce(&mut SessionConfig),
) -> (SimHandle, SmscHandle, mpsc::Receiver<Event>) {
    let sim = Simulator::start(sim).await.unwrap();
    let mut cfg = config(&sim.addr().to_string());
    session(&mut cfg);
    let (etx, erx) = mpsc::channel(1024);
    let handle = SmscHandle::start(cfg, 256, etx).unwrap();
    (sim, handle, erx)
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn submits_get_unique_ids_and_receipts_are_answered_after_the_consumer() {
    let (sim, handle, mut events) = start(sim_config(), |_| {}).await;
    let n = 300u64;
    let out = drive(&handle, &mut events, (0..n).map(job).collect(), ok, |o| {
        o.inbound.len() as u64 >= n
    })
    .await;
    assert_eq!(out.submitted.len() as u64, n);
    assert!(out.failed.is_empty());
    let ids: HashSet<&String> = out.submitted.values().flatten().collect();
    assert_eq!(ids.len() as u64, n, "message ids are unique");
    // Every receipt names one of our ids, in receipted_message_id and in the text.
    for pdu in &out.inbound {
        let InboundPdu::DeliverSm(d) = pdu else {
            panic!("expected deliver_sm")
        };
        assert!(d.esm_class.is_receipt());
        let id = d
            .tlvs
            .receipted_message_id()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        assert!(ids.contains(&id));
        let text = std::str::from_utf8(d.short_message.as_bytes()).unwrap();
        assert!(
            text.starts_with(&format!("id:{id} sub:001 dlvrd:001 submit date:")),
            "{text}"
        );
        assert!(text.contains(" stat:DELIVRD err:000 text:k="), "{text}");
        assert_eq!(d.tlvs.message_state().unwrap().0, 2);
    }
    wait_until("receipt acknowledgements", || {
        sim.stats().deliveries_acked == n
    })
    .await;
    let stats = sim.stats();
    assert_eq!(stats.submits, n);
    assert_eq!(stats.responses.get("ESME_ROK"), Some(&n));
    handle.stop(Duration::from_secs(1)).await;
    wait_until("unbind", || sim.stats().unbinds == 1).await;
}

#[tokio::test]
async fn the_window_is_never_exceeded() {
    let mut sc = sim_config();
    sc.faults.response_delay = Duration::from_millis(5);
    sc.receipts.enabled = false;
    let (sim, handle, mut events) = start(sc, |c| c.window = 7).await;
    let out = drive(
        &handle,
        &mut events,
        (0..300).map(job).collect(),
        ok,
        |_| true,
    )
    .await;
    assert_eq!(out.submitted.len(), 300);
    let stats = sim.stats();
    assert!(
        stats.max_window <= 7,
        "window exceeded: {}",
        stats.max_window
    );
    assert_eq!(stats.max_window, 7, "the window is used fully under load");
    assert!(handle.status()[0].in_flight <= 7);
    handle.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn across_connection_drops_nothing_is_lost_and_duplicates_stay_within_the_window() {
    let mut sc = sim_config();
    sc.faults.drop_after = 97;
    sc.receipts.enabled = false;
    let window = 10;
    let (sim, handle, mut events) = start(sc, |c| c.window = window).await;
    let n = 1000u64;
    let out = drive(&handle, &mut events, (0..n).map(job).collect(), ok, |_| {
        true
    })
    .await;
    // Every key got exactly one final answer, and it is a success.
    assert_eq!(out.submitted.len() as u64, n);
    assert!(out.submitted.values().all(|ids| ids.len() == 1));
    let lost: Vec<_> = out
        .retries
        .iter()
        .filter(|(_, r)| *r == RetryReason::ConnectionLost)
        .collect();
    let stats = sim.stats();
    assert!(stats.dropped_connections >= 9, "{stats:?}");
    assert!(stats.binds >= 10, "reconnected after each drop: {stats:?}");
    // At the SMSC: every key arrived; exactly one copy of each was answered ESME_ROK; extra
    // copies exist only for jobs that were in flight at a drop.
    let records = sim.submits();
    let mut answered_ok: HashMap<u64, usize> = HashMap::new();
    let mut copies: HashMap<u64, usize> = HashMap::new();
    for r in &records {
        let k = key_of(&r.payload);
        *copies.entry(k).or_default() += 1;
        if r.status == Some(CommandStatus::ESME_ROK) {
            *answered_ok.entry(k).or_default() += 1;
        }
    }
    assert_eq!(copies.len() as u64, n, "every message reached the SMSC");
    assert!(answered_ok.values().all(|&c| c == 1));
    assert_eq!(answered_ok.len() as u64, n);
    let duplicates = records.len() as u64 - n;
    assert!(
        duplicates <= stats.dropped_connections * window as u64,
        "{duplicates} duplicates for {} drops",
        stats.dropped_connections
    );
    assert!(
        duplicates <= lost.len() as u64,
        "a duplicate is always a handed-back job"
    );
    let down: Vec<_> = out
        .states
        .iter()
        .filter(|(_, s)| {
            matches!(
                s,
                BindState::Down {
                    reason: DownReason::Closed,
                    ..
                }
            )
        })
        .collect();
    assert!(!down.is_empty());
    handle.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn throttling_pauses_with_growing_backoff_and_recovers() {
    let mut sc = sim_config();
    sc.faults.throttle_every = 1;
    sc.receipts.enabled = false;
    let (sim, handle, mut events) = start(sc, |c| c.window = 5).await;
    let control = sim.control();
    // Lift the throttling once the bind has paused a few times.
    let lifter = tokio::spawn(async move {
        while control.stats().throttled < 25 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        control.update_faults(|f| f.throttle_every = 0);
    });
    let out = drive(&handle, &mut events, (0..50).map(job).collect(), ok, |_| {
        true
    })
    .await;
    lifter.await.unwrap();
    assert_eq!(out.submitted.len(), 50, "recovered: everything sent");
    let pauses: Vec<Duration> = out
        .states
        .iter()
        .filter_map(|(_, s)| match s {
            BindState::Throttled { pause } => Some(*pause),
            _ => None,
        })
        .collect();
    assert!(pauses.len() >= 3, "{pauses:?}");
    assert!(
        pauses.windows(2).take(3).all(|w| w[1] > w[0]),
        "pause grows: {pauses:?}"
    );
    assert!(pauses.iter().all(|p| *p <= Duration::from_millis(400)));
    assert!(
        out.retries
            .iter()
            .all(|(_, r)| *r == RetryReason::Throttled(CommandStatus::ESME_RTHROTTLED))
    );
    assert!(handle.status()[0].throttled >= 25);
    // Back to Bound after the last pause.
    assert!(out.states.iter().rev().any(|(_, s)| *s == BindState::Bound));
    handle.stop(Duration::from_secs(1)).await;
}

fn tls_server(cert: &rcgen::CertifiedKey<rcgen::KeyPair>) -> Arc<rustls::ServerConfig> {
    let chain = vec![cert.cert.der().clone()];
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    Arc::new(cfg)
}

#[tokio::test]
async fn tls_bind_with_a_generated_certificate_and_refusal_of_an_untrusted_one() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let mut sc = sim_config();
    sc.tls = Some(tls_server(&cert));
    let sim = Simulator::start(sc).await.unwrap();
    let port = sim.addr().port();

    let mut cfg = config(&format!("localhost:{port}"));
    cfg.tls = Some(TlsConfig {
        ca_file: Some(ca.clone()),
        ..TlsConfig::default()
    });
    let (etx, mut erx) = mpsc::channel(256);
    let handle = SmscHandle::start(cfg, 64, etx).unwrap();
    let out = drive(&handle, &mut erx, (0..20).map(job).collect(), ok, |o| {
        o.inbound.len() >= 20
    })
    .await;
    assert_eq!(out.submitted.len(), 20);
    handle.stop(Duration::from_secs(1)).await;

    // The same server with only the system roots: the certificate is not trusted, the bind
    // fails with a clear error and backs off.
    let mut cfg = config(&format!("localhost:{port}"));
    cfg.tls = Some(TlsConfig::default());
    let (etx, mut erx) = mpsc::channel(256);
    match SmscHandle::start(cfg, 64, etx) {
        Ok(handle) => {
            let reason = loop {
                match erx.recv().await.unwrap() {
                    Event::BindState {
                        state: BindState::Down { reason, .. },
                        ..
                    } => break reason,
                    _ => continue,
                }
            };
            let text = reason.to_string();
            assert!(
                text.contains("tls handshake") && text.contains("certificate"),
                "{text}"
            );
            handle.stop(Duration::from_millis(10)).await;
        }
        // A machine without any system roots refuses at start, which is as clear.
        Err(e) => assert!(e.to_string().contains("root"), "{e}"),
    }
}

/// The `retry_in` of every `Down` state seen, in order.
fn down_delays(out: &Outcome) -> Vec<Duration> {
    out.states
        .iter()
        .filter_map(|(_, s)| match s {
            BindState::Down { retry_in, .. } => Some(*retry_in),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_bind_that_worked_comes_back_after_the_minimum_delay_when_the_smsc_drops_it() {
    // An SMSC that drops every connection at its 40th submit (maintenance, idle timers, load
    // balancers): each connection carried 39 answered submits, so each drop is followed by a
    // reconnect after exactly reconnect_min, however many drops there were.
    let mut sc = sim_config();
    sc.faults.drop_after = 40;
    sc.receipts.enabled = false;
    let min = Duration::from_millis(100);
    let (sim, handle, mut events) = start(sc, |c| {
        c.window = 5;
        c.reconnect_min = min;
        c.reconnect_max = Duration::from_secs(30);
    })
    .await;
    let out = drive(
        &handle,
        &mut events,
        (0..250).map(job).collect(),
        ok,
        |_| true,
    )
    .await;
    assert_eq!(out.submitted.len(), 250);
    let delays = down_delays(&out);
    assert!(delays.len() >= 5, "dropped {} times", delays.len());
    assert!(delays.iter().all(|d| *d == min), "{delays:?}");
    assert!(sim.stats().dropped_connections >= 5);

    // The same SMSC now drops every connection at its first submit, before answering anything:
    // a bind that carries nothing is flapping, and the delay grows from there.
    sim.update_faults(|f| f.drop_after = 1);
    let mut flaps = Vec::new();
    let more = tokio::spawn({
        let tx = handle.jobs();
        async move {
            for k in 1000..1010 {
                let _ = tx.send(job(k)).await;
            }
        }
    });
    while flaps.len() < 4 {
        match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
            Ok(Some(Event::BindState {
                state: BindState::Down { retry_in, .. },
                ..
            })) => flaps.push(retry_in),
            Ok(Some(Event::Retry { job, .. })) => {
                let _ = handle.jobs().try_send(job);
            }
            Ok(Some(_)) => {}
            other => panic!("expected bind downs, got {other:?}; so far {flaps:?}"),
        }
    }
    // Full jitter: each delay is uniform in [min, min * 2^failures]; all four at exactly the
    // minimum would mean the backoff did not grow.
    assert!(flaps.iter().all(|d| *d >= min), "{flaps:?}");
    assert!(flaps.iter().any(|d| *d > min), "backoff grows: {flaps:?}");
    more.abort();
    handle.stop(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_wrong_password_is_reported_by_name_and_backs_off() {
    let sim = Simulator::start(sim_config()).await.unwrap();
    let mut cfg = config(&sim.addr().to_string());
    cfg.password = "wrong".into();
    cfg.reconnect_min = Duration::from_secs(1);
    cfg.reconnect_max = Duration::from_secs(30);
    let (etx, mut erx) = mpsc::channel(256);
    let handle = SmscHandle::start(cfg, 16, etx).unwrap();
    let started = tokio::time::Instant::now();
    let mut delays = Vec::new();
    let mut rejections = 0u64;
    while started.elapsed() < Duration::from_secs(120) {
        match tokio::time::timeout(Duration::from_secs(200), erx.recv()).await {
            Ok(Some(Event::BindState {
                state: BindState::Down { reason, retry_in },
                ..
            })) => {
                // With the clock paused, a loaded machine can let a connect or bind timer fire
                // before loopback I/O is seen; those are downs too, and back off the same way.
                if let DownReason::BindRejected(status) = &reason {
                    assert_eq!(*status, CommandStatus::ESME_RINVPASWD);
                    assert!(reason.to_string().contains("ESME_RINVPASWD"));
                    rejections += 1;
                }
                delays.push(retry_in);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    // In two virtual minutes: a handful of attempts, never a loop, each at least the minimum.
    // (Full jitter: delays are uniform in [1 s, ceiling], so about 11 attempts on average and 16
    // now and then; 30 would need 29 delays averaging 4 s with a 30 s ceiling.)
    let attempts = sim.stats().binds_rejected;
    assert!(
        (3..=30).contains(&attempts),
        "{attempts} bind attempts in 120 s"
    );
    // (The last rejection may be counted at the SMSC before its event reached us.)
    assert!(
        rejections + 1 >= attempts && rejections <= attempts,
        "every rejection was reported by name: {rejections} of {attempts}"
    );
    assert!(
        delays.iter().all(|d| *d >= Duration::from_secs(1)),
        "{delays:?}"
    );
    assert!(
        delays.iter().any(|d| *d > Duration::from_secs(4)),
        "backoff grows: {delays:?}"
    );
    let failures = handle.status()[0].bind_failures;
    assert!(failures >= delays.len() as u64 && failures <= delays.len() as u64 + 1);
    handle.stop(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_missing_enquire_link_resp_marks_the_bind_dead_and_it_rebinds() {
    let mut sc = sim_config();
    sc.faults.ignore_enquire_link = true;
    let (sim, handle, mut erx) = start(sc, |c| {
        c.enquire_link = Duration::from_secs(30);
        c.response_timeout = Duration::from_secs(10);
    })
    .await;
    let mut saw_timeout = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(300), erx.recv()).await {
            Ok(Some(Event::BindState {
                state: BindState::Down { reason, .. },
                ..
            })) => {
                // (A bind timer firing early under a paused clock is tolerated; see above.)
                saw_timeout |= reason == DownReason::KeepAliveTimeout;
            }
            Ok(Some(Event::BindState {
                state: BindState::Bound,
                ..
            })) if saw_timeout => break,
            Ok(Some(_)) => {}
            other => panic!("no keep-alive timeout: {other:?}"),
        }
    }
    let stats = sim.stats();
    assert!(stats.enquire_links >= 1);
    assert!(stats.binds >= 2);
    handle.stop(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn keep_alive_is_answered_and_the_bind_stays_up() {
    let (sim, handle, mut erx) =
        start(sim_config(), |c| c.enquire_link = Duration::from_millis(50)).await;
    wait_until("enquire_links", || sim.stats().enquire_links >= 4).await;
    assert_eq!(
        sim.stats().binds,
        1,
        "no reconnect while enquire_link is answered"
    );
    handle.stop(Duration::from_millis(100)).await;
    while let Some(ev) = erx.recv().await {
        if let Event::BindState {
            state: BindState::Down { reason, .. },
            ..
        } = ev
        {
            panic!("bind went down: {reason}");
        }
    }
}

#[tokio::test]
async fn a_response_that_never_comes_hands_the_job_back_and_is_counted() {
    let mut sc = sim_config();
    sc.receipts.enabled = false;
    let (sim, handle, mut erx) =
        start(sc, |c| c.response_timeout = Duration::from_millis(300)).await;
    // Bound first, then the SMSC goes silent.
    loop {
        if let Some(Event::BindState {
            state: BindState::Bound,
            ..
        }) = erx.recv().await
        {
            break;
        }
    }
    sim.update_faults(|f| f.silent = true);
    handle.jobs().send(job(1)).await.unwrap();
    handle.jobs().send(job(2)).await.unwrap();
    let mut back = Vec::new();
    while back.len() < 2 {
        if let Some(Event::Retry { job, reason, .. }) = erx.recv().await {
            assert_eq!(reason, RetryReason::ResponseTimeout);
            assert!(reason.outcome_unknown());
            back.push(job.key);
        }
    }
    back.sort();
    assert_eq!(back, vec![1, 2]);
    assert_eq!(handle.status()[0].response_timeouts, 2);
    assert_eq!(sim.stats().submits, 2);
    handle.stop(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn graceful_stop_waits_for_in_flight_and_hands_back_the_rest() {
    let mut sc = sim_config();
    sc.faults.response_delay = Duration::from_millis(300);
    sc.receipts.enabled = false;
    let (sim, handle, mut erx) = start(sc, |c| c.window = 10).await;
    loop {
        if let Some(Event::BindState {
            state: BindState::Bound,
            ..
        }) = erx.recv().await
        {
            break;
        }
    }
    for k in 0..30 {
        handle.jobs().send(job(k)).await.unwrap();
    }
    wait_until("a full window at the SMSC", || sim.stats().submits == 10).await;
    // Drain long enough for the 10 in flight; the 20 queued are handed back unsent.
    let stopper = tokio::spawn(handle.stop(Duration::from_secs(3)));
    let mut submitted = 0;
    let mut shutdown = Vec::new();
    while let Some(ev) = erx.recv().await {
        match ev {
            Event::Submitted { .. } => submitted += 1,
            Event::Retry {
                job,
                reason: RetryReason::Shutdown,
                ..
            } => shutdown.push(job.key),
            Event::Retry { reason, .. } => panic!("unexpected retry {reason}"),
            _ => {}
        }
    }
    stopper.await.unwrap();
    assert_eq!(submitted, 10);
    assert_eq!(shutdown.len(), 20);
    assert_eq!(sim.stats().unbinds, 1);
    assert_eq!(sim.stats().submits, 10);
}

#[tokio::test]
async fn stop_deadline_hands_back_what_is_still_in_flight() {
    let mut sc = sim_config();
    sc.faults.response_delay = Duration::from_secs(30);
    sc.receipts.enabled = false;
    let (sim, handle, mut erx) = start(sc, |c| c.window = 5).await;
    for k in 0..5 {
        handle.jobs().send(job(k)).await.unwrap();
    }
    wait_until("5 in flight", || sim.stats().submits == 5).await;
    let stopper = tokio::spawn(handle.stop(Duration::from_millis(100)));
    let mut back = 0;
    while let Some(ev) = erx.recv().await {
        if let Event::Retry { reason, .. } = ev {
            assert_eq!(reason, RetryReason::Shutdown);
            back += 1;
        }
    }
    stopper.await.unwrap();
    assert_eq!(back, 5, "in-flight jobs come back at the deadline");
}

#[tokio::test]
async fn inbound_is_answered_only_by_the_consumer_and_redelivered_when_it_does_not() {
    let mut sc = sim_config();
    sc.deliver_timeout = Duration::from_secs(30);
    let (sim, handle, mut erx) =
        start(sc, |c| c.inbound_timeout = Duration::from_millis(200)).await;
    loop {
        if let Some(Event::BindState {
            state: BindState::Bound,
            ..
        }) = erx.recv().await
        {
            break;
        }
    }
    let long: String = "Hej världen, ".repeat(8);
    sim.inject_mo(MoMessage {
        system_id: Some("esme".into()),
        from: "+46701234567".into(),
        to: "72000".into(),
        text: long.clone(),
        concatenated: false,
    });
    // First delivery: dropped reply → ESME_RX_T_APPN → redelivered; second time answered.
    let mut parts = Vec::new();
    let mut dropped = 0;
    while parts.len() < 2 {
        let Some(Event::Inbound {
            pdu: InboundPdu::DeliverSm(d),
            reply,
            ..
        }) = erx.recv().await
        else {
            continue;
        };
        if dropped < 2 {
            dropped += 1;
            drop(reply);
        } else {
            reply.ok();
            parts.push(d);
        }
    }
    wait_until("acks", || sim.stats().deliveries_acked == 2).await;
    assert!(sim.stats().deliveries_retried >= 2, "{:?}", sim.stats());
    // A concatenated UCS-2 MO: UDH 05 00 03 ref 2 n.
    let mut seen: Vec<u8> = parts
        .iter()
        .map(|d| {
            let b = d.short_message.as_bytes();
            assert!(d.esm_class.udhi());
            assert_eq!(d.data_coding.0, 8);
            assert_eq!(&b[..3], &[5, 0, 3]);
            assert_eq!(b[4], 2);
            b[5]
        })
        .collect();
    seen.sort();
    assert_eq!(seen, vec![1, 2]);
    handle.stop(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn receipts_reach_the_receiver_of_a_tx_rx_pair_even_before_the_response() {
    let mut sc = sim_config();
    sc.receipts.before_response = true;
    let (sim, handle, mut erx) = start(sc, |c| {
        c.mode = BindMode::TxRx;
        c.binds = 2;
    })
    .await;
    let out = drive(&handle, &mut erx, (0..100).map(job).collect(), ok, |o| {
        o.inbound.len() >= 100
    })
    .await;
    assert_eq!(out.submitted.len(), 100);
    assert_eq!(sim.stats().bound_now, 4);
    handle.stop(Duration::from_millis(200)).await;

    // On a transceiver, "before the response" is a strict order on the wire.
    let mut sc = sim_config();
    sc.receipts.before_response = true;
    let (_sim, handle, mut erx) = start(sc, |_| {}).await;
    let out = drive(&handle, &mut erx, (0..50).map(job).collect(), ok, |o| {
        o.inbound.len() >= 50
    })
    .await;
    let first_seen: HashMap<&str, usize> = out
        .order
        .iter()
        .enumerate()
        .rev()
        .map(|(i, (_, id))| (id.as_str(), i))
        .collect();
    for (i, (kind, id)) in out.order.iter().enumerate() {
        if *kind == "receipt" {
            assert_eq!(
                first_seen[id.as_str()],
                i,
                "receipt {id} came before its response"
            );
        }
    }
    handle.stop(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn malformed_pdus_get_generic_nack_and_a_broken_frame_reconnects() {
    let (sim, handle, mut erx) = start(sim_config(), |_| {}).await;
    loop {
        if let Some(Event::BindState {
            state: BindState::Bound,
            ..
        }) = erx.recv().await
        {
            break;
        }
    }
    sim.send_malformed(Malformed::UnknownCommand);
    sim.send_malformed(Malformed::Body);
    wait_until("two generic_nacks", || {
        sim.stats().generic_nacks_received == 2
    })
    .await;
    assert_eq!(sim.stats().binds, 1, "the connection is kept");
    sim.send_malformed(Malformed::OversizeLength);
    let mut reason = None;
    while let Some(ev) = erx.recv().await {
        match ev {
            Event::BindState {
                state: BindState::Down { reason: r, .. },
                ..
            } => reason = Some(r),
            Event::BindState {
                state: BindState::Bound,
                ..
            } if reason.is_some() => break,
            _ => {}
        }
    }
    assert!(
        matches!(reason, Some(DownReason::Io(ref e)) if e.contains("framing")),
        "{reason:?}"
    );
    handle.stop(Duration::from_millis(100)).await;
}

/// A hand-written SMSC that sends what the simulator never does: enquire_link and unbind.
#[tokio::test]
async fn the_smscs_enquire_link_and_unbind_are_answered() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (etx, mut erx) = mpsc::channel(64);
    let handle = SmscHandle::start(config(&addr), 4, etx).unwrap();
    let (mut sock, _) = listener.accept().await.unwrap();
    let mut codec = smppd::pdu::PduCodec::default();
    let mut buf = BytesMut::new();
    let mut next = |sock: &mut tokio::net::TcpStream, buf: &mut BytesMut| {
        let _ = sock;
        codec.decode(buf).unwrap()
    };
    async fn read_pdu(
        sock: &mut tokio::net::TcpStream,
        buf: &mut BytesMut,
        next: &mut impl FnMut(&mut tokio::net::TcpStream, &mut BytesMut) -> Option<smppd::pdu::Frame>,
    ) -> Pdu {
        loop {
            if let Some(smppd::pdu::Frame::Pdu(p)) = next(sock, buf) {
                return p;
            }
            assert!(sock.read_buf(buf).await.unwrap() > 0, "ESME closed");
        }
    }
    let bind = read_pdu(&mut sock, &mut buf, &mut next).await;
    let Body::BindTransceiver(b) = &bind.body else {
        panic!("{bind:?}")
    };
    assert_eq!(b.system_id.as_str(), Some("esme"));
    assert_eq!(b.interface_version, 0x34);
    let resp = Pdu::new(
        bind.sequence_number,
        Body::BindTransceiverResp(Default::default()),
    );
    sock.write_all(&resp.to_bytes().unwrap()).await.unwrap();
    sock.write_all(&Pdu::new(77, Body::EnquireLink).to_bytes().unwrap())
        .await
        .unwrap();
    let r = read_pdu(&mut sock, &mut buf, &mut next).await;
    assert_eq!((r.sequence_number, r.body), (77, Body::EnquireLinkResp));
    // An unknown request (query_sm from the SMSC) → generic_nack ESME_RINVCMDID.
    let q = Pdu::new(78, Body::QuerySm(Default::default()));
    sock.write_all(&q.to_bytes().unwrap()).await.unwrap();
    let r = read_pdu(&mut sock, &mut buf, &mut next).await;
    assert_eq!(r.body, Body::GenericNack);
    assert_eq!(
        (r.sequence_number, r.command_status),
        (78, CommandStatus::ESME_RINVCMDID)
    );
    // alert_notification has no response: the next PDU we read answers the unbind.
    let alert = Pdu::new(80, Body::AlertNotification(Default::default()));
    sock.write_all(&alert.to_bytes().unwrap()).await.unwrap();
    sock.write_all(&Pdu::new(79, Body::Unbind).to_bytes().unwrap())
        .await
        .unwrap();
    let r = read_pdu(&mut sock, &mut buf, &mut next).await;
    assert_eq!((r.sequence_number, r.body), (79, Body::UnbindResp));
    // The session reports the unbind and comes back.
    loop {
        if let Some(Event::BindState {
            state: BindState::Down { reason, .. },
            ..
        }) = erx.recv().await
        {
            assert_eq!(reason, DownReason::UnboundBySmsc);
            break;
        }
    }
    let (_again, _) = listener.accept().await.unwrap();
    handle.stop(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn dropping_the_handle_hands_everything_back() {
    let mut sc = sim_config();
    sc.faults.response_delay = Duration::from_secs(30);
    sc.receipts.enabled = false;
    let (sim, handle, mut erx) = start(sc, |c| c.window = 2).await;
    for k in 0..5 {
        handle.jobs().send(job(k)).await.unwrap();
    }
    wait_until("2 in flight", || sim.stats().submits == 2).await;
    drop(handle);
    let mut back = Vec::new();
    while let Some(ev) = erx.recv().await {
        if let Event::Retry { job, reason, .. } = ev {
            assert_eq!(reason, RetryReason::Shutdown);
            back.push(job.key);
        }
    }
    back.sort();
    assert_eq!(back, vec![0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn tls_with_a_client_certificate_for_smscs_that_require_one() {
    let server = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let client = rcgen::generate_simple_self_signed(vec!["esme.test".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, pem: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let ca = write("ca.pem", server.cert.pem());
    let cert = write("client.pem", client.cert.pem());
    let key = write("client.key", client.signing_key.serialize_pem());

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(client.cert.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let server_key =
        rustls::pki_types::PrivateKeyDer::try_from(server.signing_key.serialize_der()).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server.cert.der().clone()], server_key)
        .unwrap();
    let mut sc = sim_config();
    sc.tls = Some(Arc::new(tls));
    sc.receipts.enabled = false;
    let sim = Simulator::start(sc).await.unwrap();
    let port = sim.addr().port();

    let mut cfg = config(&format!("localhost:{port}"));
    cfg.tls = Some(TlsConfig {
        ca_file: Some(ca.clone()),
        client_cert: Some(cert),
        client_key: Some(key),
        ..TlsConfig::default()
    });
    let (etx, mut erx) = mpsc::channel(64);
    let handle = SmscHandle::start(cfg, 16, etx).unwrap();
    let out = drive(&handle, &mut erx, (0..5).map(job).collect(), ok, |_| true).await;
    assert_eq!(out.submitted.len(), 5);
    handle.stop(Duration::from_millis(100)).await;

    // Without the client certificate the server refuses the handshake: no bind.
    let mut cfg = config(&format!("localhost:{port}"));
    cfg.tls = Some(TlsConfig {
        ca_file: Some(ca),
        ..TlsConfig::default()
    });
    let (etx, mut erx) = mpsc::channel(64);
    let handle = SmscHandle::start(cfg, 16, etx).unwrap();
    loop {
        match erx.recv().await.unwrap() {
            Event::BindState {
                state: BindState::Down { .. },
                ..
            } => break,
            Event::BindState {
                state: BindState::Bound,
                ..
            } => panic!("bound without a client certificate"),
            _ => {}
        }
    }
    handle.stop(Duration::from_millis(10)).await;
    assert_eq!(sim.stats().binds, 1);

    // Half a client identity is refused at start, naming the keys.
    let mut cfg = config(&format!("localhost:{port}"));
    cfg.tls = Some(TlsConfig {
        ca_file: Some(dir.path().join("ca.pem")),
        client_cert: Some(dir.path().join("client.pem")),
        ..TlsConfig::default()
    });
    let (etx, _erx) = mpsc::channel(4);
    let err = SmscHandle::start(cfg, 4, etx).unwrap_err();
    assert!(
        err.to_string().contains("client_cert and client_key"),
        "{err}"
    );
}

#[tokio::test]
async fn temporary_statuses_come_back_for_retry_and_permanent_ones_fail_by_name() {
    let mut sc = sim_config();
    sc.receipts.enabled = false;
    sc.faults.fail_fraction = 0.1;
    let (sim, handle, mut erx) = start(sc, |_| {}).await;
    let out = drive(&handle, &mut erx, (0..500).map(job).collect(), ok, |_| true).await;
    assert_eq!(
        out.submitted.len(),
        500,
        "every temporary failure was retried to success"
    );
    let temporary = out
        .retries
        .iter()
        .filter(|(_, r)| *r == RetryReason::Temporary(CommandStatus::ESME_RSYSERR))
        .count();
    assert!(temporary > 10, "{temporary}");
    assert_eq!(temporary, out.retries.len());

    sim.update_faults(|f| {
        f.fail_fraction = 1.0;
        f.fail_status = Some(CommandStatus::ESME_RINVDSTADR);
    });
    let out = drive(
        &handle,
        &mut erx,
        (1000..1010).map(job).collect(),
        ok,
        |_| true,
    )
    .await;
    assert_eq!(out.failed.len(), 10);
    assert!(
        out.failed
            .values()
            .all(|s| s.to_string() == "ESME_RINVDSTADR")
    );
    assert!(
        out.retries.is_empty(),
        "a permanent status is never retried"
    );
    handle.stop(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn data_sm_jobs_are_sent_and_answered() {
    use smppd::pdu::{DataSm, Tlv, Tlvs};
    let (sim, handle, mut erx) = start(sim_config(), |_| {}).await;
    let jobs: Vec<Job> = (0..20)
        .map(|key| Job {
            key,
            body: JobBody::DataSm(DataSm {
                source_addr: Address::new(Ton::ALPHANUMERIC, Npi::UNKNOWN, "ACME").unwrap(),
                dest_addr: Address::new(Ton::INTERNATIONAL, Npi::ISDN, "46700000001").unwrap(),
                registered_delivery: RegisteredDelivery::RECEIPT,
                tlvs: Tlvs::new().with(Tlv::MessagePayload(
                    OctetString::new(Bytes::from(format!("k={key}"))).unwrap(),
                )),
                ..DataSm::default()
            }),
            validity: None,
        })
        .collect();
    let out = drive(&handle, &mut erx, jobs, ok, |o| o.inbound.len() >= 20).await;
    assert_eq!(out.submitted.len(), 20);
    let keys: HashSet<u64> = sim.submits().iter().map(|r| key_of(&r.payload)).collect();
    assert_eq!(keys.len(), 20);
    handle.stop(Duration::from_millis(100)).await;
}

/// The seconds of a relative SMPP time written as days, hours, minutes and seconds.
fn relative_secs(t: &str) -> u64 {
    assert!(
        t.len() == 16 && t.starts_with("0000") && t.ends_with("000R"),
        "{t:?}"
    );
    let n = |r: std::ops::Range<usize>| t[r].parse::<u64>().expect("digits");
    n(4..6) * 86_400 + n(6..8) * 3600 + n(8..10) * 60 + n(10..12)
}

#[tokio::test]
async fn a_job_past_its_validity_is_not_written_and_a_valid_one_carries_the_time_left() {
    use smppd::session::{Validity, ValidityFormat};
    use std::time::SystemTime;
    let mut sc = sim_config();
    // Window 1 and a slow SMSC: each job waits for the one before it to be answered.
    sc.faults.response_delay = Duration::from_millis(1500);
    sc.receipts.enabled = false;
    let (sim, handle, mut events) = start(sc, |c| c.window = 1).await;
    let now = SystemTime::now();
    let with = |key, left: Duration, format| Job {
        validity: Some(Validity {
            until: now + left,
            format,
        }),
        ..job(key)
    };
    let absolute_until = now + Duration::from_secs(7200);
    let jobs = vec![
        job(0),
        // Still valid when handed over, ended by the time the window has room for it.
        with(1, Duration::from_millis(1000), ValidityFormat::Relative),
        with(2, Duration::from_secs(3600), ValidityFormat::Relative),
        with(3, Duration::from_secs(7200), ValidityFormat::Absolute),
        with(4, Duration::from_secs(3600), ValidityFormat::None),
    ];
    let out = drive(&handle, &mut events, jobs, ok, |_| true).await;
    assert_eq!(out.expired, vec![1], "{out:?}");
    let mut sent: Vec<u64> = out.submitted.keys().copied().collect();
    sent.sort_unstable();
    assert_eq!(sent, vec![0, 2, 3, 4]);

    let seen: HashMap<u64, String> = sim
        .submits()
        .iter()
        .map(|r| (key_of(&r.payload), r.validity_period.clone()))
        .collect();
    assert!(
        !seen.contains_key(&1),
        "an expired job reached the SMSC: {seen:?}"
    );
    assert_eq!(seen[&0], "", "no validity: the SMSC's default");
    // Written about 3 s after `now` (two slow answers before it): the time left, not the
    // whole hour.
    let left = relative_secs(&seen[&2]);
    assert!((3500..3600).contains(&left), "{} = {left} s", seen[&2]);
    let secs = absolute_until
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs() as i64;
    assert_eq!(seen[&3], smppd::pdu::smpp_time_utc(secs).to_string());
    assert!(seen[&3].ends_with("000+"), "{}", seen[&3]);
    assert_eq!(seen[&4], "", "format none leaves the field empty");
    handle.stop(Duration::from_secs(1)).await;
}
