//! Credential sets as a simulated credentials server hands them out: rotated
//! as the scenario's model says, or stale under an `expired_credentials`
//! fault. Shared by the simulated IMDS and the simulated container agent, so
//! both rotate alike.

use std::collections::BTreeMap;
use std::time::Duration;

use credstate::Timestamp;

use super::clock::SIM_EPOCH;
use crate::scenario::Rotation;

/// EC2 offers new credentials from this long before the old ones expire; the
/// simulated container agent rotates the same way.
pub(crate) const LATE_ROTATION_LEAD: Duration = Duration::from_secs(5 * 60);
/// `expired_credentials` credentials expired this long before the fault's
/// first answer.
pub(crate) const STALE_BY: Duration = Duration::from_secs(10 * 60);

/// One set of credentials, identified by its serial number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CredentialSet {
    pub(crate) serial: u64,
    pub(crate) issued_ms: u64,
    /// True time of expiry, ms since the start (may precede it: stale sets).
    pub(crate) expires_ms: i64,
}

impl CredentialSet {
    /// When the set was issued, by true time.
    pub(crate) fn issued_at(self) -> Timestamp {
        at(self.issued_ms as i64)
    }

    /// When the set expires, by true time.
    pub(crate) fn expires_at(self) -> Timestamp {
        at(self.expires_ms)
    }
}

/// Hands out credential sets on simulated true time.
#[derive(Debug, Clone)]
pub(crate) struct CredentialIssuer {
    lifetime: Duration,
    rotation: Rotation,
    current: Option<CredentialSet>,
    /// The stale set each `expired_credentials` fault (by index) keeps answering.
    stale: BTreeMap<usize, CredentialSet>,
    serial: u64,
}

impl CredentialIssuer {
    pub(crate) fn new(lifetime: Duration, rotation: Rotation) -> Self {
        CredentialIssuer {
            lifetime,
            rotation,
            current: None,
            stale: BTreeMap::new(),
            serial: 0,
        }
    }

    /// Sets issued so far.
    pub(crate) fn issued(&self) -> u64 {
        self.serial
    }

    fn issue(&mut self, elapsed_ms: u64, expires_ms: i64) -> CredentialSet {
        self.serial += 1;
        CredentialSet {
            serial: self.serial,
            issued_ms: elapsed_ms,
            // Both servers report whole seconds.
            expires_ms: expires_ms.div_euclid(1000) * 1000,
        }
    }

    /// The credentials of the healthy server, rotated as the model says.
    pub(crate) fn current_set(&mut self, elapsed_ms: u64) -> CredentialSet {
        let lifetime_ms = self.lifetime.as_millis() as i64;
        let lead_ms = LATE_ROTATION_LEAD.as_millis() as i64;
        let rotate = match (self.rotation, self.current) {
            (Rotation::Fresh, _) | (Rotation::Late, None) => true,
            (Rotation::Late, Some(set)) => elapsed_ms as i64 >= set.expires_ms - lead_ms,
        };
        if rotate {
            let set = self.issue(elapsed_ms, elapsed_ms as i64 + lifetime_ms);
            self.current = Some(set);
        }
        self.current.expect("set above when missing")
    }

    /// What an `expired_credentials` fault answers: the server's own
    /// credentials if they have already expired (nothing could renew them),
    /// else a set that expired a little earlier; the same set for the whole
    /// fault, as a server cut off from its credential source would.
    pub(crate) fn stale_set(&mut self, fault: usize, elapsed_ms: u64) -> CredentialSet {
        if let Some(set) = self.stale.get(&fault) {
            return *set;
        }
        let set = match self.current {
            Some(current) if current.expires_ms <= elapsed_ms as i64 => current,
            _ => self.issue(elapsed_ms, elapsed_ms as i64 - STALE_BY.as_millis() as i64),
        };
        self.stale.insert(fault, set);
        set
    }
}

fn at(ms: i64) -> Timestamp {
    SIM_EPOCH.shifted_by_millis(ms)
}
