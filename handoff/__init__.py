"""handoff: hand callers and chat users from an AI agent to a human, context intact.

`from handoff import Conversation` is the Python API (see handoff/agent_api.py), a live
handle on one conversation; the stored record it reads is `handoff.models.ConversationRecord`
(two names, so neither is mistaken for the other).
`handoff.from_polyai_return(conv, value)` acts on a PolyAI function's return value."""


def __getattr__(name):
    # Imported lazily so `handoff.sip` and friends stay importable without the app's deps.
    if name == "Conversation":
        from .agent_api import Conversation

        return Conversation
    if name == "from_polyai_return":
        from .polyai_return import from_polyai_return

        return from_polyai_return
    raise AttributeError(name)
