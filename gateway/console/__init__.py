"""The operator console: one server-rendered page and a small script, no build step."""
