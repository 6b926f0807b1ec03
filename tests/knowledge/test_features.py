"""Every feature on hand-checked examples, and the feature registry."""

from __future__ import annotations

import math
import sys

import pytest
import torch

from rewardlab.knowledge import (
    FEATURE_SETS,
    KnowledgeConfig,
    extract,
    feature_names,
    get_feature_set,
    register_feature_set,
)
from rewardlab.knowledge import features as gf
from rewardlab.knowledge import summeval as op

# ---- general set ----------------------------------------------------------------------------
GENERAL_CASES = [
    (gf.log_length, "", "Hello, world!", math.log(5)),  # Hello , world !
    (gf.refusal, "", "I'm sorry, but I can't help.", 1.0),
    (gf.refusal, "", "I’m sorry, no.", 1.0),  # typographic apostrophe
    (gf.refusal, "", "Sure, here it is.", 0.0),
    (gf.hedging, "", "It might rain, perhaps today.", 2 / 5),
    (gf.prompt_overlap, "Describe the red apple.", "The apple is red and sweet.", 2 / 3),
    (gf.readability, "", "The cat sat.", 206.835 - 1.015 * 3 - 84.6 * 1),
    (gf.repetition, "", "a b c a b c", 1 / 4),  # abc bca cab abc
    (gf.repetition, "", "two words", 0.0),
    (gf.lexical_diversity, "", "the cat the dog", 3 / 4),
    (gf.formatting, "", "Steps:\n- one\n- two\n1. three\n```\ncode\n```", math.log(6)),
    (gf.formatting, "", "Plain prose.", 0.0),
    (gf.question_marks, "", "Why? Because. Really?", 2 / 3),
]

# ---- opinion-summary set (reviews read from the prompt) ---------------------------------------
PROMPT = (
    "Write a short summary.\n\nReview 1: The price is great and the boots are comfortable."
    "\n\nReview 2: The size runs small. Poor shipping."
)  # aspects: price +1, comfort +1 (review 1); size −1, shipping −1 (review 2)
OPINION_CASES = [
    (op.aspect_coverage, PROMPT, "The boots are comfortable and cheap.", 2 / 4),  # comfort, price
    (op.sentiment_consistency, PROMPT, "The boots are comfortable. The price is great.", 1.0),
    (op.sentiment_consistency, PROMPT, "The boots are uncomfortable.", 0.0),  # −1 vs +1
    (op.sentiment_consistency, PROMPT, "Nice.", 0.5),  # no shared aspect
    (op.specificity, PROMPT, "The 2 boots fit well.", 2 / 5),  # "2", "fit"
    (op.redundancy, PROMPT, "The boots are comfortable. The boots are comfortable. Cheap.", 1.0),
    (op.redundancy, PROMPT, "Great boots. Fast shipping.", 0.0),
    (op.unsupported, PROMPT, "The boots are comfortable and waterproof.", 1 / 3),  # waterproof
    (op.first_person, PROMPT, "I love my boots.", 2 / 4),
    (op.well_formed, PROMPT, "Great boots. cheap price", 1 / 2),
    (op.mean_sentence_words, PROMPT, "Great boots. They fit well and look nice.", 4.0),
]


@pytest.mark.parametrize(("fn", "prompt", "response", "expected"), GENERAL_CASES + OPINION_CASES)
def test_feature_hand_checked(fn, prompt, response, expected):
    assert fn(prompt, response) == pytest.approx(expected)


def test_every_feature_has_a_docstring_and_a_hand_checked_case():
    checked = {fn.__name__ for fn, *_ in GENERAL_CASES + OPINION_CASES}
    for set_name in ("general", "opinion_summary"):
        fs = get_feature_set(set_name)
        for name in fs.names:
            fn = fs.registry.get(name)
            assert fn.__doc__, f"{set_name}.{name} has no docstring"
            assert fn.__name__ in checked, f"{set_name}.{name} has no hand-checked test"


def test_reviews_are_read_from_the_prompt():
    assert op.reviews_of(PROMPT) == (
        "The price is great and the boots are comfortable.",
        "The size runs small. Poor shipping.",
    )
    assert op.reviews_of("no review blocks") == ("no review blocks",)
    assert op.aspects_in(PROMPT) == {"price", "comfort", "size", "shipping"}


def test_empty_response_gives_zeros_not_errors():
    row = extract(["general", "opinion_summary"], [PROMPT], [""])
    assert torch.isfinite(row).all()


def test_extract_shape_and_names():
    names = feature_names(["general", "opinion_summary"])
    phi = extract(["general", "opinion_summary"], [PROMPT, PROMPT], ["Good boots.", "I love my boots."])
    assert phi.shape == (2, len(names)) and phi.dtype == torch.float64
    assert names[0] == "general.log_length" and "opinion_summary.aspect_coverage" in names
    k = names.index("opinion_summary.first_person")
    assert phi[0, k] == 0 and phi[1, k] == pytest.approx(0.5)


def test_user_registered_set_and_clashes():
    fs = register_feature_set("test_legal", "a user's domain")

    @fs.feature("cites_statute")
    def cites_statute(prompt: str, response: str) -> float:
        """1 when the response cites a section sign."""
        return float("§" in response)

    try:
        assert feature_names(["test_legal"]) == ["test_legal.cites_statute"]
        assert extract(["test_legal"], ["q", "q"], ["see § 3", "no"]).squeeze(1).tolist() == [1.0, 0.0]
        assert fs.module == __name__
        with pytest.raises(ValueError, match="already registered"):
            fs.feature("cites_statute")(cites_statute)
        with pytest.raises(ValueError, match="already registered"):
            register_feature_set("test_legal")
        with pytest.raises(KeyError, match="unknown feature set 'nope'"):
            get_feature_set("nope")
    finally:
        FEATURE_SETS._items.pop("test_legal")


def test_unknown_set_is_imported_from_its_recorded_module(tmp_path, monkeypatch):
    (tmp_path / "my_domain_feats.py").write_text(
        "from rewardlab.knowledge import register_feature_set\n"
        "fs = register_feature_set('test_mydomain')\n"
        "@fs.feature('exclaims')\n"
        "def exclaims(prompt, response):\n"
        "    '''Count of exclamation marks.'''\n"
        "    return float(response.count('!'))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        fs = get_feature_set("test_mydomain", module="my_domain_feats")
        assert fs("", "wow!!") == [2.0]
        FEATURE_SETS._items.pop("test_mydomain")
        sys.modules.pop("my_domain_feats")
        assert KnowledgeConfig(feature_sets=["general", "my_domain_feats:test_mydomain"]).feature_sets == [
            "general",
            "test_mydomain",
        ]
    finally:
        FEATURE_SETS._items.pop("test_mydomain", None)
        sys.modules.pop("my_domain_feats", None)


@pytest.mark.slow
def test_embedding_similarity_with_minilm():
    same = gf.prompt_similarity("How do I bake bread?", "How do I bake bread?")
    near = gf.prompt_similarity("How do I bake bread?", "Mix flour, water and yeast, then bake it.")
    far = gf.prompt_similarity("How do I bake bread?", "The stock market fell sharply on Tuesday.")
    assert same == pytest.approx(1.0, abs=1e-5) and near > far
