"""Learning-rate schedules used by the configs."""
from typing import Iterable

from thinc.api import registry


@registry.schedules("spacy-bertsum.noam.v1")
def noam_schedule(initial_rate: float, warmup_steps: int) -> Iterable[float]:
    """BertSum's (PreSumm's) schedule: ``initial_rate * min(step ** -0.5,
    step * warmup_steps ** -1.5)``, a linear warmup to a peak of
    ``initial_rate / sqrt(warmup_steps)`` at ``warmup_steps``, then inverse
    square-root decay. PreSumm's extractive setting: 2e-3 and 10000 steps."""
    if warmup_steps < 1:
        raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}")
    step = 1
    while True:
        yield initial_rate * min(step ** -0.5, step * warmup_steps ** -1.5)
        step += 1
