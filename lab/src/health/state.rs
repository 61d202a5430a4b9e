//! keepalived's checker semantics as pure state machines: one per real
//! server ([`CheckerState`]) and one per virtual server ([`Pool`], quorum and
//! sorry server). No sockets, no IPVS, no clock: each step takes a check
//! result and returns what to do and when to check next, so every rule is
//! unit-tested.
//!
//! The rules, as keepalived 2.2 applies them to `TCP_CHECK`
//! (keepalived.conf(5) and its `check_tcp.c`):
//! - a check that succeeds schedules the next one `delay_loop` later, resets
//!   the retry counter and, if the server was down, brings it up;
//! - a check that fails while retries are left (`retry`, alias
//!   `nb_get_retry`) schedules a retry `delay_before_retry` later and changes
//!   nothing yet;
//! - a check that fails with no retry left marks the server down (if it was
//!   up), resets the counter and schedules the next check `delay_loop` later;
//! - in `alpha` mode a server starts down and must pass a check first.

use std::time::Duration;

/// Timing and mode of one checker, in keepalived's words.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckTiming {
    /// Time between checks of a server whose state is settled.
    pub delay_loop: Duration,
    /// How long a connect (or a gRPC health call) may take.
    pub connect_timeout: Duration,
    /// Failed checks tolerated before the server is declared down.
    pub retry: u32,
    /// Time between those retries.
    pub delay_before_retry: Duration,
    /// Upper bound of the random delay before the first check.
    pub warmup: Duration,
    /// Start down; the first successful check brings the server up.
    pub alpha: bool,
}

/// keepalived's worst-case detection time for a server that fails right
/// after a successful check, in two flavours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorstCase {
    /// The fault makes connects fail at once (a killed process: RST):
    /// `delay_loop + retry × delay_before_retry`.
    pub refused: Duration,
    /// The fault makes connects hang (link down, blackhole): each of the
    /// `retry + 1` failing checks also waits `connect_timeout`.
    pub timeout: Duration,
}

impl CheckTiming {
    /// The longest a fault can stay undetected under these settings.
    pub fn worst_case(&self) -> WorstCase {
        let retries = self.delay_before_retry * self.retry;
        WorstCase {
            refused: self.delay_loop + retries,
            timeout: self.delay_loop + retries + self.connect_timeout * (self.retry + 1),
        }
    }
}

/// A server's health as the checker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// In the pool.
    Up,
    /// Out of the pool (removed, or weight 0 with `inhibit_on_failure`).
    Down,
}

/// What one check result leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// When to check next, from now.
    pub next_in: Duration,
    /// The new state, when it changed.
    pub change: Option<Health>,
    /// With a failure that did not (yet) change the state: which retry
    /// comes next (1-based), for the event log.
    pub retry: Option<u32>,
}

/// One real server's checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerState {
    health: Health,
    retries_used: u32,
}

impl CheckerState {
    /// The state before the first check: down in alpha mode, else up.
    pub fn new(timing: &CheckTiming) -> Self {
        CheckerState {
            health: if timing.alpha {
                Health::Down
            } else {
                Health::Up
            },
            retries_used: 0,
        }
    }

    /// The current health.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Applies one check result.
    pub fn on_result(&mut self, ok: bool, timing: &CheckTiming) -> Step {
        if ok {
            self.retries_used = 0;
            let change = (self.health == Health::Down).then_some(Health::Up);
            self.health = Health::Up;
            return Step {
                next_in: timing.delay_loop,
                change,
                retry: None,
            };
        }
        if self.retries_used < timing.retry {
            self.retries_used += 1;
            return Step {
                next_in: timing.delay_before_retry,
                change: None,
                retry: Some(self.retries_used),
            };
        }
        self.retries_used = 0;
        let change = (self.health == Health::Up).then_some(Health::Down);
        self.health = Health::Down;
        Step {
            next_in: timing.delay_loop,
            change,
            retry: None,
        }
    }
}

/// What the pool asks the IPVS side to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Add real server `i` back (or restore its weight when inhibited).
    Restore(usize),
    /// Take real server `i` out: delete it, or set weight 0 when
    /// `inhibit_on_failure`.
    Retire(usize),
    /// Add the sorry server (quorum lost).
    AddSorry,
    /// Remove the sorry server (quorum regained).
    RemoveSorry,
}

/// The virtual server's view: which real servers are up, and whether the
/// quorum holds.
///
/// keepalived's quorum rule: the sum of the weights of the live servers
/// must reach `quorum` (default 1). Falling below `quorum - hysteresis`
/// loses it; reaching `quorum + hysteresis` regains it. While it is lost
/// and a sorry server is configured, the sorry server is the only
/// destination: live real servers are taken out too, and put back when the
/// quorum returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    weights: Vec<u32>,
    up: Vec<bool>,
    quorum: u32,
    hysteresis: u32,
    has_sorry: bool,
    quorum_up: bool,
}

impl Pool {
    /// A pool whose servers start in `initial` states (`true` = up).
    pub fn new(
        weights: Vec<u32>,
        initial: Vec<bool>,
        quorum: u32,
        hysteresis: u32,
        has_sorry: bool,
    ) -> Self {
        let mut pool = Pool {
            weights,
            up: initial,
            quorum,
            hysteresis,
            has_sorry,
            quorum_up: true,
        };
        pool.quorum_up = pool.alive_weight() >= quorum;
        pool
    }

    /// The actions that bring a freshly configured IPVS service (every
    /// real server present, no sorry server) to this pool's state.
    pub fn initial_actions(&self) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.quorum_up && self.has_sorry {
            out.push(Action::AddSorry);
            out.extend((0..self.up.len()).map(Action::Retire));
        } else {
            out.extend(
                (0..self.up.len())
                    .filter(|&i| !self.up[i])
                    .map(Action::Retire),
            );
        }
        out
    }

    /// Sum of the weights of the live servers.
    pub fn alive_weight(&self) -> u32 {
        self.weights
            .iter()
            .zip(&self.up)
            .filter(|(_, up)| **up)
            .map(|(w, _)| *w)
            .fold(0u32, u32::saturating_add)
    }

    /// Whether the quorum holds.
    pub fn quorum_up(&self) -> bool {
        self.quorum_up
    }

    /// Records that server `i` changed to `health`; returns the IPVS
    /// changes, in the order to apply them (sorry server added before the
    /// last real server leaves, real servers back before it goes).
    pub fn set(&mut self, i: usize, health: Health) -> Vec<Action> {
        let up = health == Health::Up;
        if self.up.get(i).is_none_or(|u| *u == up) {
            return Vec::new();
        }
        self.up[i] = up;
        let mut out = Vec::new();
        let sorry_active = !self.quorum_up && self.has_sorry;
        // The server itself, unless the sorry server is holding the fort.
        if !sorry_active {
            out.push(if up {
                Action::Restore(i)
            } else {
                Action::Retire(i)
            });
        }
        let alive = self.alive_weight();
        if self.quorum_up && alive < self.quorum.saturating_sub(self.hysteresis) {
            self.quorum_up = false;
            if self.has_sorry {
                out.push(Action::AddSorry);
                out.extend(
                    (0..self.up.len())
                        .filter(|&j| self.up[j])
                        .map(Action::Retire),
                );
            }
        } else if !self.quorum_up && alive >= self.quorum.saturating_add(self.hysteresis) {
            self.quorum_up = true;
            if self.has_sorry {
                out.extend(
                    (0..self.up.len())
                        .filter(|&j| self.up[j])
                        .map(Action::Restore),
                );
                out.push(Action::RemoveSorry);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(retry: u32, alpha: bool) -> CheckTiming {
        CheckTiming {
            delay_loop: Duration::from_secs(6),
            connect_timeout: Duration::from_secs(3),
            retry,
            delay_before_retry: Duration::from_secs(3),
            warmup: Duration::ZERO,
            alpha,
        }
    }

    #[test]
    fn retries_before_down_then_delay_loop() {
        let t = timing(3, false);
        let mut s = CheckerState::new(&t);
        assert_eq!(s.health(), Health::Up);
        let ok = s.on_result(true, &t);
        assert_eq!((ok.next_in, ok.change), (t.delay_loop, None));
        for n in 1..=3 {
            let step = s.on_result(false, &t);
            assert_eq!(step.next_in, t.delay_before_retry, "retry {n}");
            assert_eq!((step.change, step.retry), (None, Some(n)));
        }
        let down = s.on_result(false, &t);
        assert_eq!(down.change, Some(Health::Down));
        assert_eq!(down.next_in, t.delay_loop);
        // Still failing: stays down quietly, at delay_loop pace, after retries.
        for _ in 0..3 {
            assert_eq!(s.on_result(false, &t).change, None);
        }
        assert_eq!(s.on_result(false, &t).change, None);
        let up = s.on_result(true, &t);
        assert_eq!(up.change, Some(Health::Up));
    }

    #[test]
    fn a_success_resets_the_retry_count() {
        let t = timing(1, false);
        let mut s = CheckerState::new(&t);
        assert_eq!(s.on_result(false, &t).retry, Some(1));
        assert_eq!(s.on_result(true, &t).change, None);
        assert_eq!(s.on_result(false, &t).retry, Some(1));
        assert_eq!(s.on_result(false, &t).change, Some(Health::Down));
    }

    #[test]
    fn retry_zero_fails_at_once_and_alpha_starts_down() {
        let t = timing(0, true);
        let mut s = CheckerState::new(&t);
        assert_eq!(s.health(), Health::Down);
        assert_eq!(s.on_result(true, &t).change, Some(Health::Up));
        assert_eq!(s.on_result(false, &t).change, Some(Health::Down));
    }

    #[test]
    fn worst_case_from_the_reference_settings() {
        let w = timing(3, false).worst_case();
        assert_eq!(w.refused, Duration::from_secs(15));
        assert_eq!(w.timeout, Duration::from_secs(27));
    }

    #[test]
    fn pool_without_sorry_server_retires_and_restores() {
        let mut p = Pool::new(vec![1, 1], vec![true, true], 1, 0, false);
        assert!(p.initial_actions().is_empty());
        assert_eq!(p.set(0, Health::Down), [Action::Retire(0)]);
        assert_eq!(p.set(0, Health::Down), []);
        assert_eq!(p.set(1, Health::Down), [Action::Retire(1)]);
        assert!(!p.quorum_up());
        assert_eq!(p.set(1, Health::Up), [Action::Restore(1)]);
        assert!(p.quorum_up());
        assert_eq!(p.set(7, Health::Down), []);
    }

    #[test]
    fn sorry_server_takes_over_below_quorum() {
        // Quorum 2 of weights 1+1: losing one server loses the quorum.
        let mut p = Pool::new(vec![1, 1], vec![true, true], 2, 0, true);
        assert_eq!(
            p.set(0, Health::Down),
            [Action::Retire(0), Action::AddSorry, Action::Retire(1)]
        );
        // While the sorry server is active, changes stay out of IPVS.
        assert_eq!(p.set(1, Health::Down), []);
        assert_eq!(p.set(1, Health::Up), []);
        assert_eq!(
            p.set(0, Health::Up),
            [Action::Restore(0), Action::Restore(1), Action::RemoveSorry]
        );
    }

    #[test]
    fn hysteresis_damps_quorum_flaps() {
        // Weights 1,1,1, quorum 2, hysteresis 1: lost below 1, regained at 3.
        let mut p = Pool::new(vec![1, 1, 1], vec![true; 3], 2, 1, true);
        assert_eq!(p.set(0, Health::Down), [Action::Retire(0)]);
        assert_eq!(p.set(1, Health::Down), [Action::Retire(1)]);
        assert!(p.quorum_up(), "alive 1 is not below quorum - hysteresis");
        let lost = p.set(2, Health::Down);
        assert_eq!(lost, [Action::Retire(2), Action::AddSorry]);
        assert_eq!(p.set(0, Health::Up), []);
        assert_eq!(p.set(1, Health::Up), []);
        let back = p.set(2, Health::Up);
        assert_eq!(
            back,
            [
                Action::Restore(0),
                Action::Restore(1),
                Action::Restore(2),
                Action::RemoveSorry
            ]
        );
    }

    #[test]
    fn alpha_servers_start_retired() {
        let p = Pool::new(vec![1, 1], vec![false, true], 1, 0, false);
        assert_eq!(p.initial_actions(), [Action::Retire(0)]);
        let lost = Pool::new(vec![1, 1], vec![false, false], 1, 0, true);
        assert_eq!(
            lost.initial_actions(),
            [Action::AddSorry, Action::Retire(0), Action::Retire(1)]
        );
    }
}
