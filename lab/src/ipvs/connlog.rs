//! Every mapping the IPVS connection table showed during a run: which real
//! server each client 4-tuple was given, and when it was seen.
//!
//! The table is sampled (about once a second) and each sample is folded in
//! with [`ConnLog::observe_text`]. One key (client address and port, virtual
//! address and port) can carry several *lives* when a later connection
//! reuses the client port: a new life starts when the key was absent from
//! the previous sample, when its real server changed, or when its state
//! went from closing (`FIN_WAIT`, `TIME_WAIT`, `CLOSE`, ...) back to open
//! (`SYN_RECV`, `ESTABLISHED`). Each life keeps its first and last sample
//! time, which is how a join tells a reused port's connections apart.
//!
//! Memory is one small record per connection ever seen (about 100 bytes
//! with the map's overhead): 100k connections are about 10 MB. Parsing
//! borrows from the text ([`parse_row`]) and allocates only for new keys.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use super::conntable::{ConnRow, is_entry_line, parse_row};

/// One life of a table entry: the real server it named and when.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnLife {
    /// The real server the entry named.
    pub dest: SocketAddr,
    /// The first sample that showed it (seconds on the caller's axis).
    pub first_s: f64,
    /// The last sample that showed it.
    pub last_s: f64,
    /// Its state in the last sample that showed it (`ESTABLISHED`, ...).
    pub state: &'static str,
}

impl ConnLife {
    /// Whether this life was visible at some time in `[from_s, to_s]`,
    /// allowing `slack_s` for the sampling interval.
    pub fn overlaps(&self, from_s: f64, to_s: f64, slack_s: f64) -> bool {
        self.first_s <= to_s + slack_s && self.last_s >= from_s - slack_s
    }
}

/// A connection key: client address and port, virtual address and port.
pub type ConnKey = (SocketAddr, SocketAddr);

/// A template key: client address (or its persistence-netmask network),
/// virtual address and port.
pub type TemplateKey = (IpAddr, SocketAddr);

/// Every connection and persistence template the samples showed.
#[derive(Debug, Clone, Default)]
pub struct ConnLog {
    conns: HashMap<ConnKey, Vec<ConnLife>>,
    templates: HashMap<TemplateKey, Vec<ConnLife>>,
    samples: u32,
    last_sample_s: Option<f64>,
    unparsed_lines: u64,
}

/// The states IPVS prints for TCP, UDP and templates; anything else is
/// kept as `OTHER` (states are stored as `&'static str`, not copied).
const STATES: [&str; 14] = [
    "NONE",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "SYNACK",
    "ASSURED",
    "UDP",
    "ERR!",
];

fn intern(state: &str) -> &'static str {
    STATES
        .iter()
        .find(|s| **s == state)
        .copied()
        .unwrap_or("OTHER")
}

fn is_closing(state: &str) -> bool {
    matches!(
        state,
        "FIN_WAIT" | "TIME_WAIT" | "CLOSE" | "CLOSE_WAIT" | "LAST_ACK"
    )
}

fn is_opening(state: &str) -> bool {
    matches!(state, "SYN_SENT" | "SYN_RECV" | "SYNACK" | "ESTABLISHED")
}

/// Folds one row into the lives of its key.
fn fold(lives: &mut Vec<ConnLife>, row: &ConnRow<'_>, t_s: f64, prev_s: Option<f64>) {
    let state = intern(row.state);
    if let Some(last) = lives.last_mut() {
        let seen_in_previous = prev_s.is_none_or(|p| last.last_s >= p);
        let reopened = is_closing(last.state) && is_opening(state);
        if last.dest == row.dest && seen_in_previous && !reopened {
            last.last_s = t_s;
            last.state = state;
            return;
        }
    }
    lives.push(ConnLife {
        dest: row.dest,
        first_s: t_s,
        last_s: t_s,
        state,
    });
}

impl ConnLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds in one sample of `/proc/net/ip_vs_conn` taken at `t_s`
    /// (samples must come in time order). Returns the number of templates
    /// in this sample. Lines that do not parse are counted, not fatal.
    pub fn observe_text(&mut self, t_s: f64, text: &str) -> usize {
        let prev = self.last_sample_s;
        let mut templates = 0;
        for line in text.lines().filter(|l| is_entry_line(l)) {
            let Ok(row) = parse_row(line) else {
                self.unparsed_lines += 1;
                continue;
            };
            if row.is_template() {
                templates += 1;
                let lives = self
                    .templates
                    .entry((row.client.ip(), row.virtual_))
                    .or_default();
                fold(lives, &row, t_s, prev);
            } else {
                let lives = self.conns.entry((row.client, row.virtual_)).or_default();
                fold(lives, &row, t_s, prev);
            }
        }
        self.samples += 1;
        self.last_sample_s = Some(t_s);
        templates
    }

    /// Moves every time by `by_s` (to rebase the run's clock to the
    /// report's origin).
    pub fn shift(&mut self, by_s: f64) {
        for life in self
            .conns
            .values_mut()
            .chain(self.templates.values_mut())
            .flatten()
        {
            life.first_s += by_s;
            life.last_s += by_s;
        }
        if let Some(t) = &mut self.last_sample_s {
            *t += by_s;
        }
    }

    /// The lives of one connection key, oldest first (empty if never seen).
    pub fn lives(&self, client: SocketAddr, virtual_: SocketAddr) -> &[ConnLife] {
        self.conns
            .get(&(client, virtual_))
            .map_or(&[], Vec::as_slice)
    }

    /// Every connection life: client, virtual address, life.
    pub fn connections(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr, &ConnLife)> {
        self.conns
            .iter()
            .flat_map(|((c, v), lives)| lives.iter().map(move |l| (*c, *v, l)))
    }

    /// Every template life: client address, virtual address, life.
    pub fn templates(&self) -> impl Iterator<Item = (IpAddr, SocketAddr, &ConnLife)> {
        self.templates
            .iter()
            .flat_map(|((c, v), lives)| lives.iter().map(move |l| (*c, *v, l)))
    }

    /// When the newest sample was taken (`None`: no sample yet).
    pub fn last_sample_s(&self) -> Option<f64> {
        self.last_sample_s
    }

    /// How many samples were folded in.
    pub fn samples(&self) -> u32 {
        self.samples
    }

    /// Lines that did not parse, over all samples.
    pub fn unparsed_lines(&self) -> u64 {
        self.unparsed_lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n";

    fn line(cport: u16, dest_last: u8, state: &str) -> String {
        format!(
            "TCP AC162364 {cport:04X} C0A87A01 1F90 AC1623{dest_last:02X} 1F90 {state:<11} 899\n"
        )
    }

    fn sample(lines: &[String]) -> String {
        let mut s = HEAD.to_owned();
        for l in lines {
            s.push_str(l);
        }
        s
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const VIP: &str = "192.168.122.1:8080";

    #[test]
    fn a_connection_seen_in_consecutive_samples_is_one_life() {
        let mut log = ConnLog::new();
        log.observe_text(1.0, &sample(&[line(40000, 1, "SYN_RECV")]));
        log.observe_text(2.0, &sample(&[line(40000, 1, "ESTABLISHED")]));
        log.observe_text(3.0, &sample(&[line(40000, 1, "TIME_WAIT")]));
        let lives = log.lives(addr("172.22.35.100:40000"), addr(VIP));
        assert_eq!(lives.len(), 1);
        assert_eq!(lives[0].dest, addr("172.22.35.1:8080"));
        assert_eq!((lives[0].first_s, lives[0].last_s), (1.0, 3.0));
        assert_eq!(lives[0].state, "TIME_WAIT");
        assert_eq!(log.samples(), 3);
    }

    #[test]
    fn a_reused_port_starts_a_new_life() {
        let mut log = ConnLog::new();
        // Reopened after closing, same server.
        log.observe_text(1.0, &sample(&[line(40000, 1, "TIME_WAIT")]));
        log.observe_text(2.0, &sample(&[line(40000, 1, "ESTABLISHED")]));
        // Another server.
        log.observe_text(3.0, &sample(&[line(40000, 2, "ESTABLISHED")]));
        // Gone for a sample, then back.
        log.observe_text(4.0, &sample(&[]));
        log.observe_text(5.0, &sample(&[line(40000, 2, "ESTABLISHED")]));
        let lives = log.lives(addr("172.22.35.100:40000"), addr(VIP));
        let firsts: Vec<f64> = lives.iter().map(|l| l.first_s).collect();
        assert_eq!(firsts, [1.0, 2.0, 3.0, 5.0]);
        assert_eq!(lives[2].dest, addr("172.22.35.2:8080"));
        assert_eq!(log.connections().count(), 4);
    }

    #[test]
    fn templates_are_kept_apart_and_counted() {
        let mut log = ConnLog::new();
        let text = sample(&[line(0, 1, "NONE"), line(40000, 1, "ESTABLISHED")]);
        assert_eq!(log.observe_text(1.0, &text), 1);
        let t: Vec<_> = log.templates().collect();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].0, "172.22.35.100".parse::<IpAddr>().unwrap());
        assert_eq!(log.connections().count(), 1);
    }

    /// 100k connections, sampled twice: one life each, bounded by the
    /// connections, not the samples. Prints how long a sample took.
    #[test]
    fn a_hundred_thousand_connections_fold_into_one_life_each() {
        let mut text = HEAD.to_owned();
        for i in 0..100_000u32 {
            let ip = 0xAC16_0000 + (i / 50_000);
            let port = 1024 + (i % 50_000) as u16;
            text.push_str(&format!(
                "TCP {ip:08X} {port:04X} C0A87A01 1F90 AC1623{:02X} 1F90 ESTABLISHED     899\n",
                1 + i % 2
            ));
        }
        let mut log = ConnLog::new();
        for t in [1.0, 2.0] {
            let started = std::time::Instant::now();
            log.observe_text(t, &text);
            println!("sample of 100k entries folded in {:?}", started.elapsed());
        }
        assert_eq!(log.connections().count(), 100_000);
        assert!(
            log.connections()
                .all(|(_, _, l)| l.first_s == 1.0 && l.last_s == 2.0)
        );
        assert_eq!(log.unparsed_lines(), 0);
    }

    #[test]
    fn bad_lines_are_counted_and_shift_moves_every_time() {
        let mut log = ConnLog::new();
        let mut text = sample(&[line(40000, 1, "ESTABLISHED")]);
        text.push_str("TCP garbage\n");
        log.observe_text(1.0, &text);
        assert_eq!(log.unparsed_lines(), 1);
        log.shift(-0.5);
        let l = log.lives(addr("172.22.35.100:40000"), addr(VIP))[0];
        assert_eq!((l.first_s, l.last_s), (0.5, 0.5));
        assert!(!l.overlaps(0.6, 2.0, 0.0));
        assert!(l.overlaps(0.6, 2.0, 0.2));
    }
}
