//! The live state of a run while the load goes on: the servers, the phases
//! still pending, and what the observers saw. Ticked by the rounds every
//! few tens of milliseconds; stamps with [`Instant`]s until the
//! [`Origin`] is known, and rebases to it at the end.

use std::time::{Duration, Instant};

use super::RunError;
use super::measurements::AppliedPhase;
use super::observe::{IpvsWatcher, SeenSample, Trackers};
use super::phases::{PendingPhases, apply_phase, phase_kind};
use super::servers::Launcher;
use crate::network::LabNetwork;
use crate::process::ChildGuard;
use crate::report::model::Event;

/// The start of the measured load of round 1: every report time counts
/// from it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Origin(pub(super) Instant);

impl Origin {
    /// Seconds from the origin to `at` (negative before it).
    pub(super) fn secs(self, at: Instant) -> f64 {
        if at >= self.0 {
            (at - self.0).as_secs_f64()
        } else {
            -(self.0 - at).as_secs_f64()
        }
    }
}

/// The running servers and everything observed so far.
pub(super) struct Live<'a> {
    pub(super) lab: &'a LabNetwork,
    pub(super) launcher: Launcher,
    /// One slot per planned server (plan order); `None` after a restart
    /// failed half-way.
    pub(super) servers: Vec<Option<ChildGuard>>,
    pending: PendingPhases,
    /// Learned from the load generator's first progress line.
    pub(super) origin: Option<Origin>,
    /// Phase events: phases run only once the origin is known, so these
    /// are stamped in seconds at once.
    pub(super) events: Vec<Event>,
    pub(super) applied: Vec<AppliedPhase>,
    pub(super) samples: Vec<SeenSample>,
    /// When each round's measured load started (its loadgen's own clock).
    pub(super) round_starts: Vec<Instant>,
    last_sample: Instant,
    /// One second, or five times what the last sample took: a table of
    /// 100k connections takes 0.2-0.4 s to fold on the host, and the
    /// sampler must not eat the guest's one CPU (entries live on for
    /// minutes in TIME_WAIT, so a slower sampler still sees them).
    sample_every: Duration,
    pub(super) watcher: IpvsWatcher,
    /// The connection table's mappings and the servers' peers, sampled
    /// with `samples`.
    pub(super) trackers: Trackers,
    /// Each round's load generator, from its spawn to its exit.
    pub(super) round_windows: Vec<(Instant, Instant)>,
    /// Each round's CPU over its measured phase.
    pub(super) round_usage: Vec<super::measurements::RoundUsage>,
    /// Under time travel: the rounds and the idle gap between them, so
    /// that [`Self::tick`] naps through the gaps (see [`Self::nap_in_idle`]).
    idle_naps: Option<(u32, Duration)>,
}

/// How close to the end of an idle gap the naps stop, so the next round
/// starts on time.
const NAP_MARGIN: Duration = Duration::from_millis(150);

impl<'a> Live<'a> {
    /// The state before the first round.
    pub(super) fn new(
        lab: &'a LabNetwork,
        launcher: Launcher,
        servers: Vec<Option<ChildGuard>>,
        pending: PendingPhases,
    ) -> Self {
        Live {
            lab,
            launcher,
            servers,
            pending,
            origin: None,
            events: Vec::new(),
            applied: Vec::new(),
            samples: Vec::new(),
            round_starts: Vec::new(),
            last_sample: Instant::now() - Duration::from_secs(2),
            sample_every: Duration::from_secs(1),
            watcher: IpvsWatcher::open(lab),
            trackers: Trackers::new(lab.plan()),
            round_windows: Vec::new(),
            round_usage: Vec::new(),
            idle_naps: None,
        }
    }

    /// Under time travel, every wake-up of the guest costs host time while
    /// the skipped idle costs none: the idle loop's 20 wake-ups a second
    /// made a 2-hour run take minutes. With this set, a tick in an idle gap
    /// sleeps until the next sample, phase or the gap's end (at most 1 s),
    /// so the gap costs about one wake-up per guest second. The watcher
    /// then sees IPVS changes in the gap to the second, not to 100 ms;
    /// rounds are ticked as before.
    pub(super) fn nap_in_idle(&mut self, rounds: u32, idle: Duration) {
        self.idle_naps = Some((rounds, idle));
    }

    /// How long the tick after this one can wait: `None` outside an idle
    /// gap (or without [`Self::nap_in_idle`]).
    fn nap(&self, now: Instant) -> Option<Duration> {
        let (rounds, idle) = self.idle_naps?;
        let (_, ended) = *self.round_windows.last()?;
        if self.round_windows.len() >= rounds as usize {
            return None;
        }
        let gap_end = (ended + idle).checked_sub(NAP_MARGIN)?;
        let mut until = gap_end.min(self.last_sample + self.sample_every);
        if let (Some(origin), Some(at)) = (self.origin, self.pending.next_at()) {
            until = until.min(origin.0 + at);
        }
        Some(
            until
                .saturating_duration_since(now)
                .min(Duration::from_secs(1)),
        )
    }

    /// Applies the phases that are due, samples IPVS once a second (less
    /// often when a sample is slow) and polls it for changes every 100 ms.
    pub(super) fn tick(&mut self) -> Result<(), RunError> {
        if let Some(origin) = self.origin {
            self.apply_due(origin)?;
        }
        self.watcher.poll(self.lab.plan());
        if self.last_sample.elapsed() >= self.sample_every {
            self.last_sample = Instant::now();
            if let Some(sample) =
                super::observe::sample(self.lab, self.last_sample, &mut self.trackers)
            {
                self.samples.push(sample);
            }
            self.sample_every = Duration::from_secs(1).max(self.last_sample.elapsed() * 5);
        }
        if let Some(nap) = self.nap(Instant::now()) {
            std::thread::sleep(nap);
        }
        Ok(())
    }

    fn apply_due(&mut self, origin: Origin) -> Result<(), RunError> {
        while let Some((at, action)) = self.pending.due(origin.0, Instant::now()) {
            let applied_at = Instant::now();
            let detail = apply_phase(self.lab, &mut self.servers, &self.launcher, &action)
                .map_err(|detail| RunError::Phase {
                    at,
                    action: format!("{action:?}"),
                    detail,
                })?;
            let t_s = origin.secs(applied_at);
            self.events.push(Event {
                t_s,
                kind: phase_kind(&action),
                detail,
            });
            self.applied.push(AppliedPhase { t_s, action });
        }
        Ok(())
    }
}
