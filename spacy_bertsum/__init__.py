"""spacy-bertsum: BertSum extractive summarization as a spaCy component."""
from . import architectures, schedules, scorer, segmentation  # noqa: F401  (registers functions)
from .about import __version__  # noqa: F401
from .pipeline import BertSum, make_bertsum  # noqa: F401
from .selection import SelectionConfig, select_sentences  # noqa: F401
from .render import render, serve  # noqa: F401
from .loading import load  # noqa: F401
