-- One index instead of two on the active enrollments of a section: the unique index of
-- an active place now also carries `status`, so the per-section counts (the deferred
-- counters trigger, actor activation) are index-only scans on it, and every enrollment
-- row written maintains one index fewer.
CREATE UNIQUE INDEX enrollments_one_active_v2 ON enrollments (section_id, student_id)
    INCLUDE (status) WHERE status <> 'dropped';
DROP INDEX enrollments_one_active;
ALTER INDEX enrollments_one_active_v2 RENAME TO enrollments_one_active;
DROP INDEX enrollments_section_status;
