"""Optional int8 dynamic quantization of the bertsum encoder (CPU, prediction only).

``quantize_encoder(nlp)`` swaps every ``torch.nn.Linear`` of the Hugging Face
encoder inside the bertsum component for a dynamically quantized int8 one
(``torch.ao.quantization.quantize_dynamic``): weights are stored as int8,
activations are quantized on the fly, per batch. The scoring head
(spacy_bertsum.inter_sentence) stays in float32.

The quantized pipeline can only predict: the component then refuses to be
updated (E023) or saved (E024). To train or save, load the pipeline again
without int8. ``python -m spacy_bertsum summarize/evaluate --int8`` use it;
its speed-up and ROUGE cost are reported in docs/benchmarks.md.
"""
import warnings

from spacy.language import Language
from thinc.api import CupyOps

from .architectures import get_hf_model, set_hf_model
from .errors import Errors

__all__ = ["quantize_encoder", "is_quantized"]


def is_quantized(nlp: Language, pipe_name: str = "bertsum") -> bool:
    """Whether ``quantize_encoder`` has run on the component ``pipe_name``."""
    return bool(getattr(nlp.get_pipe(pipe_name), "int8", False))


def quantize_encoder(nlp: Language, pipe_name: str = "bertsum") -> int:
    """Quantize the encoder of the bertsum component ``pipe_name`` to int8
    (dynamic quantization of its Linear layers), in place. Returns how many
    Linear layers were quantized; 0 when the encoder already is (a second call
    changes nothing).

    CPU only: raises ValueError (E025) when the pipeline runs on a GPU or
    torch has no quantized engine. Afterwards the component can predict but
    not be trained or saved (E023, E024).
    """
    import torch

    pipe = nlp.get_pipe(pipe_name)
    if getattr(pipe, "int8", False):
        return 0
    hf_model = get_hf_model(pipe.model)
    if hf_model is None:
        raise ValueError(Errors.E005)
    if isinstance(pipe.model.ops, CupyOps) or any(p.device.type != "cpu" for p in hf_model.parameters()):
        raise ValueError(Errors.E025.format(name=pipe_name, reason="the pipeline runs on a GPU"))
    dynamic_linear = torch.ao.nn.quantized.dynamic.Linear
    n_before = sum(1 for module in hf_model.modules() if isinstance(module, dynamic_linear))
    engine = torch.backends.quantized.engine
    if engine in (None, "none"):
        supported = [e for e in torch.backends.quantized.supported_engines if e != "none"]
        if not supported:
            reason = "this torch build has no quantized engine (torch.backends.quantized.supported_engines)"
            raise ValueError(Errors.E025.format(name=pipe_name, reason=reason))
        torch.backends.quantized.engine = supported[0]
    with warnings.catch_warnings():
        # torch.ao.quantization warns that it is deprecated (in favour of
        # torchao), and so does the quantized-tensor API it calls; both
        # still work (torch 2.13). Only these calls are silenced.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantized = torch.ao.quantization.quantize_dynamic(
            hf_model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
        )
    quantized.eval()
    set_hf_model(pipe.model, quantized)
    pipe.int8 = True
    return sum(1 for module in quantized.modules() if isinstance(module, dynamic_linear)) - n_before
