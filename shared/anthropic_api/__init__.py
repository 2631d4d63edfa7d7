"""Anthropic's Messages API as an ingress: its request and answer shapes, translated to and from our
chat-completions types, so `/v1/messages` runs through the same dispatch path as chat completions."""
