//! One ESME connection of the simulator: bind, submits, responses (possibly delayed), enquire_link,
//! unbind, deliveries (receipts and MO) with their responses, and the per-connection faults.
//! Reads in batches and answers each batch with one write, so a window of submits costs one
//! syscall each way. Never blocks on another connection.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_util::codec::Decoder;
use tracing::{debug, info};

use super::receipts;
use super::state::{ConnEntry, Delivery, Live, Outbound, Shared, SubmitRecord};
use crate::pdu::codec::{Frame, PduCodec};
use crate::pdu::{
    Bind, BindResp, Body, CommandStatus, DataSm, Pdu, SubmitSm, SubmitSmResp, Tlv, Tlvs,
};

/// Outbound queue per connection (receipts, MO, faults waiting to be written).
const OUTBOUND_QUEUE: usize = 1024;
const MAX_SEQ: u32 = 0x7FFF_FFFF;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Transmitter,
    Receiver,
    Transceiver,
}

struct Bound {
    system_id: Arc<str>,
    role: Role,
}

/// What a submit needs to produce its receipt.
pub(crate) struct SubmitInfo<'a> {
    pub source: (u8, u8, &'a [u8]),
    pub dest: (u8, u8, &'a [u8]),
    pub payload: &'a [u8],
    pub wants_receipt: u8,
}

struct Conn {
    id: u64,
    shared: Arc<Shared>,
    live: Live,
    generation: u64,
    bound: Option<Bound>,
    wbuf: BytesMut,
    /// Submits received and not yet answered on the wire.
    unanswered: u64,
    /// Responses encoded into `wbuf` and not yet written.
    answered_unwritten: u64,
    submits_here: u64,
    delayed: VecDeque<(Instant, Pdu, bool)>,
    deliveries: HashMap<u32, (Delivery, Instant)>,
    last_seq: u32,
    records: Vec<SubmitRecord>,
    out_tx: mpsc::Sender<Outbound>,
    close_after_write: bool,
}

enum Flow {
    Continue,
    /// Close at once, discarding unwritten output (a fault).
    Drop,
    /// Write what is pending, then close.
    Close,
}

pub(crate) async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    shared.c.connections.fetch_add(1, Ordering::Relaxed);
    let (out_tx, mut out_rx) = mpsc::channel(OUTBOUND_QUEUE);
    let mut conn = Conn::new(shared.clone(), out_tx);
    debug!(%peer, conn = conn.id, "simulator connection");
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut codec = PduCodec::default();
    let deliver_window = shared.config.deliver_window.max(1);
    loop {
        let wake = conn.next_wake();
        let can_deliver = conn.deliveries.len() < deliver_window;
        let flow = tokio::select! {
            biased;
            r = reader.read_buf(&mut rbuf) => match r {
                Ok(0) | Err(_) => break,
                Ok(_) => conn.on_read(&mut codec, &mut rbuf).await,
            },
            o = out_rx.recv(), if can_deliver => match o {
                Some(o) => conn.on_outbound_burst(o, &mut out_rx, deliver_window),
                None => Flow::Continue,
            },
            _ = sleep_until(wake) => conn.on_timer().await,
            _ = shutdown.changed() => Flow::Drop,
        };
        if !conn.write_out(&mut writer, flow).await {
            break;
        }
    }
    let _ = writer.shutdown().await;
    conn.finish(out_rx).await;
}

impl Conn {
    fn new(shared: Arc<Shared>, out_tx: mpsc::Sender<Outbound>) -> Self {
        Self {
            id: shared.next_connection(),
            live: shared.live(),
            generation: shared.generation(),
            shared,
            bound: None,
            wbuf: BytesMut::with_capacity(64 * 1024),
            unanswered: 0,
            answered_unwritten: 0,
            submits_here: 0,
            delayed: VecDeque::new(),
            deliveries: HashMap::new(),
            last_seq: 0,
            records: Vec::new(),
            out_tx,
            close_after_write: false,
        }
    }

    /// Handles every whole frame that arrived.
    async fn on_read(&mut self, codec: &mut PduCodec, rbuf: &mut BytesMut) -> Flow {
        self.refresh();
        let mut flow = Flow::Continue;
        loop {
            match codec.decode(rbuf) {
                Ok(Some(frame)) => {
                    flow = self.on_frame(frame).await;
                    if !matches!(flow, Flow::Continue) {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // Framing lost: a last generic_nack, then close (SMPP-FACTS §9).
                    let _ = Pdu::generic_nack(e.command_status(), 0).encode(&mut self.wbuf);
                    flow = Flow::Close;
                    break;
                }
            }
        }
        if rbuf.capacity() - rbuf.len() < 4096 {
            rbuf.reserve(64 * 1024);
        }
        flow
    }

    /// Takes `first` and what else is queued, up to the delivery window, into the same write.
    fn on_outbound_burst(
        &mut self,
        first: Outbound,
        out_rx: &mut mpsc::Receiver<Outbound>,
        deliver_window: usize,
    ) -> Flow {
        let mut flow = self.on_outbound(first);
        while matches!(flow, Flow::Continue) && self.deliveries.len() < deliver_window {
            match out_rx.try_recv() {
                Ok(o) => flow = self.on_outbound(o),
                Err(_) => break,
            }
        }
        flow
    }

    /// Writes what the last step produced, as `flow` says; `false` when the connection ends.
    async fn write_out<W: AsyncWrite + Unpin>(&mut self, writer: &mut W, flow: Flow) -> bool {
        if matches!(flow, Flow::Drop) {
            self.abandon();
            return false;
        }
        if !self.wbuf.is_empty() {
            if writer.write_all(&self.wbuf).await.is_err() {
                self.abandon();
                return false;
            }
            self.wbuf.clear();
        }
        self.written();
        !(matches!(flow, Flow::Close) || self.close_after_write)
    }
    /// Re-reads faults and receipt settings when they changed.
    fn refresh(&mut self) {
        let g = self.shared.generation();
        if g != self.generation {
            self.generation = g;
            self.live = self.shared.live();
        }
    }

    fn next_wake(&self) -> Instant {
        let mut wake = Instant::now() + Duration::from_secs(3600);
        if let Some((t, _, _)) = self.delayed.front() {
            wake = wake.min(*t);
        }
        if let Some(t) = self.deliveries.values().map(|(_, t)| *t).min() {
            wake = wake.min(t);
        }
        wake
    }

    fn next_seq(&mut self) -> u32 {
        loop {
            self.last_seq = if self.last_seq >= MAX_SEQ {
                1
            } else {
                self.last_seq + 1
            };
            if !self.deliveries.contains_key(&self.last_seq) {
                return self.last_seq;
            }
        }
    }

    /// Everything in `wbuf` reached the socket.
    fn written(&mut self) {
        self.unanswered -= self.answered_unwritten.min(self.unanswered);
        self.answered_unwritten = 0;
        self.shared.record(&mut self.records);
    }

    /// The connection dies with output unwritten: responses in `wbuf` were never sent.
    fn abandon(&mut self) {
        self.shared
            .c
            .unanswered
            .fetch_add(self.unanswered, Ordering::Relaxed);
        for r in &mut self.records {
            r.status = None;
            r.message_id.clear();
        }
        self.shared.record(&mut self.records);
        self.wbuf.clear();
    }

    async fn finish(mut self, mut out_rx: mpsc::Receiver<Outbound>) {
        // Unregistered first: from now on the scheduler offers nothing more to this connection,
        // so what is queued for it below is all there is.
        self.shared.unregister(self.id);
        if self.bound.take().is_some() {
            self.shared.c.bound_now.fetch_sub(1, Ordering::Relaxed);
        }
        // Deliveries not acknowledged go back to the scheduler: the ESME gets them again on its
        // next bind, as from a real SMSC. So do those handed to this connection and not yet
        // written (dropping them with the queue would lose receipts).
        out_rx.close();
        let mut queued = Vec::new();
        while let Ok(o) = out_rx.try_recv() {
            if let Outbound::Deliver(d) = o {
                queued.push(d);
            }
        }
        for (_, (d, _)) in self.deliveries.drain() {
            self.shared
                .c
                .deliveries_retried
                .fetch_add(1, Ordering::Relaxed);
            let _ = self.shared.receipts_tx.send(d).await;
        }
        for d in queued {
            let _ = self.shared.receipts_tx.send(d).await;
        }
        // Delayed responses never sent.
        let pending_delayed = self.delayed.iter().filter(|(_, _, submit)| *submit).count();
        self.shared
            .c
            .unanswered
            .fetch_add(pending_delayed as u64, Ordering::Relaxed);
    }

    fn respond(&mut self, pdu: &Pdu) {
        // Responses are built by the simulator from valid parts; an encode failure would be a bug
        // in the simulator, and then the ESME sees a timeout, which is what a test would flag.
        if let Err(e) = pdu.encode(&mut self.wbuf) {
            debug!(error = %e, "simulator could not encode a response");
        }
    }

    async fn on_frame(&mut self, frame: Frame) -> Flow {
        let pdu = match frame {
            Frame::Pdu(p) => p,
            Frame::Invalid {
                command_id,
                sequence_number,
                error,
            } => {
                debug!(conn = self.id, %command_id, %error, "simulator got a malformed PDU");
                if !command_id.is_response() && !self.live.faults.silent {
                    self.respond(&Pdu::generic_nack(error.command_status(), sequence_number));
                }
                return Flow::Continue;
            }
        };
        let seq = pdu.sequence_number;
        match pdu.body {
            Body::BindTransceiver(b) => self.on_bind(seq, b, Role::Transceiver),
            Body::BindTransmitter(b) => self.on_bind(seq, b, Role::Transmitter),
            Body::BindReceiver(b) => self.on_bind(seq, b, Role::Receiver),
            Body::SubmitSm(sm) => self.on_submit(seq, Submit::Sm(sm)).await,
            Body::DataSm(dm) => self.on_submit(seq, Submit::Data(dm)).await,
            Body::EnquireLink => {
                self.shared.c.enquire_links.fetch_add(1, Ordering::Relaxed);
                if !self.live.faults.silent && !self.live.faults.ignore_enquire_link {
                    self.respond(&Pdu::new(seq, Body::EnquireLinkResp));
                }
                Flow::Continue
            }
            Body::Unbind => {
                self.shared.c.unbinds.fetch_add(1, Ordering::Relaxed);
                self.respond(&Pdu::new(seq, Body::UnbindResp));
                Flow::Close
            }
            Body::DeliverSmResp(_) | Body::DataSmResp(_) | Body::GenericNack => {
                if matches!(pdu.body, Body::GenericNack) {
                    self.shared
                        .c
                        .generic_nacks_received
                        .fetch_add(1, Ordering::Relaxed);
                }
                self.on_delivery_resp(seq, pdu.command_status).await;
                Flow::Continue
            }
            Body::EnquireLinkResp | Body::UnbindResp => Flow::Continue,
            other => {
                if !other.command_id().is_response() && !self.live.faults.silent {
                    self.respond(&Pdu::generic_nack(CommandStatus::ESME_RINVCMDID, seq));
                }
                Flow::Continue
            }
        }
    }

    fn on_bind(&mut self, seq: u32, bind: Bind, role: Role) -> Flow {
        if self.live.faults.silent {
            return Flow::Continue;
        }
        let resp_body = |system_id: &str| BindResp {
            system_id: crate::pdu::COctetString::try_from(system_id).unwrap_or_default(),
            tlvs: Tlvs::new().with(Tlv::ScInterfaceVersion(0x34)),
        };
        let wrap = |status, body| {
            Pdu::response(
                status,
                seq,
                match role {
                    Role::Transceiver => Body::BindTransceiverResp(body),
                    Role::Transmitter => Body::BindTransmitterResp(body),
                    Role::Receiver => Body::BindReceiverResp(body),
                },
            )
        };
        let system_id = bind.system_id.as_str().unwrap_or("").to_owned();
        let password = bind.password.0.as_str().unwrap_or("").to_owned();
        let status = if self.bound.is_some() {
            CommandStatus::ESME_RALYBND
        } else if let Some(status) = self.live.faults.reject_binds {
            status
        } else if self.shared.config.accounts.is_empty() {
            CommandStatus::ESME_ROK
        } else {
            match self
                .shared
                .config
                .accounts
                .iter()
                .find(|a| a.system_id == system_id)
            {
                None => CommandStatus::ESME_RINVSYSID,
                Some(a) if a.password != password => CommandStatus::ESME_RINVPASWD,
                Some(_) => CommandStatus::ESME_ROK,
            }
        };
        if !status.is_ok() {
            self.shared.c.binds_rejected.fetch_add(1, Ordering::Relaxed);
            info!(conn = self.id, system_id, %status, "simulator rejected a bind");
            self.respond(&wrap(status, BindResp::default()));
            return Flow::Continue;
        }
        let system_id: Arc<str> = Arc::from(system_id.as_str());
        self.shared.c.binds.fetch_add(1, Ordering::Relaxed);
        let now = self.shared.c.bound_now.fetch_add(1, Ordering::Relaxed) + 1;
        self.shared.c.max_bound.fetch_max(now, Ordering::Relaxed);
        self.shared.register(ConnEntry {
            id: self.id,
            system_id: system_id.clone(),
            receiver: role != Role::Transmitter,
            tx: self.out_tx.clone(),
        });
        debug!(conn = self.id, system_id = %system_id, "simulator bound");
        self.bound = Some(Bound { system_id, role });
        self.respond(&wrap(CommandStatus::ESME_ROK, resp_body("smppd-sim")));
        Flow::Continue
    }

    async fn on_submit(&mut self, seq: u32, submit: Submit) -> Flow {
        let is_data = matches!(submit, Submit::Data(_));
        let (system_id, role) = match &self.bound {
            Some(b) if b.role != Role::Receiver => (b.system_id.clone(), b.role),
            // Not bound, or bound as a receiver: no submits here.
            _ => {
                let status = CommandStatus::ESME_RINVBNDSTS;
                self.respond(&submit_resp(seq, is_data, status, ""));
                return Flow::Continue;
            }
        };
        let ordinal = self.shared.count_submit();
        self.submits_here += 1;
        self.unanswered += 1;
        self.shared.observe_window(self.unanswered);
        let record = self.record_of(&system_id, seq, &submit);
        let record = match self.fault_takes(record) {
            Ok(record) => record,
            Err(flow) => return flow,
        };
        let status = self.submit_status(ordinal);
        self.shared.count_status(status, 1);
        let message_id = if status.is_ok() {
            self.shared.new_message_id()
        } else {
            String::new()
        };
        let delay = self.live.faults.response_delay;
        if let Some(mut r) = record {
            r.status = Some(status);
            r.message_id = message_id.clone();
            self.records.push(r);
        }
        let pdu = submit_resp(seq, is_data, status, &message_id);
        if status.is_ok() {
            self.issue_receipt(&system_id, &message_id, &submit, role)
                .await;
        }
        if delay.is_zero() {
            self.respond(&pdu);
            self.answered_unwritten += 1;
        } else {
            self.delayed.push_back((Instant::now() + delay, pdu, true));
        }
        Flow::Continue
    }

    /// The record of a submit, when the simulator keeps them (`record_submits`).
    fn record_of(&self, system_id: &str, seq: u32, submit: &Submit) -> Option<SubmitRecord> {
        self.shared.config.record_submits.then(|| SubmitRecord {
            system_id: system_id.to_owned(),
            connection: self.id,
            sequence_number: seq,
            destination_addr: submit.dest().2.escape_ascii().to_string(),
            source_addr: submit.source().2.escape_ascii().to_string(),
            esm_class: submit.esm_class(),
            payload: submit.payload_bytes(),
            validity_period: submit.validity_period(),
            status: None,
            message_id: String::new(),
        })
    }

    /// The faults that take a submit before it is answered: `drop_after` (the connection
    /// drops) and `silent` (never answered). `Err` with the flow when one did; otherwise the
    /// record back.
    fn fault_takes(&mut self, record: Option<SubmitRecord>) -> Result<Option<SubmitRecord>, Flow> {
        let faults = &self.live.faults;
        if faults.drop_after > 0 && self.submits_here >= faults.drop_after {
            info!(
                conn = self.id,
                after = self.submits_here,
                "simulator drops the connection (fault)"
            );
            self.shared
                .c
                .dropped_connections
                .fetch_add(1, Ordering::Relaxed);
            self.records.extend(record);
            return Err(Flow::Drop);
        }
        if faults.silent {
            self.shared.c.unanswered.fetch_add(1, Ordering::Relaxed);
            self.unanswered -= 1;
            self.records.extend(record);
            return Err(Flow::Continue);
        }
        Ok(record)
    }

    /// The status the faults give the `ordinal`th submit: throttled, failed, or ESME_ROK.
    fn submit_status(&self, ordinal: u64) -> CommandStatus {
        let faults = &self.live.faults;
        if faults.throttle_every > 0 && ordinal.is_multiple_of(faults.throttle_every)
            || faults.throttle_above_tps > 0 && self.shared.over_rate(faults.throttle_above_tps)
        {
            self.shared.c.throttled.fetch_add(1, Ordering::Relaxed);
            CommandStatus::ESME_RTHROTTLED
        } else if faults.fail_fraction > 0.0 && rand::random_bool(faults.fail_fraction.min(1.0)) {
            faults.fail_status.unwrap_or(CommandStatus::ESME_RSYSERR)
        } else {
            CommandStatus::ESME_ROK
        }
    }

    /// Makes the receipt of an accepted submit, if it asked for one and receipts are on: sent
    /// here before the response (`receipts_before_response` on a transceiver) or handed to the
    /// scheduler, which holds it for the delay and picks a receiver bind.
    async fn issue_receipt(
        &mut self,
        system_id: &Arc<str>,
        message_id: &str,
        submit: &Submit,
        role: Role,
    ) {
        let info = SubmitInfo {
            source: submit.source(),
            dest: submit.dest(),
            payload: submit.payload(),
            wants_receipt: submit.registered_delivery(),
        };
        let Some(mut receipt) = receipts::receipt_for(
            &self.live.receipts,
            self.shared.config.id_format,
            system_id,
            message_id,
            &info,
        ) else {
            return;
        };
        self.shared.track_receipt(&mut receipt, message_id, false);
        self.shared
            .c
            .receipts_created
            .fetch_add(1, Ordering::Relaxed);
        let copies = if self.live.receipts.duplicate { 2 } else { 1 };
        for _ in 0..copies {
            if self.live.receipts.before_response && role == Role::Transceiver {
                self.send_delivery(receipt.clone());
            } else {
                let _ = self.shared.receipts_tx.send(receipt.clone()).await;
            }
        }
    }

    /// Writes a deliver_sm and tracks it until its response.
    fn send_delivery(&mut self, d: Delivery) {
        let seq = self.next_seq();
        let pdu = Pdu::new(seq, Body::DeliverSm((*d.body).clone()));
        if pdu.encode(&mut self.wbuf).is_err() {
            debug!("simulator could not encode a deliver_sm; dropped");
            self.shared
                .c
                .deliveries_dropped
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        if d.receipt {
            self.shared.c.receipts_sent.fetch_add(1, Ordering::Relaxed);
            self.shared.receipt_event(d.serial, None);
        } else {
            self.shared.c.mo_sent.fetch_add(1, Ordering::Relaxed);
        }
        let deadline = Instant::now() + self.shared.config.deliver_timeout;
        self.deliveries.insert(seq, (d, deadline));
    }

    async fn on_delivery_resp(&mut self, seq: u32, status: CommandStatus) {
        let Some((d, _)) = self.deliveries.remove(&seq) else {
            return;
        };
        if d.receipt {
            self.shared.receipt_event(d.serial, Some(status));
        }
        if status.is_ok() {
            self.shared
                .c
                .deliveries_acked
                .fetch_add(1, Ordering::Relaxed);
        } else {
            self.shared
                .c
                .deliveries_retried
                .fetch_add(1, Ordering::Relaxed);
            let _ = self.shared.receipts_tx.send(d).await;
        }
    }

    fn on_outbound(&mut self, o: Outbound) -> Flow {
        match o {
            Outbound::Deliver(d) => {
                self.send_delivery(d);
                Flow::Continue
            }
            Outbound::Raw(bytes) => {
                self.wbuf.extend_from_slice(&bytes);
                Flow::Continue
            }
            Outbound::Close => {
                self.shared
                    .c
                    .dropped_connections
                    .fetch_add(1, Ordering::Relaxed);
                Flow::Drop
            }
        }
    }

    async fn on_timer(&mut self) -> Flow {
        let now = Instant::now();
        while let Some((t, _, _)) = self.delayed.front() {
            if *t > now {
                break;
            }
            if let Some((_, pdu, submit)) = self.delayed.pop_front() {
                self.respond(&pdu);
                if submit {
                    self.answered_unwritten += 1;
                }
            }
        }
        let expired: Vec<u32> = self
            .deliveries
            .iter()
            .filter(|(_, (_, t))| *t <= now)
            .map(|(s, _)| *s)
            .collect();
        for seq in expired {
            if let Some((d, _)) = self.deliveries.remove(&seq) {
                self.shared
                    .c
                    .deliveries_retried
                    .fetch_add(1, Ordering::Relaxed);
                let _ = self.shared.receipts_tx.send(d).await;
            }
        }
        Flow::Continue
    }
}

/// The response to a submit_sm (or data_sm) with `status` and the SMSC's message id.
fn submit_resp(seq: u32, is_data: bool, status: CommandStatus, id: &str) -> Pdu {
    let body = SubmitSmResp {
        message_id: crate::pdu::COctetString::try_from(id).unwrap_or_default(),
        tlvs: Tlvs::new(),
    };
    Pdu::response(
        status,
        seq,
        if is_data {
            Body::DataSmResp(body)
        } else {
            Body::SubmitSmResp(body)
        },
    )
}

enum Submit {
    Sm(SubmitSm),
    Data(DataSm),
}

impl Submit {
    fn source(&self) -> (u8, u8, &[u8]) {
        match self {
            Submit::Sm(s) => (
                s.source_addr.ton.0,
                s.source_addr.npi.0,
                s.source_addr.addr.as_bytes(),
            ),
            Submit::Data(d) => (
                d.source_addr.ton.0,
                d.source_addr.npi.0,
                d.source_addr.addr.as_bytes(),
            ),
        }
    }
    fn dest(&self) -> (u8, u8, &[u8]) {
        match self {
            Submit::Sm(s) => (
                s.dest_addr.ton.0,
                s.dest_addr.npi.0,
                s.dest_addr.addr.as_bytes(),
            ),
            Submit::Data(d) => (
                d.dest_addr.ton.0,
                d.dest_addr.npi.0,
                d.dest_addr.addr.as_bytes(),
            ),
        }
    }
    fn esm_class(&self) -> u8 {
        match self {
            Submit::Sm(s) => s.esm_class.0,
            Submit::Data(d) => d.esm_class.0,
        }
    }
    fn registered_delivery(&self) -> u8 {
        match self {
            Submit::Sm(s) => s.registered_delivery.0,
            Submit::Data(d) => d.registered_delivery.0,
        }
    }
    fn payload(&self) -> &[u8] {
        match self {
            Submit::Sm(s) => s.payload(),
            Submit::Data(d) => d.tlvs.message_payload().map_or(&[][..], |b| &b[..]),
        }
    }
    fn validity_period(&self) -> String {
        match self {
            Submit::Sm(s) => s.validity_period.to_string(),
            Submit::Data(_) => String::new(),
        }
    }
    fn payload_bytes(&self) -> bytes::Bytes {
        match self {
            Submit::Sm(s) => {
                if s.short_message.is_empty()
                    && let Some(p) = s.tlvs.message_payload()
                {
                    return p.clone();
                }
                s.short_message.bytes().clone()
            }
            Submit::Data(d) => d.tlvs.message_payload().cloned().unwrap_or_default(),
        }
    }
}
