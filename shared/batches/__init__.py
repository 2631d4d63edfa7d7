"""Batches: input-file validation and storage, the supervisor that feeds accepted lines to the
queue, finalization, and the output and error files (their API shapes are in gateway/objects/)."""
