"""The opinion-summary domain set (``opinion_summary``), computed against the source reviews.

The reviews are read from the prompt (``Review k: ...`` blocks, as in the bundled SummEval-OP
pairs; a prompt without such blocks is one source text), so scoring needs only prompt and summary.
Aspects come from a small product-aspect lexicon (:data:`ASPECTS`); sentiment from the lexicon in
:mod:`rewardlab.knowledge.text`. Each feature is a pure function of (prompt, summary).
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import combinations

from rewardlab.knowledge.features import register_feature_set
from rewardlab.knowledge.text import content_words, polarity, sentences, stem, word_share, words

OPINION = register_feature_set(
    "opinion_summary",
    "aspect coverage, sentiment consistency, specificity, redundancy, unsupported content, fluency",
)
REVIEW_RE = re.compile(r"(?:^|\n)\s*Review \d+:\s*")
ASPECTS: dict[str, frozenset[str]] = {
    a: frozenset(stem(w) for w in ws.split())
    for a, ws in {
        "price": "price priced pricey cost costs expensive cheap value money worth affordable dollars",
        "quality": "quality made construction build durable durability sturdy flimsy last lasts lasting",
        "size": "size sizes sized fit fits fitting small large big narrow wide tight loose",
        "comfort": "comfort comfortable comfy uncomfortable soft cushion painful",
        "look": "look looks looking style stylish design color colour beautiful cute appearance fashion",
        "use": "easy use using difficult setup install instructions assemble handle",
        "performance": "performance works working work power speed fast slow effective results",
        "material": "material materials leather fabric plastic metal cotton rubber wood glass",
        "shipping": "shipping shipped delivery arrived package packaging box",
        "service": "service customer seller support warranty refund return returned",
        "battery": "battery batteries charge charging",
        "sound": "sound noise noisy loud quiet volume",
        "smell_taste": "smell smells scent taste tastes flavor",
    }.items()
}
FIRST_PERSON = frozenset("i me my mine i'm i've i'd".split())


@lru_cache(maxsize=4096)
def reviews_of(prompt: str) -> tuple[str, ...]:
    """The ``Review k:`` blocks of a prompt (the whole prompt when there are none)."""
    parts = REVIEW_RE.split(prompt)
    return tuple(p.strip() for p in parts[1:] if p.strip()) or (prompt,)


def aspects_in(text: str) -> set[str]:
    """The lexicon aspects a text mentions (any of an aspect's stemmed keywords)."""
    stems = {stem(w) for w in words(text)}
    return {a for a, keys in ASPECTS.items() if stems & keys}


def aspect_polarity(text: str, aspect: str) -> float | None:
    """Mean sentiment (−1..1) of the text's sentences that mention ``aspect``; ``None`` if none do."""
    pols = [polarity(s) for s in sentences(text) if aspect in aspects_in(s)]
    return sum(pols) / len(pols) if pols else None


@lru_cache(maxsize=4096)
def _review_stats(prompt: str) -> tuple[frozenset[str], frozenset[str], dict[str, float]]:
    """(aspects mentioned by ≥ 1 review, every review content word, mean polarity per aspect)."""
    revs = reviews_of(prompt)
    mentioned = frozenset(a for r in revs for a in aspects_in(r))
    vocab = frozenset(w for r in revs for w in content_words(r))
    pol = {}
    for a in mentioned:
        vals = [p for r in revs if (p := aspect_polarity(r, a)) is not None]
        pol[a] = sum(vals) / len(vals)
    return mentioned, vocab, pol


@OPINION.feature("aspect_coverage")
def aspect_coverage(prompt: str, summary: str) -> float:
    """Share of the aspects the reviews mention that the summary also mentions (0 if none)."""
    mentioned = _review_stats(prompt)[0]
    return len(mentioned & aspects_in(summary)) / len(mentioned) if mentioned else 0.0


@OPINION.feature("sentiment_consistency")
def sentiment_consistency(prompt: str, summary: str) -> float:
    """Mean over aspects in both summary and reviews of ``1 − |s_summary(a) − s_reviews(a)| / 2``
    (sentiments in −1..1); 0.5 (no evidence) when they share no aspect."""
    _, _, pol = _review_stats(prompt)
    shared = [a for a in aspects_in(summary) if a in pol]
    if not shared:
        return 0.5
    gaps = [abs((aspect_polarity(summary, a) or 0.0) - pol[a]) / 2 for a in shared]
    return 1.0 - sum(gaps) / len(gaps)


@OPINION.feature("specificity")
def specificity(prompt: str, summary: str) -> float:
    """Aspect keywords and numbers per word of the summary (concrete, not generic, content)."""
    ws = words(summary)
    keys = frozenset().union(*ASPECTS.values())
    return sum(stem(w) in keys or w.isdigit() for w in ws) / len(ws) if ws else 0.0


@OPINION.feature("redundancy")
def redundancy(prompt: str, summary: str) -> float:
    """Largest content-word Jaccard overlap between two sentences of the summary (0 for one)."""
    sets = [set(content_words(s)) for s in sentences(summary)]
    overlaps = [len(a & b) / len(a | b) for a, b in combinations(sets, 2) if a | b]
    return max(overlaps, default=0.0)


@OPINION.feature("unsupported")
def unsupported(prompt: str, summary: str) -> float:
    """Share of the summary's distinct content words (stemmed) that no review contains."""
    cw = set(content_words(summary))
    vocab = _review_stats(prompt)[1]
    return len(cw - vocab) / len(cw) if cw else 0.0


@OPINION.feature("first_person")
def first_person(prompt: str, summary: str) -> float:
    """Share of first-person singular words (I, my, me...): a review's voice copied, not a summary's."""
    return word_share(summary, FIRST_PERSON)


@OPINION.feature("well_formed")
def well_formed(prompt: str, summary: str) -> float:
    """Fluency proxy: share of sentences that start with a capital (or digit) and end in . ! or ?."""
    ss = sentences(summary)
    ok = [s[0].isupper() or s[0].isdigit() for s in ss]
    ends = [s[-1] in ".!?" for s in ss]
    return sum(a and b for a, b in zip(ok, ends, strict=True)) / len(ss) if ss else 0.0


@OPINION.feature("mean_sentence_words")
def mean_sentence_words(prompt: str, summary: str) -> float:
    """Fluency proxy: mean words per sentence (0 if empty)."""
    ss = sentences(summary)
    return sum(len(words(s)) for s in ss) / len(ss) if ss else 0.0
