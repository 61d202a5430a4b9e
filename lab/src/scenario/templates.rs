//! Persistence template lives from the once-a-second samples of the
//! connection table: when each client IP's template appeared and went, and
//! how long it outlived the newest connection it controlled. Pure: a
//! function of the [`ConnLog`] and the plan.
//!
//! The kernel's rules (`ip_vs_sched_persist`, `ip_vs_conn_expire`): each new
//! connection re-arms its template to `persistence_timeout`; when the timer
//! fires while a connection it controls is still in the table (established,
//! or closing in FIN_WAIT or TIME_WAIT), the template is re-armed for 60 s
//! instead of expiring.

use std::net::IpAddr;

use crate::ipvs::ConnLog;
use crate::network::Plan;
use crate::report::model::TemplateLife;

/// How far a connection may be seen before its template's first sample
/// and still count as one it controlled: the template and its first
/// connection appear within one sampling interval of each other.
const SAMPLE_SLACK_S: f64 = 1.5;

/// The kernel's re-arm of a template that still controls connections
/// (`ip_vs_conn_expire`: `cp->timeout = 60 * HZ`).
pub const REARM_S: f64 = 60.0;

/// Every template life the log saw, ordered by client and time.
/// `persistence_s` is the service's `persistence_timeout`.
pub fn template_lives(log: &ConnLog, plan: &Plan, persistence_s: f64) -> Vec<TemplateLife> {
    let end = log.last_sample_s();
    let mut lives: Vec<TemplateLife> = log
        .templates()
        .map(|(client, vip, t)| {
            let controlled = log.connections().filter(|(c, v, l)| {
                covered(client, c.ip()) && *v == vip && l.overlaps(t.first_s, t.last_s, SAMPLE_SLACK_S)
            });
            let (mut last_connect, mut last_seen) = (None::<f64>, None::<f64>);
            for (_, _, l) in controlled {
                last_connect = Some(last_connect.map_or(l.first_s, |x| x.max(l.first_s)));
                last_seen = Some(last_seen.map_or(l.last_s, |x| x.max(l.last_s)));
            }
            let expired = end.is_some_and(|e| t.last_s < e);
            let server = plan
                .servers
                .iter()
                .find(|s| IpAddr::V4(s.address) == t.dest.ip())
                .map_or_else(|| t.dest.to_string(), |s| s.name.clone());
            TemplateLife {
                client: client.to_string(),
                server,
                first_seen_s: t.first_s,
                last_seen_s: t.last_s,
                expired,
                last_connect_s: last_connect,
                last_conn_seen_s: last_seen,
                lifetime_s: last_connect.filter(|_| expired).map(|c| t.last_s - c),
                rearmed: matches!((last_connect, last_seen), (Some(c), Some(s)) if s >= c + persistence_s),
            }
        })
        .collect();
    lives.sort_by(|a, b| {
        a.client
            .cmp(&b.client)
            .then(a.first_seen_s.total_cmp(&b.first_seen_s))
    });
    lives
}

/// Whether a template keyed by `template` (an address, or a network under
/// a persistence netmask, which the table prints as its base address)
/// covers a connection from `client`. Without the mask at hand, only the
/// exact address counts: the lab's persistence scenarios that measure
/// lifetimes use /32.
fn covered(template: IpAddr, client: IpAddr) -> bool {
    template == client
}

/// Sentences about the expired templates' lifetimes.
pub fn notes(lives: &[TemplateLife], persistence_s: f64) -> Vec<String> {
    let timed: Vec<f64> = lives
        .iter()
        .filter(|l| !l.rearmed)
        .filter_map(|l| l.lifetime_s)
        .collect();
    let mut out = Vec::new();
    if let (Some(lo), Some(hi)) = (
        timed.iter().copied().reduce(f64::min),
        timed.iter().copied().reduce(f64::max),
    ) {
        out.push(format!(
            "Template expiry: {} template(s) went {lo:.0}-{hi:.0} s after their client's newest connection (persistence_timeout {persistence_s:.0} s; 1 s samples); the connections' own FIN_WAIT tails had ended before, so they did not extend it.",
            timed.len()
        ));
    }
    let rearmed: Vec<&TemplateLife> = lives.iter().filter(|l| l.rearmed).collect();
    if !rearmed.is_empty() {
        let after: Vec<String> = rearmed
            .iter()
            .filter(|l| l.expired)
            .filter_map(|l| {
                l.last_conn_seen_s
                    .map(|c| format!("{:.0}", l.last_seen_s - c))
            })
            .collect();
        out.push(format!(
            "Template re-arm: {} template(s) still controlled a connection when their {persistence_s:.0} s timer fired, so the kernel re-armed them for {REARM_S:.0} s at a time; they went {} s after their last connection left the table.",
            rearmed.len(),
            if after.is_empty() { "-".to_string() } else { after.join(", ") }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns::RunId;
    use crate::scenario::Scenario;
    use crate::scenario::plan::plan;
    use std::path::Path;

    const VIP: &str = "192.168.122.1:8080";

    fn row(client: &str, dest: &str, state: &str) -> String {
        // The /proc/net/ip_vs_conn layout: Pro FromIP FPrt ToIP TPrt DestIP DPrt State Expires.
        let (ip, port) = client.split_once(':').unwrap();
        let (dip, dport) = dest.split_once(':').unwrap();
        let hex = |a: &str| {
            let o: Vec<u8> = a.split('.').map(|x| x.parse().unwrap()).collect();
            format!("{:02X}{:02X}{:02X}{:02X}", o[0], o[1], o[2], o[3])
        };
        let p: u16 = port.parse().unwrap();
        let dp: u16 = dport.parse().unwrap();
        format!(
            "TCP {} {:04X} {} {:04X} {} {:04X} {state} 100\n",
            hex(ip),
            p,
            hex("192.168.122.1"),
            8080,
            hex(dip),
            dp
        )
    }

    fn test_plan() -> Plan {
        let s = Scenario::from_str(
            Path::new("scenarios/persistence-1800.toml"),
            include_str!("../../../scenarios/persistence-1800.toml"),
        )
        .unwrap();
        plan(&s, RunId::from_parts(4242, 9)).unwrap()
    }

    /// One sample per second from `from` to `to` (inclusive) of `rows`.
    fn fold(log: &mut ConnLog, from: u32, to: u32, rows: &str) {
        for t in from..=to {
            log.observe_text(f64::from(t), &format!("Pro FromIP\n{rows}"));
        }
    }

    #[test]
    fn a_template_outlives_its_newest_connection_by_the_timeout() {
        let mut log = ConnLog::new();
        let tpl = row("172.22.36.1:0", "172.22.35.1:8080", "NONE");
        let conn = row("172.22.36.1:40000", "172.22.35.1:8080", "ESTABLISHED");
        // Connected at 2 s, gone (FIN_WAIT over) at 122 s, template gone at 1802 s.
        fold(&mut log, 0, 1, &tpl);
        fold(&mut log, 2, 122, &format!("{tpl}{conn}"));
        fold(&mut log, 123, 1802, &tpl);
        fold(&mut log, 1803, 1805, "");
        let lives = template_lives(&log, &test_plan(), 1800.0);
        assert_eq!(lives.len(), 1, "{lives:?}");
        let l = &lives[0];
        assert_eq!(
            (l.client.as_str(), l.server.as_str()),
            ("172.22.36.1", "rs1")
        );
        assert!(l.expired);
        assert_eq!(l.last_connect_s, Some(2.0));
        assert_eq!(l.last_conn_seen_s, Some(122.0));
        assert_eq!(l.lifetime_s, Some(1800.0));
        assert!(!l.rearmed);
        let notes = notes(&lives, 1800.0);
        assert!(notes[0].contains("went 1800-1800 s"), "{notes:?}");
        let _ = VIP;
    }

    #[test]
    fn a_connection_alive_at_the_timer_re_arms_the_template() {
        let mut log = ConnLog::new();
        let tpl = row("172.22.36.2:0", "172.22.35.2:8080", "NONE");
        let conn = row("172.22.36.2:40001", "172.22.35.2:8080", "ESTABLISHED");
        fold(&mut log, 0, 1820, &format!("{tpl}{conn}"));
        fold(&mut log, 1821, 1860, &tpl);
        fold(&mut log, 1861, 1862, "");
        let lives = template_lives(&log, &test_plan(), 1800.0);
        assert!(lives[0].rearmed, "{lives:?}");
        assert_eq!(lives[0].lifetime_s, Some(1860.0));
        let notes = notes(&lives, 1800.0);
        assert!(
            notes.iter().any(|n| n.starts_with("Template re-arm: 1 ")),
            "{notes:?}"
        );
    }

    #[test]
    fn a_template_still_present_has_no_lifetime() {
        let mut log = ConnLog::new();
        let tpl = row("172.22.36.3:0", "172.22.35.1:8080", "NONE");
        let conn = row("172.22.36.3:40002", "172.22.35.1:8080", "FIN_WAIT");
        fold(&mut log, 0, 5, &format!("{tpl}{conn}"));
        let lives = template_lives(&log, &test_plan(), 1800.0);
        assert!(!lives[0].expired);
        assert_eq!(lives[0].lifetime_s, None);
        assert!(notes(&lives, 1800.0).is_empty());
    }
}
