//! The two simulated SMSCs of the campaigns and of the end-to-end tests that need an SMSC to
//! outlive the daemon (it must survive the daemon's crashes to check against it), with the
//! `[[smsc]]` and `[[route]]` sections that point a daemon at them.
//!
//! It never looks into the daemon: everything it knows came over the SMPP wire.

use std::time::Duration;

use smppd::sim::{SimConfig, SimHandle, Simulator, StatusMix};

use super::daemon::DaemonBuilder;

/// One simulated SMSC and how the daemon is configured to use it.
pub struct Smsc {
    /// The name in the daemon's config.
    pub name: &'static str,
    pub sim: SimHandle,
    /// `window` and `binds` of its `[[smsc]]` (their product bounds what is in flight).
    pub window: u32,
    pub binds: u32,
}

/// The two SMSCs of every campaign: `op-a` (one transceiver, window 50, UDH 8-bit, hex ids) and
/// `op-b` (two transmitter + receiver pairs, window 20, UDH 16-bit, decimal ids). Route `r1`
/// (+46…) goes to op-a then op-b, route `r2` (everything else) to op-b then op-a; a multipart
/// message failing over is re-split for the other SMSC's UDH.
pub struct Smscs {
    pub a: Smsc,
    pub b: Smsc,
}

impl Smscs {
    /// Starts both, with the campaigns' settings (receipts after 150 ms, 9 in 10 delivered).
    pub async fn start() -> Smscs {
        let sim = |decimal: bool| {
            let mut c = SimConfig::new("127.0.0.1:0").account("smppd", "secret");
            c.record_submits = true;
            c.record_receipts = true;
            c.receipts.delay = Duration::from_millis(150);
            c.receipts.mix = StatusMix {
                delivered: 9,
                undeliverable: 1,
                expired: 0,
                rejected: 0,
            };
            // Redeliver a receipt the daemon did not answer within 2 s (a real SMSC waits
            // longer; the campaign is short).
            c.deliver_timeout = Duration::from_secs(2);
            if decimal {
                c.id_format = smppd::sim::IdFormat::Decimal;
            }
            c
        };
        Smscs {
            a: Smsc {
                name: "op-a",
                sim: Simulator::start(sim(false)).await.expect("sim op-a"),
                window: 50,
                binds: 1,
            },
            b: Smsc {
                name: "op-b",
                sim: Simulator::start(sim(true)).await.expect("sim op-b"),
                window: 20,
                binds: 2,
            },
        }
    }

    pub fn all(&self) -> [&Smsc; 2] {
        [&self.a, &self.b]
    }

    /// Parts that can be in flight at once over every bind: the duplicates one kill (or one
    /// dropped connection per bind) can cause at most.
    pub fn in_flight_bound(&self) -> u64 {
        self.all()
            .iter()
            .map(|s| u64::from(s.window * s.binds))
            .sum()
    }

    /// Applies a control command (see `smppd::sim::control`) to both SMSCs.
    pub fn command(&self, line: &str) {
        for s in self.all() {
            s.sim
                .command(line)
                .unwrap_or_else(|e| panic!("{}: {line}: {e}", s.name));
        }
    }

    /// The `[[smsc]]` and `[[route]]` sections for these SMSCs.
    pub fn config(&self, smsc_extra: &str) -> String {
        format!(
            r#"[[smsc]]
name = "op-a"
address = "{a}"
system_id = "smppd"
password = "secret"
window = {wa}
binds = {ba}
split = "udh8"
response_timeout = "2s"
enquire_link = "1s"
reconnect_min = "100ms"
reconnect_max = "500ms"
{smsc_extra}
[[smsc]]
name = "op-b"
address = "{b}"
system_id = "smppd"
password = "secret"
bind = "tx_rx"
window = {wb}
binds = {bb}
split = "udh16"
response_timeout = "2s"
enquire_link = "1s"
reconnect_min = "100ms"
reconnect_max = "500ms"
{smsc_extra}
[[route]]
name = "r1"
prefix = ["+46"]
smsc = ["op-a", "op-b"]

[[route]]
name = "r2"
smsc = ["op-b", "op-a"]
"#,
            a = self.a.sim.addr(),
            b = self.b.sim.addr(),
            wa = self.a.window,
            ba = self.a.binds,
            wb = self.b.window,
            bb = self.b.binds,
        )
    }

    /// A daemon pointed at these SMSCs, as the campaigns run it: metrics on, `store_extra` in
    /// `[store]`, `smsc_extra` in both `[[smsc]]`, log level from `SMPPD_CAMPAIGN_LOG`
    /// (default `warn`; `info` or a per-module filter to diagnose a failing case).
    pub fn daemon(&self, store_extra: &str, smsc_extra: &str) -> DaemonBuilder {
        DaemonBuilder::new(self.config(smsc_extra))
            .metrics()
            .store(store_extra)
            .level(&std::env::var("SMPPD_CAMPAIGN_LOG").unwrap_or_else(|_| "warn".to_owned()))
    }

    /// Whether every receipt created so far was answered ESME_ROK by the daemon at least once.
    pub fn receipts_all_acked(&self) -> bool {
        self.all()
            .iter()
            .all(|s| s.sim.receipts_log().iter().all(|r| r.acked > 0))
    }
}
