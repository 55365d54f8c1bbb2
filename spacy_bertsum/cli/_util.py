"""The command-line app that every command module registers on (as in
``spacy/cli/_util.py``)."""
import typer

app = typer.Typer(
    name="spacy-bertsum",
    help="BertSum extractive summarization with spaCy: convert data, train, evaluate, summarize.",
    no_args_is_help=True,
    add_completion=False,
)
