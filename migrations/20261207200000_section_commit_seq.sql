-- A section's commit count: how many batches that changed something have committed for
-- it. A section actor decides a batch while earlier ones are still committing; each batch
-- names the count it was decided on and commits only on top of exactly that, so a batch
-- never outlives the failure of one it was decided on.
ALTER TABLE sections ADD COLUMN commit_seq bigint NOT NULL DEFAULT 0;
