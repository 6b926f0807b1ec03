"""Small, dependency-free text helpers shared by the feature sets: tokens, words, sentences,
content words, a light stemmer, and the sentiment lexicon."""

from __future__ import annotations

import re
from functools import lru_cache

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
WORD_RE = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
SENTENCE_RE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)", re.M)
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves also would much many one get got
    it's i'm don't doesn't didn't isn't wasn't can't won't i've they're there's that's""".split()
)
POSITIVE = frozenset(
    """good great excellent amazing awesome love loved loves like liked nice perfect perfectly
    comfortable comfy happy pleased recommend recommended best beautiful fabulous fantastic
    wonderful sturdy durable quality worth well easy reliable impressive favorite soft cute
    satisfied solid superb glad pretty lovely fine enjoy enjoyed works stylish affordable""".split()
)
NEGATIVE = frozenset(
    """bad poor terrible awful horrible hate hated disappointed disappointing disappointment
    broke broken cheap flimsy uncomfortable problem problems issue issues worst waste return
    returned defective difficult hard tight narrow small smaller painful hurt hurts noisy wrong
    fail failed fails unhappy useless annoying stiff overpriced expensive complaint complaints
    lacking worse weak leak leaks faulty""".split()
)


@lru_cache(maxsize=65536)
def tokens(text: str) -> tuple[str, ...]:
    """Word and punctuation tokens (``"Hi, you!"`` → ``("Hi", ",", "you", "!")``)."""
    return tuple(TOKEN_RE.findall(text))


@lru_cache(maxsize=65536)
def words(text: str) -> tuple[str, ...]:
    """Lower-cased words (letters/digits, with an apostrophe suffix such as ``don't``)."""
    return tuple(w.lower() for w in WORD_RE.findall(text))


def word_share(text: str, vocab: frozenset[str]) -> float:
    """Share of the text's words that are in ``vocab`` (0 for a text without words)."""
    ws = words(text)
    return sum(w in vocab for w in ws) / len(ws) if ws else 0.0


def sentences(text: str) -> list[str]:
    """Sentences: runs ending in ``.``, ``!``, ``?``, a line break or the end (stripped, non-empty)."""
    return [s.strip() for s in SENTENCE_RE.findall(text) if s.strip() and WORD_RE.search(s)]


def stem(word: str) -> str:
    """A light suffix stripper so ``boots``/``boot`` and ``fitting``/``fit`` match."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) >= 4 and word[-1] == word[-2]:  # fitt → fit
        word = word[:-1]
    return word


def content_words(text: str) -> list[str]:
    """Stemmed words that are not stopwords and have 3+ characters (or are numbers)."""
    return [stem(w) for w in words(text) if (len(w) >= 3 or w.isdigit()) and w not in STOPWORDS]


def polarity(text: str) -> float:
    """Lexicon sentiment in [−1, 1]: ``(pos − neg) / (pos + neg)``, 0 without sentiment words.
    A ``not``/``never``/``no`` right before a sentiment word flips it."""
    pos = neg = 0
    ws = words(text)
    for i, w in enumerate(ws):
        sign = 1 if w in POSITIVE else -1 if w in NEGATIVE else 0
        if sign and i and ws[i - 1] in ("not", "never", "no", "isn't", "wasn't", "don't", "doesn't"):
            sign = -sign
        pos += sign > 0
        neg += sign < 0
    return (pos - neg) / (pos + neg) if pos + neg else 0.0


def syllables(word: str) -> int:
    """Vowel-group syllable estimate (a silent final ``e`` does not count; at least 1)."""
    w = word.lower()
    groups = re.findall(r"[aeiouy]+", w)
    n = len(groups)
    if w.endswith("e") and not w.endswith(("le", "ee")) and n > 1:
        n -= 1
    return max(n, 1)
