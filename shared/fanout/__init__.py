"""Scheduled fanout: probe every catalog model through the real call path, and switch rows off and
on from the evidence (with hysteresis), so a broken name or URL is found before a caller hits it."""
