-- An Idempotency-Key is bound to the request it first answered: a fingerprint of the
-- operation and its arguments (a key reused for another request is refused). A drop's
-- audit row records whether the freed seat promoted someone, so the first answer to any
-- decided request can be rebuilt from the audit row written in the decision's own commit
-- when the stored answer was lost (a crash between the commit and storing the answer).
ALTER TABLE idempotency_keys ADD COLUMN fingerprint uuid;
ALTER TABLE registration_attempts ADD COLUMN promoted boolean;
