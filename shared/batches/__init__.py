"""Batches: the OpenAI Files and Batches API's model, its input-file validation, the feeder that
turns accepted lines into queued jobs, and the output and error files."""
