"""OpenAI's ``logprobs`` on llama.cpp, computed by a logits processor.

llama-cpp-python returns log probabilities only for models loaded with ``logits_all=True``, which
keeps the logits of every prompt token (memory and time for every request). A logits processor sees
the scores of each step anyway: :class:`LogprobRecorder` keeps the log-softmax of one step and, when
the next step shows which token was sampled (the last of ``input_ids``), records that token's log
probability and the most likely alternatives, in OpenAI's shape (``token``, ``logprob``, ``bytes``,
``top_logprobs``). The last sampled token has no next step: :meth:`LogprobRecorder.finish` records it
from the text that is still unaccounted for. The end-of-turn token is never part of the answer, and
is never recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["LogprobRecorder"]


class LogprobRecorder:
    """A logits processor that records per-token log probabilities (see the module docstring).

    ``detokenize`` turns a token id into its bytes; ``tokenize`` text into token ids (for the last
    token). ``top`` is how many alternatives each entry lists.
    """

    def __init__(self, detokenize: Callable[[list[int]], bytes], tokenize: Callable[[bytes], list[int]],
                 top: int) -> None:
        self._detokenize = detokenize
        self._tokenize = tokenize
        self._top = top
        self._pending: Any = None
        self.entries: list[dict[str, Any]] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._pending is not None:
            self._record(int(input_ids[-1]))
        logits = np.asarray(scores, dtype=np.float64)
        peak = logits.max()
        self._pending = logits - (peak + np.log(np.exp(logits - peak).sum()))
        return scores

    def finish(self, content: str) -> tuple[dict[str, Any], ...]:
        """The entries for ``content``, with its last token recorded from the text left over."""
        told = "".join(e["token"] for e in self.entries)
        rest = content[len(told):] if content.startswith(told) else ""
        tokens = self._tokenize(rest.encode("utf-8")) if rest and self._pending is not None else []
        if len(tokens) == 1:
            self._record(tokens[0])
        return tuple(self.entries)

    def _record(self, token: int) -> None:
        logprobs = self._pending
        self._pending = None
        self.entries.append({**self._entry(token, logprobs), "top_logprobs": self._alternatives(logprobs)})

    def _alternatives(self, logprobs: Any) -> list[dict[str, Any]]:
        if self._top <= 0:
            return []
        best = np.argpartition(-logprobs, self._top)[: self._top]
        return [self._entry(int(t), logprobs) for t in sorted(best, key=lambda t: -logprobs[t])]

    def _entry(self, token: int, logprobs: Any) -> dict[str, Any]:
        raw = self._detokenize([token])
        return {"token": raw.decode("utf-8", "replace"), "logprob": float(logprobs[token]), "bytes": list(raw)}
