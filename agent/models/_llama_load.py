"""The process-wide cache of loaded llama.cpp models (for :mod:`agent.models._llama`).

A model file is loaded once per process and shared by every backend and thread (module-level
cache, guarded by a lock so two concurrent first calls load it once). One ``Llama`` object is not
thread-safe, so each loaded model carries a lock that serialises generation on it, the grammars
compiled for it, and the token counts of the generation running on it.

Token counts: streamed chat chunks carry no usage numbers, and a logits processor that counts would
make llama-cpp-python run a Python sampler that copies the whole vocabulary's logits at every token
(a few percent of a small model's speed). So the model's own ``sample`` method is wrapped once, at
load: it counts every sampled token and notes the prompt length (``n_tokens`` at the first sample).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent._exceptions import ModelError

__all__ = ["GRAMMAR_CACHE_SIZE", "INSTALL_HINT", "LoadedModel", "ModelKey", "TokenCount", "import_llama_cpp",
           "load_shared"]

# Distinct grammars kept per loaded model (JSON schemas seen by the process).
GRAMMAR_CACHE_SIZE = 128

INSTALL_HINT = "install the llama.cpp runtime with `pip install 'studiolm-agent[local]'` (or `make install`)"

#: (model file, n_ctx, n_threads, chat_format): what makes two loaded models different.
ModelKey = tuple[Path, int, int, str | None]


@dataclass(eq=False, slots=True)
class TokenCount:
    """The tokens of one generation: its prompt's and every sampled one (the end-of-turn token too)."""

    prompt: int = 0
    sampled: int = 0


@dataclass(eq=False)
class LoadedModel:
    """One ``Llama`` instance, its generation lock, the grammars compiled for it and its token count."""

    path: Path
    llama: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    grammars: dict[str, Any] = field(default_factory=dict)
    count: TokenCount = field(default_factory=TokenCount)

    def grammar(self, gbnf: str) -> Any:
        """The ``LlamaGrammar`` for ``gbnf``, or None when llama.cpp cannot parse it (call under lock)."""
        if gbnf not in self.grammars:
            if len(self.grammars) >= GRAMMAR_CACHE_SIZE:
                self.grammars.pop(next(iter(self.grammars)))
            self.grammars[gbnf] = _compile_grammar(self.llama, gbnf)
        return self.grammars[gbnf]

    def new_count(self) -> TokenCount:
        """A fresh count for the generation about to start (call under lock)."""
        self.count = TokenCount()
        return self.count


_MODELS: dict[ModelKey, LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def load_shared(key: ModelKey, verbose: bool) -> LoadedModel:
    """Load the model for ``key`` once per process; concurrent first calls wait for one load."""
    with _MODELS_LOCK:
        loaded = _MODELS.get(key)
        if loaded is None:
            loaded = _MODELS[key] = LoadedModel(key[0], _load_llama(key, verbose))
            _count_tokens(loaded)
        return loaded


def _count_tokens(loaded: LoadedModel) -> None:
    """Wrap the model's ``sample`` so that it keeps ``loaded.count`` (see the module docstring)."""
    llama = loaded.llama
    sample: Callable[..., Any] = llama.sample

    def counting_sample(*args: Any, **kwargs: Any) -> Any:
        count = loaded.count
        if count.sampled == 0:  # the prompt is evaluated (prefix cache or not), nothing sampled yet
            count.prompt = int(llama.n_tokens)
        count.sampled += 1
        return sample(*args, **kwargs)

    llama.sample = counting_sample


def _load_llama(key: ModelKey, verbose: bool) -> Any:
    path, n_ctx, n_threads, chat_format = key
    llama_cpp = import_llama_cpp()
    try:
        return llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,  # llama-cpp would use every core for prompts; see MAX_AUTO_THREADS
            chat_format=chat_format,
            verbose=verbose,
        )
    except Exception as exc:  # llama_cpp raises ValueError/RuntimeError/OSError for bad files
        raise ModelError(f"could not load GGUF model {path}: {exc}") from exc


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` module, or :class:`ModelError` with the install command."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelError(f"llama-cpp-python is not installed; {INSTALL_HINT}") from exc
    return llama_cpp


def _compile_grammar(llama: Any, gbnf: str) -> Any:
    llama_cpp = import_llama_cpp()
    # LlamaGrammar does not parse its text; a grammar llama.cpp rejects would only fail (or crash)
    # inside the sampler, so parse it once here and drop it when invalid.
    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root")
    if not sampler:
        return None
    llama_cpp.llama_sampler_free(sampler)
    return llama_cpp.LlamaGrammar.from_string(gbnf, verbose=False)
