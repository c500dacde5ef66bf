//! Units (patrol cars, foot patrols, post officers) and their status.
//!
//! The status machine follows common CAD practice (APCO/NENA unit status model): a unit is
//! *dispatched* to an incident, goes *en route*, arrives *on scene* and is *cleared* back to
//! *available*. *Busy* (on a non-incident task) and *out of service* are set by hand.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What a unit is. Shapes the map icon and the status board's "type" column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// A patrol car (巡逻车).
    PatrolCar,
    /// A motorcycle unit.
    Motorcycle,
    /// Officers on foot (步巡).
    FootPatrol,
    /// Officers staffing a street police post (警务站).
    PostTeam,
    /// A special-operations or SWAT team (特警).
    Tactical,
    /// Traffic police (交警).
    Traffic,
}

/// The status of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum UnitStatus {
    /// Free to take an incident.
    Available,
    /// Assigned to an incident, not yet moving.
    Dispatched,
    /// Driving to the assigned incident.
    EnRoute,
    /// At the assigned incident.
    OnScene,
    /// Occupied by a task that is not an incident (transport, paperwork, meal).
    Busy,
    /// Off duty or unusable (vehicle fault).
    OutOfService,
}

/// Why a status change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// The pair is not in the transition table.
    #[error("a unit that is {from:?} cannot become {to:?}")]
    Illegal {
        /// Current status.
        from: UnitStatus,
        /// Requested status.
        to: UnitStatus,
    },
    /// Dispatched, en route and on scene need an active assignment to an incident.
    #[error("a unit must be assigned to an incident to become {0:?}")]
    NeedsAssignment(UnitStatus),
    /// A unit that has an active assignment cannot be assigned again before it is released.
    #[error("the unit is already assigned to an incident")]
    AlreadyAssigned,
    /// Only available units can be dispatched.
    #[error("a unit that is {0:?} cannot be dispatched")]
    NotAvailable(UnitStatus),
}

impl UnitStatus {
    /// The status in words, as a commander says it in English ("en route"): timeline
    /// summaries, CoT remarks.
    pub fn words(self) -> &'static str {
        match self {
            UnitStatus::Available => "available",
            UnitStatus::Dispatched => "dispatched",
            UnitStatus::EnRoute => "en route",
            UnitStatus::OnScene => "on scene",
            UnitStatus::Busy => "busy",
            UnitStatus::OutOfService => "out of service",
        }
    }

    /// Every status, in board order.
    pub const ALL: [UnitStatus; 6] = [
        UnitStatus::Available,
        UnitStatus::Dispatched,
        UnitStatus::EnRoute,
        UnitStatus::OnScene,
        UnitStatus::Busy,
        UnitStatus::OutOfService,
    ];

    /// True for the statuses that belong to an active assignment.
    pub fn is_committed(self) -> bool {
        matches!(
            self,
            UnitStatus::Dispatched | UnitStatus::EnRoute | UnitStatus::OnScene
        )
    }

    /// The transition table. `Dispatched` is reached only by assigning the unit
    /// ([`UnitStatus::check_dispatch`]); leaving an assignment back to `Available` means the
    /// unit is cleared and the assignment released.
    pub fn allowed_next(self) -> &'static [UnitStatus] {
        use UnitStatus::*;
        match self {
            Available => &[Busy, OutOfService],
            Dispatched => &[EnRoute, OnScene, Available],
            EnRoute => &[OnScene, Available],
            OnScene => &[Available],
            Busy => &[Available, OutOfService],
            OutOfService => &[Available],
        }
    }

    /// Checks a status change asked for by a person (a status button).
    ///
    /// `assigned` says whether the unit has an active assignment now.
    ///
    /// # Errors
    /// [`StatusError::Illegal`] when the pair is not in [`UnitStatus::allowed_next`];
    /// [`StatusError::NeedsAssignment`] for en route / on scene without an assignment.
    pub fn check_transition(self, to: UnitStatus, assigned: bool) -> Result<(), StatusError> {
        if to == UnitStatus::Dispatched {
            // Dispatch is an assignment, not a button.
            return Err(StatusError::Illegal { from: self, to });
        }
        if !self.allowed_next().contains(&to) {
            return Err(StatusError::Illegal { from: self, to });
        }
        if to.is_committed() && !assigned {
            return Err(StatusError::NeedsAssignment(to));
        }
        Ok(())
    }

    /// Checks that a unit in this status may be assigned to an incident.
    ///
    /// # Errors
    /// [`StatusError::AlreadyAssigned`] when `assigned`; [`StatusError::NotAvailable`] when the
    /// unit is busy or out of service.
    pub fn check_dispatch(self, assigned: bool) -> Result<(), StatusError> {
        if assigned || self.is_committed() {
            return Err(StatusError::AlreadyAssigned);
        }
        if self != UnitStatus::Available {
            return Err(StatusError::NotAvailable(self));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::UnitStatus::*;
    use super::*;

    /// The whole table, case by case: (from, to, assigned, allowed).
    #[test]
    fn transition_table() {
        let legal = [
            (Available, Busy),
            (Available, OutOfService),
            (Dispatched, EnRoute),
            (Dispatched, OnScene),
            (Dispatched, Available),
            (EnRoute, OnScene),
            (EnRoute, Available),
            (OnScene, Available),
            (Busy, Available),
            (Busy, OutOfService),
            (OutOfService, Available),
        ];
        for from in UnitStatus::ALL {
            for to in UnitStatus::ALL {
                let assigned = from.is_committed();
                let got = from.check_transition(to, assigned);
                let want = legal.contains(&(from, to));
                assert_eq!(got.is_ok(), want, "{from:?} -> {to:?}: {got:?}");
            }
        }
    }

    #[test]
    fn dispatched_is_never_a_button() {
        assert_eq!(
            Available.check_transition(Dispatched, false),
            Err(StatusError::Illegal {
                from: Available,
                to: Dispatched
            })
        );
    }

    #[test]
    fn en_route_needs_an_assignment() {
        assert_eq!(
            Dispatched.check_transition(EnRoute, false),
            Err(StatusError::NeedsAssignment(EnRoute))
        );
    }

    #[test]
    fn only_available_units_are_dispatched() {
        assert_eq!(Available.check_dispatch(false), Ok(()));
        assert_eq!(
            Busy.check_dispatch(false),
            Err(StatusError::NotAvailable(Busy))
        );
        assert_eq!(
            OutOfService.check_dispatch(false),
            Err(StatusError::NotAvailable(OutOfService))
        );
        assert_eq!(
            OnScene.check_dispatch(true),
            Err(StatusError::AlreadyAssigned)
        );
        assert_eq!(
            Available.check_dispatch(true),
            Err(StatusError::AlreadyAssigned)
        );
    }
}
