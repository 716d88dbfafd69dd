"""spaCy tokenisation and lemmas, with no model download: a blank English pipeline plus the lookup
lemmatizer whose tables come from the `spacy-lookups-data` package.
"""

from __future__ import annotations

from collections.abc import Iterable

import spacy
from spacy.language import Language

from textclf.cleaning import URL_TOKEN, clean_text

NUMBER_TOKEN = "NUM"


def identity(value: list[str]) -> list[str]:
    """Pass-through for TfidfVectorizer (texts arrive already tokenised); module-level so it pickles."""
    return value


def build_nlp() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()  # loads the lookup table from spacy-lookups-data; raises if that package is missing
    return nlp


class Lemmatizer:
    """Clean texts and turn each into a list of lower-case lemmas (URLs as `URL <site>`, numbers as `NUM`)."""

    def __init__(self) -> None:
        self.nlp = build_nlp()

    def lemmas(self, texts: Iterable[str]) -> list[list[str]]:
        cleaned = (clean_text(text) for text in texts)
        return [self._doc_lemmas(doc) for doc in self.nlp.pipe(cleaned, batch_size=256)]

    @staticmethod
    def _doc_lemmas(doc: spacy.tokens.Doc) -> list[str]:
        out: list[str] = []
        for token in doc:
            if token.is_space or token.is_punct:
                continue
            if token.text == URL_TOKEN:
                out.append(URL_TOKEN)
            elif token.like_num:
                out.append(NUMBER_TOKEN)
            else:
                out.append((token.lemma_ or token.text).lower())
        return out
