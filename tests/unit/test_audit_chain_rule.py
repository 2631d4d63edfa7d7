"""The hash-chain rule: ours and the public `ainfera` SDK's agree, and tampering is found."""

import json
from datetime import UTC, datetime

import pytest
from ainfera.audit import AuditEvent
from ainfera.exceptions import AuditChainBroken
from ainfera.verify import verify_chain
from hypothesis import given
from hypothesis import strategies as st

from shared.audit.chain import canonical_json, event_hash, split_around_seq, verify_events


def build_chain(n: int) -> list[dict]:
    events, previous = [], None
    for seq in range(1, n + 1):
        payload = {
            "seq": seq,
            "event_type": "inference.routed",
            "tenant_id": "t-1",
            "time": "2026-11-26T00:00:00.000000Z",
            "job_id": f"job_{seq}",
            "model": "kimi-k2.6@moonshot",
            "note": "naïve café ☕",  # non-ASCII stays raw UTF-8
            "cost_usd": "0.0000123",
        }
        text = canonical_json(payload)
        h = event_hash(previous, text)
        events.append({"seq": seq, "event_type": "inference.routed", "payload": text.decode(),
                       "previous_hash": previous, "event_hash": h})
        previous = h
    return events


def test_canonical_json_is_sorted_compact_utf8():
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_canonical_json_refuses_nan():
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_first_event_hashes_with_an_empty_previous_hash():
    import hashlib
    text = canonical_json({"seq": 1})
    assert event_hash(None, text) == hashlib.sha256(text).hexdigest()


def test_the_public_sdk_accepts_our_chain():
    events = [
        AuditEvent(agent_id="t-1", seq=e["seq"], event_type=e["event_type"], payload=json.loads(e["payload"]),
                   previous_hash=e["previous_hash"], event_hash=e["event_hash"], created_at=datetime.now(UTC))
        for e in build_chain(20)
    ]
    assert verify_chain(events) is True


def test_our_verifier_accepts_an_intact_chain():
    count, broken = verify_events(build_chain(50))
    assert (count, broken) == (50, None)


def test_an_edited_payload_is_found_at_its_seq_by_both_verifiers():
    chain = build_chain(10)
    edited = json.loads(chain[6]["payload"])
    edited["model"] = "cheaper-model@somewhere"
    chain[6]["payload"] = canonical_json(edited).decode()
    _, broken = verify_events(chain)
    assert broken is not None and broken.seq == 7
    sdk_events = [AuditEvent(agent_id="t", seq=e["seq"], event_type=e["event_type"], payload=json.loads(e["payload"]),
                             previous_hash=e["previous_hash"], event_hash=e["event_hash"],
                             created_at=datetime.now(UTC)) for e in chain]
    with pytest.raises(AuditChainBroken) as info:
        verify_chain(sdk_events)
    assert info.value.broken_at_seq == 7


def test_a_removed_event_is_found():
    chain = build_chain(10)
    del chain[3]
    _, broken = verify_events(chain)
    assert broken is not None and broken.seq == 5

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(st.text(max_size=8).filter(lambda k: k != "seq"), json_values, max_size=8),
       st.integers(1, 10**12))
def test_payload_split_around_seq_rebuilds_the_canonical_json(fields, seq):
    prefix, suffix = split_around_seq(fields)
    assert (prefix + str(seq) + suffix).encode() == canonical_json({**fields, "seq": seq})


def test_payload_split_refuses_a_caller_chosen_seq():
    with pytest.raises(ValueError):
        split_around_seq({"seq": 3})
