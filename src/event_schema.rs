//! The event schema, in one place: the kinds of event with their routing keys, and the
//! JSON body every event carries. The section store writes it into the outbox, the relay
//! publishes it as it is, the consumers and `registrar verify` read it back. A leaf below
//! the store (it imports no other module of the crate), so the store can write events
//! without importing the `events` module, which reads the store's outbox; `events::payload`
//! re-exports it under its old name.
//!
//! Event ids are derived, not drawn ([`Event::id_of`]): the same change always gets the
//! same id, so a batch written twice (a commit retried after its COMMIT reply was lost)
//! cannot put a second copy of an event into the outbox under a fresh id.

use chrono::{DateTime, Utc};
use registrar_actors::CommitBatch;
use registrar_actors::ledger::{Change, ChangeKind, Placement};
use registrar_actors::student_rules::{EnrollmentOptions, GradingBasis};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The kinds of event; the serialized name is the routing key and the `type` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A student took a seat.
    #[serde(rename = "enrollment.created")]
    EnrollmentCreated,
    /// A student left a seat or the waitlist.
    #[serde(rename = "enrollment.dropped")]
    EnrollmentDropped,
    /// A student left a seat after the term's drop deadline: a withdrawal, with a W on the
    /// record. Like a drop, it frees the seat (a promotion may follow).
    #[serde(rename = "enrollment.withdrawn")]
    EnrollmentWithdrawn,
    /// A student joined the waitlist.
    #[serde(rename = "waitlist.added")]
    WaitlistAdded,
    /// A waitlisted student got a seat.
    #[serde(rename = "waitlist.promoted")]
    WaitlistPromoted,
    /// An admin changed the capacity.
    #[serde(rename = "section.capacity_changed")]
    CapacityChanged,
    /// A seat was held for a decision over several sections (not an enrollment yet).
    #[serde(rename = "seat.held")]
    SeatHeld,
    /// A held seat was given back: its decision was cancelled.
    #[serde(rename = "seat.released")]
    SeatReleased,
    /// The reserved seat pools changed: an admin replaced them, or a pool's release time
    /// came and its unused seats joined the general ones.
    #[serde(rename = "section.reserves_changed")]
    ReservesChanged,
    /// A waitlisted student is offered a freed seat until `expires_at` (offer-mode
    /// sections): a notification to accept or decline.
    #[serde(rename = "waitlist.offered")]
    WaitlistOffered,
    /// A student turned down the seat offered.
    #[serde(rename = "waitlist.offer_declined")]
    OfferDeclined,
    /// A seat offered was not taken in time.
    #[serde(rename = "waitlist.offer_expired")]
    OfferExpired,
    /// A waiting student is skipped at promotion (`reason`: the rule they no longer pass);
    /// their place is kept. A notification: the student is told why.
    #[serde(rename = "waitlist.blocked")]
    WaitlistBlocked,
    /// A waiting student is no longer skipped.
    #[serde(rename = "waitlist.unblocked")]
    WaitlistUnblocked,
    /// A student changed the credits or grading basis of a place they hold (the seat is
    /// untouched: written by the student's home node, not by the section's actor).
    #[serde(rename = "enrollment.options_changed")]
    OptionsChanged,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 15] = [
        EventKind::EnrollmentCreated,
        EventKind::EnrollmentDropped,
        EventKind::EnrollmentWithdrawn,
        EventKind::WaitlistAdded,
        EventKind::WaitlistPromoted,
        EventKind::CapacityChanged,
        EventKind::SeatHeld,
        EventKind::SeatReleased,
        EventKind::ReservesChanged,
        EventKind::WaitlistOffered,
        EventKind::OfferDeclined,
        EventKind::OfferExpired,
        EventKind::WaitlistBlocked,
        EventKind::WaitlistUnblocked,
        EventKind::OptionsChanged,
    ];

    /// The routing key (and `type`) of this kind.
    pub fn routing_key(self) -> &'static str {
        match self {
            EventKind::EnrollmentCreated => "enrollment.created",
            EventKind::EnrollmentDropped => "enrollment.dropped",
            EventKind::EnrollmentWithdrawn => "enrollment.withdrawn",
            EventKind::WaitlistAdded => "waitlist.added",
            EventKind::WaitlistPromoted => "waitlist.promoted",
            EventKind::CapacityChanged => "section.capacity_changed",
            EventKind::SeatHeld => "seat.held",
            EventKind::SeatReleased => "seat.released",
            EventKind::ReservesChanged => "section.reserves_changed",
            EventKind::WaitlistOffered => "waitlist.offered",
            EventKind::OfferDeclined => "waitlist.offer_declined",
            EventKind::OfferExpired => "waitlist.offer_expired",
            EventKind::WaitlistBlocked => "waitlist.blocked",
            EventKind::WaitlistUnblocked => "waitlist.unblocked",
            EventKind::OptionsChanged => "enrollment.options_changed",
        }
    }

    /// The kind of event a committed change yields.
    pub fn of(change: &ChangeKind) -> Self {
        match change {
            // A confirmed hold is the enrollment: consumers see it as one, with its decision.
            ChangeKind::Enrolled { .. } | ChangeKind::Confirmed { .. } => {
                EventKind::EnrollmentCreated
            }
            ChangeKind::Held { .. } | ChangeKind::PromotedHeld { .. } => EventKind::SeatHeld,
            ChangeKind::Released { .. } => EventKind::SeatReleased,
            ChangeKind::Waitlisted { .. } => EventKind::WaitlistAdded,
            ChangeKind::Dropped {
                withdrawn: true, ..
            } => EventKind::EnrollmentWithdrawn,
            ChangeKind::Dropped { .. } => EventKind::EnrollmentDropped,
            // An accepted offer is the promotion from the waitlist.
            ChangeKind::Promoted { .. } | ChangeKind::OfferAccepted { .. } => {
                EventKind::WaitlistPromoted
            }
            ChangeKind::Offered { .. } => EventKind::WaitlistOffered,
            ChangeKind::OfferEnded { expired: false, .. } => EventKind::OfferDeclined,
            ChangeKind::OfferEnded { expired: true, .. } => EventKind::OfferExpired,
            ChangeKind::CapacityChanged { .. } => EventKind::CapacityChanged,
            ChangeKind::ReservesChanged { .. } => EventKind::ReservesChanged,
            ChangeKind::Blocked {
                reason: Some(_), ..
            } => EventKind::WaitlistBlocked,
            ChangeKind::Blocked { reason: None, .. } => EventKind::WaitlistUnblocked,
        }
    }
}

/// Namespace of the UUIDv5 event ids. Never change it: an event re-derived after an
/// upgrade must keep its id.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x8b3f_61d2_7c0e_4a95_b2d4_19e6_5f70_c3a1);

/// What a dropped student held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Held {
    /// A seat.
    Enrolled,
    /// A waitlist place.
    Waitlisted,
}

/// The body of every event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per event: consumers drop duplicates by it.
    pub event_id: Uuid,
    /// The kind (also the routing key).
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// When the batch holding the change was decided.
    pub occurred_at: DateTime<Utc>,
    /// The section.
    pub section_id: Uuid,
    /// The student, when the event concerns one (null for capacity changes).
    pub student_id: Option<Uuid>,
    /// The request that caused the change.
    pub request_id: Uuid,
    /// Seats taken right after the change.
    pub seats_taken: u32,
    /// Capacity right after the change.
    pub capacity: u32,
    /// Waitlist length right after the change.
    pub waitlist_length: u32,
    /// The section's shard.
    pub shard: u32,
    /// The ownership epoch the change was written under.
    pub epoch: i64,
    /// Position on joining the waitlist (`waitlist.added`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// What the student held (`enrollment.dropped`; `enrolled` for `enrollment.withdrawn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Held>,
    /// Capacity before the change (`section.capacity_changed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_capacity: Option<u32>,
    /// The decision over several sections this change belongs to: every change of one
    /// linked set carries the same id, so consumers can tell they belong together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<Uuid>,
    /// When the seat offered stops waiting for the student (`waitlist.offered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The permits (overrides) that allowed the place taken (`enrollment.created`,
    /// `waitlist.added`, `seat.held`): each one's use is recorded in the same commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permit_ids: Vec<Uuid>,
    /// A seat beyond the section's capacity, by a capacity permit (`enrollment.created`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub over_capacity: bool,
    /// Why a waiting student is skipped (`waitlist.blocked`): the code of the rule they no
    /// longer pass, e.g. `student_on_hold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The credits the student takes the course for now (`enrollment.options_changed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<u32>,
    /// The grading basis now (`enrollment.options_changed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grading_basis: Option<GradingBasis>,
}

impl Event {
    /// The id of the event of `change`, committed in `batch`: a UUIDv5 over what makes one
    /// change unique, so the same change always has the same id. Within a request, the
    /// kind and the student tell changes apart (a drop that promotes yields the dropper's
    /// `enrollment.dropped` and the promoted student's `waitlist.promoted`; a capacity
    /// raise promotes several students); the section covers a request id reused across
    /// sections; the batch's decision time tells a retried batch (same time) from a later
    /// decision under the same request id (an `Idempotency-Key` sent again after its stored
    /// answer expired and the student had dropped): that is a new change and must get a
    /// new id rather than be swallowed as a duplicate.
    pub fn id_of(batch: &CommitBatch, change: &Change) -> Uuid {
        let mut name = Vec::with_capacity(16 + 32 + 16 + 17 + 8);
        name.extend_from_slice(change.request.0.as_bytes());
        name.extend_from_slice(EventKind::of(&change.kind).routing_key().as_bytes());
        // The routing keys never contain a NUL: it ends the kind unambiguously.
        name.push(0);
        name.extend_from_slice(batch.section.0.as_bytes());
        match change.kind.student() {
            Some(student) => {
                name.push(1);
                name.extend_from_slice(student.0.as_bytes());
            }
            None => name.push(0),
        }
        name.extend_from_slice(&batch.decided_at.timestamp_micros().to_be_bytes());
        Uuid::new_v5(&EVENT_ID_NAMESPACE, &name)
    }

    /// The event of `change`, committed in `batch`, under `event_id`.
    pub fn of(batch: &CommitBatch, change: &Change, event_id: Uuid) -> Self {
        let mut event = Event {
            event_id,
            kind: EventKind::of(&change.kind),
            occurred_at: batch.decided_at,
            section_id: batch.section.0,
            student_id: change.kind.student().map(|s| s.0),
            request_id: change.request.0,
            seats_taken: change.counts.seats_taken,
            capacity: change.counts.capacity,
            waitlist_length: change.counts.waitlist_length,
            shard: batch.shard,
            epoch: batch.epoch,
            position: None,
            from: None,
            previous_capacity: None,
            decision_id: change.kind.decision().map(|d| d.0),
            expires_at: None,
            permit_ids: change.permits.iter().map(|p| p.0).collect(),
            over_capacity: change.over_capacity,
            reason: None,
            credits: None,
            grading_basis: None,
        };
        match change.kind {
            ChangeKind::Waitlisted { position, .. } => event.position = Some(position),
            ChangeKind::Dropped { from, .. } => {
                event.from = match from {
                    Placement::Enrolled => Some(Held::Enrolled),
                    Placement::Waitlisted => Some(Held::Waitlisted),
                    Placement::Held | Placement::Offered => None,
                };
            }
            ChangeKind::CapacityChanged { from, to } => {
                event.previous_capacity = Some(from);
                event.capacity = to;
            }
            ChangeKind::Offered { expires_at, .. } => event.expires_at = Some(expires_at),
            ChangeKind::Blocked { ref reason, .. } => event.reason = reason.clone(),
            ChangeKind::Enrolled { .. }
            | ChangeKind::OfferAccepted { .. }
            | ChangeKind::OfferEnded { .. }
            | ChangeKind::ReservesChanged { .. }
            | ChangeKind::Promoted { .. }
            | ChangeKind::Held { .. }
            | ChangeKind::PromotedHeld { .. }
            | ChangeKind::Confirmed { .. }
            | ChangeKind::Released { .. } => {}
        }
        event
    }

    /// The event of a change of `student`'s options in `section`, recorded `at` by the
    /// student's home node under `request`; `counts` are the section's committed
    /// (`seats_taken`, `capacity`, `waitlist_length`), `owner` its (`shard`, `epoch`). Its
    /// id is derived like a section change's: from the request, the kind, the section, the
    /// student and the time.
    pub fn options_changed(
        section: Uuid,
        student: Uuid,
        request: Uuid,
        at: DateTime<Utc>,
        options: EnrollmentOptions,
        counts: [u32; 3],
        owner: (u32, i64),
    ) -> Self {
        let kind = EventKind::OptionsChanged;
        let mut name = Vec::with_capacity(16 + 32 + 16 + 17 + 8);
        name.extend_from_slice(request.as_bytes());
        name.extend_from_slice(kind.routing_key().as_bytes());
        name.push(0);
        name.extend_from_slice(section.as_bytes());
        name.push(1);
        name.extend_from_slice(student.as_bytes());
        name.extend_from_slice(&at.timestamp_micros().to_be_bytes());
        Event {
            event_id: Uuid::new_v5(&EVENT_ID_NAMESPACE, &name),
            kind,
            occurred_at: at,
            section_id: section,
            student_id: Some(student),
            request_id: request,
            seats_taken: counts[0],
            capacity: counts[1],
            waitlist_length: counts[2],
            shard: owner.0,
            epoch: owner.1,
            position: None,
            from: None,
            previous_capacity: None,
            decision_id: None,
            expires_at: None,
            permit_ids: Vec::new(),
            over_capacity: false,
            reason: None,
            credits: Some(options.credits),
            grading_basis: Some(options.basis),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registrar_actors::ledger::Counts;
    use registrar_actors::{RequestId, SectionId, StudentId};

    fn batch(changes: Vec<Change>) -> CommitBatch {
        CommitBatch {
            section: SectionId(Uuid::from_u128(1)),
            shard: 3,
            epoch: 4,
            decided_at: DateTime::UNIX_EPOCH + chrono::TimeDelta::milliseconds(1234),
            counts: Counts::default(),
            changes,
            attempts: Vec::new(),
            after: None,
        }
    }

    fn change(request: u128, kind: ChangeKind) -> Change {
        Change {
            kind,
            request: RequestId(Uuid::from_u128(request)),
            counts: Counts::default(),
            pool: None,
            permits: Vec::new(),
            over_capacity: false,
        }
    }

    fn student(n: u128) -> StudentId {
        StudentId(Uuid::from_u128(n))
    }

    #[test]
    fn the_same_change_always_has_the_same_event_id() {
        let drop = change(
            7,
            ChangeKind::Dropped {
                student: student(10),
                from: Placement::Enrolled,
                withdrawn: false,
            },
        );
        let b = batch(vec![drop.clone()]);
        let id = Event::id_of(&b, &drop);
        // A retried batch is a clone of the first: same ids, whatever else happened since.
        assert_eq!(Event::id_of(&b.clone(), &drop.clone()), id);
        assert_eq!(Event::of(&b, &drop, id).event_id, id);
        assert_eq!(id.get_version_num(), 5);
    }

    #[test]
    fn a_withdrawal_is_its_own_kind_of_event() {
        let withdrawal = change(
            7,
            ChangeKind::Dropped {
                student: student(10),
                from: Placement::Enrolled,
                withdrawn: true,
            },
        );
        let b = batch(vec![withdrawal.clone()]);
        let e = Event::of(&b, &withdrawal, Event::id_of(&b, &withdrawal));
        assert_eq!(e.kind, EventKind::EnrollmentWithdrawn);
        assert_eq!(e.kind.routing_key(), "enrollment.withdrawn");
        assert_eq!(e.from, Some(Held::Enrolled));
        let plain = change(
            7,
            ChangeKind::Dropped {
                student: student(10),
                from: Placement::Enrolled,
                withdrawn: false,
            },
        );
        assert_ne!(Event::id_of(&b, &plain), e.event_id);
    }

    #[test]
    fn changes_of_one_request_get_distinct_event_ids() {
        let dropper = change(
            7,
            ChangeKind::Dropped {
                student: student(10),
                from: Placement::Enrolled,
                withdrawn: false,
            },
        );
        // A drop that promotes: two events under one request id.
        let promoted = change(
            7,
            ChangeKind::Promoted {
                student: student(11),
            },
        );
        // A capacity raise: one capacity event and several promotions under one request.
        let raise = change(8, ChangeKind::CapacityChanged { from: 1, to: 3 });
        let first = change(
            8,
            ChangeKind::Promoted {
                student: student(12),
            },
        );
        let second = change(
            8,
            ChangeKind::Promoted {
                student: student(13),
            },
        );
        let all = vec![dropper, promoted, raise, first, second];
        let b = batch(all.clone());
        let ids: std::collections::HashSet<Uuid> =
            all.iter().map(|c| Event::id_of(&b, c)).collect();
        assert_eq!(ids.len(), all.len());
    }

    #[test]
    fn the_same_request_decided_again_later_is_a_new_event() {
        let enroll = change(
            7,
            ChangeKind::Enrolled {
                student: student(10),
            },
        );
        let first = batch(vec![enroll.clone()]);
        let mut later = first.clone();
        later.decided_at += chrono::TimeDelta::hours(25);
        assert_ne!(Event::id_of(&first, &enroll), Event::id_of(&later, &enroll));
        let mut elsewhere = first.clone();
        elsewhere.section = SectionId(Uuid::from_u128(2));
        assert_ne!(
            Event::id_of(&first, &enroll),
            Event::id_of(&elsewhere, &enroll)
        );
    }

    #[test]
    fn a_change_of_options_has_its_own_event_and_a_derived_id() {
        let at = DateTime::UNIX_EPOCH + chrono::TimeDelta::seconds(5);
        let options = EnrollmentOptions {
            credits: 4,
            basis: GradingBasis::PassFail,
        };
        let (section, student, request) =
            (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let e = Event::options_changed(section, student, request, at, options, [1, 2, 0], (3, 4));
        let again =
            Event::options_changed(section, student, request, at, options, [1, 2, 0], (3, 4));
        assert_eq!(e.event_id, again.event_id);
        let later = Event::options_changed(
            section,
            student,
            request,
            at + chrono::TimeDelta::seconds(1),
            options,
            [1, 2, 0],
            (3, 4),
        );
        assert_ne!(e.event_id, later.event_id);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "enrollment.options_changed");
        assert_eq!(json["credits"], 4);
        assert_eq!(json["grading_basis"], "pass_fail");
        assert_eq!(json["student_id"], student.to_string());
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), e);
    }

    #[test]
    fn routing_keys_are_the_serialized_names() {
        for kind in EventKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.routing_key());
            let back: EventKind = serde_json::from_value(json).unwrap();
            assert_eq!(back, kind);
        }
    }

    #[test]
    fn optional_fields_appear_only_where_they_apply() {
        let e = Event {
            event_id: Uuid::nil(),
            kind: EventKind::EnrollmentCreated,
            occurred_at: DateTime::UNIX_EPOCH,
            section_id: Uuid::nil(),
            student_id: None,
            request_id: Uuid::nil(),
            seats_taken: 1,
            capacity: 2,
            waitlist_length: 0,
            shard: 3,
            epoch: 4,
            position: None,
            from: Some(Held::Waitlisted),
            previous_capacity: None,
            decision_id: None,
            expires_at: None,
            permit_ids: Vec::new(),
            over_capacity: false,
            reason: None,
            credits: None,
            grading_basis: None,
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "enrollment.created");
        assert_eq!(json["student_id"], serde_json::Value::Null);
        assert_eq!(json["from"], "waitlisted");
        assert!(json.get("position").is_none());
        assert!(json.get("previous_capacity").is_none());
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), e);
    }
}
