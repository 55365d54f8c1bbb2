"""``python -m spacy_bertsum COMMAND`` (also ``spacy-bertsum COMMAND``): see
``spacy_bertsum/cli``."""
from .cli import app, main  # noqa: F401

if __name__ == "__main__":
    main()
