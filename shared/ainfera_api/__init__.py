"""Ainfera's own API (what the public `ainfera` SDK calls), translated at the gateway's edge onto
the chat-completions path, API keys and budgets; no second pipeline."""
