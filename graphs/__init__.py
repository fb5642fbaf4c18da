"""LangGraph state machines: the chat-completions graph (and, later, research and extraction)."""

from graphs._chat import build_chat_graph, run_chat
from graphs._events import (
    ChatEvent,
    GenerationStarted,
    ImagesFound,
    QueryPlanned,
    SearchCompleted,
    SearchDecided,
    SearchFailed,
    SearchFallbackTaken,
    SearchStarted,
    StepEvent,
    Token,
    ValidationFailed,
    ValidationPassed,
    event_payload,
)
from graphs._state import ChatDeps, ChatLimits, ChatOutcome, ChatRequest, SearchDecision, WebSearchMode

__all__ = [
    "ChatDeps",
    "ChatEvent",
    "ChatLimits",
    "ChatOutcome",
    "ChatRequest",
    "GenerationStarted",
    "ImagesFound",
    "QueryPlanned",
    "SearchCompleted",
    "SearchDecided",
    "SearchDecision",
    "SearchFailed",
    "SearchFallbackTaken",
    "SearchStarted",
    "StepEvent",
    "Token",
    "ValidationFailed",
    "ValidationPassed",
    "WebSearchMode",
    "build_chat_graph",
    "event_payload",
    "run_chat",
]
