"""In-memory preference pairs for unit tests."""

from __future__ import annotations

from rewardlab.data.schema import PreferencePair


def make_pairs(n: int = 24) -> list[PreferencePair]:
    """Learnable in-memory pairs: the chosen answer is polite and short, the rejected rude and long."""
    pairs = []
    for i in range(n):
        pairs.append(
            PreferencePair(
                prompt=f"question number {i}: how do I fix my bike?",
                chosen="please check the chain, thank you",
                rejected="no idea, go away " + "stupid " * (1 + i % 5),
                subset="a" if i % 2 else "b",
            )
        )
    return pairs
